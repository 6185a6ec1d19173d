"""Turn a stored notification into an e-mail or a webhook body. Pure.

Caller-ID names are untrusted text: control characters (a CR/LF would forge e-mail headers)
become spaces and lengths are bounded before anything reaches a header.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import phonenumbers

from pbx_service.config.notify import EmailSettings

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MAX_NAME = 80

OUTCOME_WORDS: dict[str, str] = {
    "voicemail": "left a voicemail",
    "abandoned": "hung up before anyone answered",
    "failed": "the call failed",
    "callback": "asked to be called back",
}
AUDIO_TYPES: dict[str, tuple[str, str]] = {
    "mp3": ("audio", "mpeg"),
    "ogg": ("audio", "ogg"),
    "wav": ("audio", "wav"),
}


@dataclass(frozen=True, slots=True)
class Attachment:
    """A voicemail ready to attach: ``fmt`` is a key of `AUDIO_TYPES`."""

    filename: str
    content: bytes
    fmt: str


def one_line(value: object, limit: int = _MAX_NAME) -> str:
    """``value`` as a single line of at most ``limit`` characters, single-spaced."""
    # Whitespace runs become one space: header folding would collapse them anyway.
    text = " ".join(_CONTROL_RE.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_number(number: str | None) -> str:
    """``+79161234567`` → ``+7 916 123-45-67``; anything unparsable is returned cleaned."""
    if not number:
        return "anonymous"
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else "RU")
    except phonenumbers.NumberParseException:
        return one_line(number, 40)
    if not phonenumbers.is_possible_number(parsed):
        return one_line(number, 40)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _caller(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    caller = payload.get("caller")
    return caller if isinstance(caller, Mapping) else {}


def caller_display(payload: Mapping[str, Any]) -> str:
    """``Иван Петров +7 916 123-45-67``: the directory's name, else the caller-ID name."""
    caller = _caller(payload)
    number = caller.get("number")
    name = caller.get("contact") or caller.get("name")
    shown = format_number(number) if number else "an anonymous caller"
    if name and str(name).strip() and str(name).strip() != number:
        return f"{one_line(name)} {shown}"
    return shown


def line_display(payload: Mapping[str, Any]) -> str:
    line = payload.get("line")
    line = line if isinstance(line, Mapping) else {}
    return one_line(line.get("label") or line.get("did") or "unknown line")


def subject(kind: str, payload: Mapping[str, Any]) -> str:
    """The e-mail subject, e.g. ``Voicemail from Иван Петров +7 916 123-45-67 (website)``."""
    who, line = caller_display(payload), line_display(payload)
    if kind == "voicemail":
        return f"Voicemail from {who} ({line})"
    what = OUTCOME_WORDS.get(str(payload.get("outcome")), "nobody answered")
    return f"Call back {who} ({line}): {what}"


def _time(value: object, tz: ZoneInfo) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return one_line(value)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def text_body(
    kind: str,
    payload: Mapping[str, Any],
    *,
    tz: ZoneInfo,
    attachment: str | None = None,
    note: str | None = None,
) -> str:
    """The plain-text body: every detail a person needs to call back, one per line.

    ``attachment`` names the attached file; ``note`` explains a missing one.
    """
    caller = _caller(payload)
    lines = [subject(kind, payload), ""]

    def add(label: str, value: object) -> None:
        if value is not None and value != "" and value != []:
            lines.append(f"{label + ':':<15}{value}")

    add("Caller", caller_display(payload))
    add("Caller ID name", one_line(caller["name"]) if caller.get("name") else None)
    company = caller.get("company")
    tier = caller.get("tier")
    if company or tier:
        add("Company", one_line(company or "—") + (f" (tier {one_line(tier, 10)})" if tier else ""))
    line = payload.get("line") if isinstance(payload.get("line"), Mapping) else {}
    assert isinstance(line, Mapping)
    did = line.get("did")
    add("Line", f"{line_display(payload)}" + (f" ({one_line(did, 40)})" if did else ""))
    menu = payload.get("menu_path")
    if isinstance(menu, list) and menu:
        add("Menu", " > ".join(one_line(step, 40) for step in menu))
    add("Category", one_line(payload["category"]) if payload.get("category") else None)
    add("Outcome", OUTCOME_WORDS.get(str(payload.get("outcome")), payload.get("outcome")))
    add("Called at", _time(payload.get("started_at"), tz))
    wait = payload.get("wait_seconds")
    if isinstance(wait, int | float):
        add("Waited", f"{wait:.0f} s")
    voicemail = payload.get("voicemail")
    if isinstance(voicemail, Mapping):
        seconds = voicemail.get("seconds")
        length = f"{seconds:.0f} s" if isinstance(seconds, int | float) else "length unknown"
        where = f"attached as {attachment}" if attachment else "not attached"
        add("Voicemail", f"{length}, {where}")
        add("Recording", one_line(voicemail.get("name"), 200))
    if note:
        add("Note", one_line(note, 300))
    task = payload.get("task")
    if isinstance(task, Mapping):
        state = "new" if task.get("new") else f"{task.get('calls')} calls so far"
        due = _time(task.get("due_at"), tz)
        add("Callback task", f"{task.get('id')} ({state}" + (f", due {due})" if due else ")"))
    add("Call id", payload.get("call_id"))
    return "\n".join(lines) + "\n"


def message_id(notification_id: uuid.UUID, from_address: str) -> str:
    """The Message-ID: the notification id, so a resent e-mail is recognisably the same."""
    _name, address = parseaddr(from_address)
    domain = address.rpartition("@")[2] if "@" in address else ""
    domain = domain or "pbx-service.invalid"
    return f"<{notification_id}@{one_line(domain, 200)}>"


def build_email(
    notification_id: uuid.UUID,
    kind: str,
    payload: Mapping[str, Any],
    created_at: datetime,
    settings: EmailSettings,
    *,
    tz: ZoneInfo,
    attachment: Attachment | None = None,
    note: str | None = None,
) -> EmailMessage:
    """The whole e-mail. Built the same way on every attempt (Message-ID, Date), so a retry
    after a crash is a duplicate the recipient's mail system can recognise."""
    message = EmailMessage()
    message["Subject"] = subject(kind, payload)
    message["From"] = settings.from_address
    message["To"] = ", ".join(settings.to)
    message["Date"] = format_datetime(created_at)
    message["Message-ID"] = message_id(notification_id, settings.from_address)
    message["X-PBX-Event"] = kind
    message["X-PBX-Delivery"] = str(notification_id)
    message.set_content(
        text_body(
            kind,
            payload,
            tz=tz,
            attachment=attachment.filename if attachment else None,
            note=note,
        )
    )
    if attachment is not None:
        maintype, subtype = AUDIO_TYPES[attachment.fmt]
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def attachment_name(payload: Mapping[str, Any], fmt: str) -> str:
    """``voicemail-+79161234567-20261125-140300.mp3``: sortable and safe as a file name."""
    number = _caller(payload).get("number") or "anonymous"
    stamp = ""
    started = payload.get("started_at")
    if isinstance(started, str):
        try:
            stamp = "-" + datetime.fromisoformat(started).strftime("%Y%m%d-%H%M%S")
        except ValueError:
            stamp = ""
    safe = re.sub(r"[^0-9A-Za-z+_-]", "", str(number))[:32] or "anonymous"
    return f"voicemail-{safe}{stamp}.{fmt}"


def webhook_body(
    notification_id: uuid.UUID, kind: str, created_at: datetime, payload: Mapping[str, Any]
) -> bytes:
    """The JSON a webhook receives (signed as these exact bytes)."""
    return orjson.dumps(
        {
            "id": str(notification_id),
            "event": kind,
            "created_at": created_at.isoformat(),
            "data": payload,
        }
    )

"""What notifications say: payloads built from call rows, e-mail subject and body (Cyrillic),
the e-mail as bytes, the webhook body."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from pbx_service.config.notify import EmailSettings
from pbx_service.notify.payload import CallerInfo, TaskInfo, call_payload, voicemail_seconds
from pbx_service.notify.render import (
    Attachment,
    attachment_name,
    build_email,
    format_number,
    message_id,
    subject,
    text_body,
    webhook_body,
)
from pbx_service.store.records import CallRecord, Outcome
from pbx_service.store.rows import snapshot

T0 = datetime(2026, 11, 25, 11, 3, tzinfo=UTC)
MSK = ZoneInfo("Europe/Moscow")
CALL_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
TASK_ID = uuid.UUID("99999999-8888-7777-6666-555555555555")


def record(**overrides: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "id": CALL_ID,
        "channel_id": "chan-1",
        "started_at": T0,
        "did": "74951234567",
        "line_label": "website",
        "listed": True,
        "caller_number": "+79161234567",
        "caller_name": "Иван Петров",
        "ended_at": T0 + timedelta(seconds=95),
        "outcome": Outcome.VOICEMAIL,
        "voicemail": f"voicemail/74951234567/{CALL_ID}",
        "wait_seconds": 35.4,
        "menu_path": ["Продажи", "Опт"],
        "category": "sales",
    }
    fields.update(overrides)
    call = CallRecord(**fields)
    call.add_event(T0, "answered")
    call.add_event(T0 + timedelta(seconds=60), "voicemail", name=fields["voicemail"], seconds=42.0)
    return call


def payload(
    call: CallRecord | None = None,
    *,
    caller: CallerInfo | None = None,
    task: TaskInfo | None = None,
) -> dict[str, Any]:
    snap = snapshot(call or record(), T0 + timedelta(minutes=2))
    task = task or TaskInfo(id=TASK_ID, new=True, due_at=T0 + timedelta(minutes=30), calls=1)
    return call_payload(snap.row, task=task, caller=caller, events=snap.events)


EMAIL = EmailSettings.model_validate(
    {"host": "127.0.0.1", "from": "АТС <pbx@example.com>", "to": ["sales@example.com"]}
)


def test_payload_carries_everything_a_person_needs_to_call_back() -> None:
    data = payload(caller=CallerInfo(contact="Иван Петров", company="ООО Ромашка", tier="A"))
    assert data == {
        "call_id": str(CALL_ID),
        "outcome": "voicemail",
        "caller": {
            "number": "+79161234567",
            "name": "Иван Петров",
            "contact": "Иван Петров",
            "company": "ООО Ромашка",
            "tier": "A",
        },
        "line": {"did": "74951234567", "label": "website"},
        "menu_path": ["Продажи", "Опт"],
        "category": "sales",
        "started_at": "2026-11-25T11:03:00+00:00",
        "ended_at": "2026-11-25T11:04:35+00:00",
        "wait_seconds": 35.4,
        "voicemail": {"name": f"voicemail/74951234567/{CALL_ID}", "seconds": 42.0},
        "task": {
            "id": str(TASK_ID),
            "new": True,
            "due_at": "2026-11-25T11:33:00+00:00",
            "calls": 1,
        },
    }
    assert orjson.loads(orjson.dumps(data)) == data  # JSON as it is, for jsonb


def test_a_short_voicemail_is_not_a_voicemail() -> None:
    # outcome.py makes a too-short message an abandoned call: no recording to send.
    data = payload(record(outcome=Outcome.ABANDONED))
    assert data["voicemail"] is None and data["outcome"] == "abandoned"


def test_voicemail_seconds_ignores_other_recordings_and_bad_json() -> None:
    snap = snapshot(record(), T0)
    assert voicemail_seconds(snap.events, f"voicemail/74951234567/{CALL_ID}") == 42.0
    assert voicemail_seconds(snap.events, "voicemail/other") is None
    broken = [(CALL_ID, 9, T0, "voicemail", "{not json")]
    assert voicemail_seconds(broken, "x") is None


def test_voicemail_subject_names_caller_number_and_line() -> None:
    assert subject("voicemail", payload()) == (
        "Voicemail from Иван Петров +7 916 123-45-67 (website)"
    )


def test_directory_name_wins_over_caller_id_name() -> None:
    data = payload(caller=CallerInfo(contact="Пётр Сидоров", company="ООО Ромашка"))
    assert subject("voicemail", data).startswith("Voicemail from Пётр Сидоров +7 916")


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (Outcome.ABANDONED, "hung up before anyone answered"),
        (Outcome.CALLBACK, "asked to be called back"),
        (Outcome.FAILED, "the call failed"),
    ],
)
def test_callback_task_subject_says_what_happened(outcome: Outcome, words: str) -> None:
    data = payload(record(outcome=outcome, voicemail=None))
    assert subject("callback_task", data) == (
        f"Call back Иван Петров +7 916 123-45-67 (website): {words}"
    )


def test_anonymous_caller_and_unlabelled_line() -> None:
    data = payload(record(caller_number=None, caller_name=None, line_label=None))
    assert subject("voicemail", data) == "Voicemail from an anonymous caller (74951234567)"


def test_number_formatting() -> None:
    assert format_number("+79161234567") == "+7 916 123-45-67"
    assert format_number("+442079460958") == "+44 20 7946 0958"
    assert format_number("89161234567") == "+7 916 123-45-67"  # a domestic 8 is +7
    assert format_number("12") == "12"
    assert format_number("not a number\r\n") == "not a number"
    assert format_number(None) == "anonymous"


def test_body_lists_the_details_in_the_configured_time_zone() -> None:
    data = payload(caller=CallerInfo(contact="Иван Петров", company="ООО Ромашка", tier="A"))
    body = text_body("voicemail", data, tz=MSK, attachment="voicemail.mp3")
    assert body.splitlines()[0] == "Voicemail from Иван Петров +7 916 123-45-67 (website)"
    for line in [
        "Caller:        Иван Петров +7 916 123-45-67",
        "Company:       ООО Ромашка (tier A)",
        "Line:          website (74951234567)",
        "Menu:          Продажи > Опт",
        "Category:      sales",
        "Outcome:       left a voicemail",
        "Called at:     2026-11-25 14:03:00 MSK",
        "Waited:        35 s",
        "Voicemail:     42 s, attached as voicemail.mp3",
        f"Callback task: {TASK_ID} (new, due 2026-11-25 14:33:00 MSK)",
        f"Call id:       {CALL_ID}",
    ]:
        assert line in body.splitlines(), line


def test_body_explains_a_missing_attachment() -> None:
    body = text_body("voicemail", payload(), tz=MSK, note="the recording was not found")
    assert "Voicemail:     42 s, not attached" in body
    assert "Note:          the recording was not found" in body


def test_a_forged_caller_name_cannot_add_headers() -> None:
    evil = "Eve\r\nBcc: victim@example.com\r\n"
    data = payload(record(caller_name=evil))
    message = build_email(CALL_ID, "voicemail", data, T0, EMAIL, tz=MSK)
    raw = message.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"])
    assert str(parsed["Subject"]).startswith("Voicemail from Eve Bcc: victim@example.com +7")


def test_email_round_trips_with_cyrillic_and_an_attachment() -> None:
    notification_id = uuid.uuid4()
    attachment = Attachment("voicemail.mp3", b"ID3fake-mp3", "mp3")
    message = build_email(
        notification_id, "voicemail", payload(), T0, EMAIL, tz=MSK, attachment=attachment
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Voicemail from Иван Петров +7 916 123-45-67 (website)"
    assert parsed["Message-ID"] == f"<{notification_id}@example.com>"
    assert parsed["X-PBX-Delivery"] == str(notification_id)
    assert parsed["To"] == "sales@example.com"
    assert "АТС" in str(parsed["From"])
    parts = list(parsed.iter_attachments())
    assert [p.get_content_type() for p in parts] == ["audio/mpeg"]
    assert parts[0].get_filename() == "voicemail.mp3"
    assert parts[0].get_content() == b"ID3fake-mp3"
    body = parsed.get_body(("plain",))
    assert body is not None and "Иван Петров" in body.get_content()


def test_the_same_notification_renders_the_same_message_every_time() -> None:
    # A resend after a crash must be recognisable as the same e-mail.
    notification_id = uuid.uuid4()
    first = build_email(notification_id, "voicemail", payload(), T0, EMAIL, tz=MSK)
    second = build_email(notification_id, "voicemail", payload(), T0, EMAIL, tz=MSK)
    assert first.as_bytes() == second.as_bytes()


def test_message_id_without_a_domain() -> None:
    assert message_id(CALL_ID, "pbx") == f"<{CALL_ID}@pbx-service.invalid>"


def test_attachment_name_is_safe_and_sortable() -> None:
    assert attachment_name(payload(), "ogg") == "voicemail-+79161234567-20261125-110300.ogg"
    data = payload(record(caller_number="../../etc/passwd"))
    assert attachment_name(data, "mp3").startswith("voicemail-etcpasswd-")


def test_webhook_body_is_the_payload_under_data() -> None:
    notification_id = uuid.uuid4()
    data = payload()
    body = orjson.loads(webhook_body(notification_id, "voicemail", T0, data))
    assert body == {
        "id": str(notification_id),
        "event": "voicemail",
        "created_at": "2026-11-25T11:03:00+00:00",
        "data": data,
    }

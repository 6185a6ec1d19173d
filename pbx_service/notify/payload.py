"""What a notification says, as JSON-ready data built from a call row. Pure.

The payload is stored in ``notifications.payload`` when the call is logged and is the ``data``
of a webhook body, so its shape is a contract with webhook receivers::

    {
      "call_id": "…uuid…",
      "outcome": "voicemail",            # voicemail, abandoned, failed, callback
      "caller": {"number": "+79161234567", "name": "Иван Петров",
                 "contact": "Иван Петров", "company": "ООО Ромашка", "tier": "A"},
      "line": {"did": "74951234567", "label": "website"},
      "menu_path": ["sales"], "category": "sales",
      "started_at": "2026-11-25T14:03:00+00:00", "ended_at": "…", "wait_seconds": 35.2,
      "voicemail": {"name": "voicemail/74951234567/…", "seconds": 42.0},   # or null
      "task": {"id": "…uuid…", "new": true, "due_at": "…", "calls": 1}       # or null
    }

``caller.number`` is E.164 when the network gave a usable number and null for an anonymous
caller; ``contact``, ``company`` and ``tier`` are null when the number is not in the directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from pbx_service.store.rows import CALL_COLUMNS, EventRow

_COL = {name: i for i, name in enumerate(CALL_COLUMNS)}


@dataclass(frozen=True, slots=True)
class CallerInfo:
    """What the customer directory knows about a number."""

    contact: str | None = None
    company: str | None = None
    tier: str | None = None


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """The callback task a call made or joined."""

    id: uuid.UUID
    new: bool
    due_at: datetime | None = None
    calls: int = 1


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def voicemail_seconds(events: Sequence[EventRow], name: str) -> float | None:
    """The length of voicemail ``name`` from the call's ``voicemail`` event, if it is there."""
    for _call_id, _seq, _at, kind, detail in reversed(events):
        if kind != "voicemail":
            continue
        try:
            data = orjson.loads(detail)
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict) and data.get("name") == name:
            seconds = data.get("seconds")
            if isinstance(seconds, int | float) and not isinstance(seconds, bool):
                return float(seconds)
    return None


def call_payload(
    row: Sequence[Any],
    *,
    task: TaskInfo | None = None,
    caller: CallerInfo | None = None,
    events: Sequence[EventRow] = (),
) -> dict[str, Any]:
    """The payload for the ended call ``row`` (a ``calls`` row in `CALL_COLUMNS` order)."""
    caller = caller or CallerInfo()
    voicemail_name: str | None = row[_COL["voicemail"]]
    voicemail = None
    if voicemail_name and row[_COL["outcome"]] == "voicemail":
        voicemail = {
            "name": voicemail_name,
            "seconds": voicemail_seconds(events, voicemail_name),
        }
    return {
        "call_id": str(row[_COL["id"]]),
        "outcome": row[_COL["outcome"]],
        "caller": {
            "number": row[_COL["caller_number"]],
            "name": row[_COL["caller_name"]],
            "contact": caller.contact,
            "company": caller.company,
            "tier": caller.tier,
        },
        "line": {"did": row[_COL["did"]], "label": row[_COL["line_label"]]},
        "menu_path": list(row[_COL["menu_path"]] or []),
        "category": row[_COL["category"]],
        "started_at": _iso(row[_COL["started_at"]]),
        "ended_at": _iso(row[_COL["ended_at"]]),
        "wait_seconds": row[_COL["wait_seconds"]],
        "voicemail": voicemail,
        "task": None
        if task is None
        else {
            "id": str(task.id),
            "new": task.new,
            "due_at": _iso(task.due_at),
            "calls": task.calls,
        },
    }

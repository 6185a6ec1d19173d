"""Plain records the call flow hands to storage. No SQLAlchemy here: `calls/` builds these."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """How a call ended for the caller. Exactly one per finished call."""

    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    ABANDONED = "abandoned"
    SELF_SERVICE = "self_service"
    TRANSFERRED = "transferred"
    OVERFLOW = "overflow"
    FAILED = "failed"


@dataclass(slots=True)
class CallEventRecord:
    """One step of a call's path, in order: ``seq`` is 1, 2, 3, ... within the call."""

    seq: int
    at: datetime
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CallRecord:
    """One row of the call log. Submitted when the call starts and again as it progresses;
    storage keeps the latest version per ``id`` and each event once per ``(id, seq)``."""

    id: uuid.UUID
    channel_id: str
    started_at: datetime
    did: str
    line_label: str | None
    listed: bool
    caller_number: str | None
    caller_name: str | None
    linkedid: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: Outcome | None = None
    answered_by: str | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    recording: str | None = None
    voicemail: str | None = None
    category: str | None = None
    menu_path: list[str] = field(default_factory=list)
    node: str | None = None
    # When the callback task this call makes is due (after hours: the next opening).
    callback_due: datetime | None = None
    events: list[CallEventRecord] = field(default_factory=list)

    def add_event(self, at: datetime, kind: str, **detail: Any) -> CallEventRecord:
        event = CallEventRecord(seq=len(self.events) + 1, at=at, kind=kind, detail=detail)
        self.events.append(event)
        return event

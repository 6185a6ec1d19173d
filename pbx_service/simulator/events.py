"""ARI JSON shapes: timestamps and the event envelope, as Asterisk 22 sends them.

Pure functions only; the objects' own `to_json()` methods build the nested models
(Channel, Bridge, Playback, LiveRecording).
"""

from __future__ import annotations

import datetime
from typing import Any

ASTERISK_ID = "02:fc:00:00:00:01"

CAUSE_TEXT: dict[int, str] = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    26: "Answered elsewhere",
    27: "Destination out of order",
    28: "Invalid number format (incomplete number)",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
}

# DELETE /channels/{id}?reason=... -> hangup cause (res_ari channels.c).
REASON_CAUSE: dict[str, int] = {
    "normal": 16,
    "busy": 17,
    "congestion": 34,
    "no_answer": 19,
    "timeout": 19,
    "rejected": 21,
    "unallocated": 1,
    "normal_unspecified": 31,
    "number_incomplete": 28,
    "codec_mismatch": 58,
    "interworking": 127,
    "failure": 38,
    "answered_elsewhere": 26,
}


def timestamp(when: float | None = None) -> str:
    """Asterisk's event timestamp: `2026-11-25T12:55:22.864+0000` (UTC, milliseconds)."""
    moment = (
        datetime.datetime.now(datetime.UTC)
        if when is None
        else datetime.datetime.fromtimestamp(when, datetime.UTC)
    )
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def cause_text(cause: int) -> str:
    """The `cause_txt` Asterisk pairs with a Q.850 cause code."""
    return CAUSE_TEXT.get(cause, "Unknown")


def envelope(event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An event without its `application` (added per receiving app)."""
    event: dict[str, Any] = {"type": event_type, "timestamp": timestamp()}
    event.update(fields)
    event["asterisk_id"] = ASTERISK_ID
    return event

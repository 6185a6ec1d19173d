"""When a callback task is due. Pure: tests call it with any clock and schedule."""

from __future__ import annotations

from datetime import datetime, timedelta

from pbx_service.calls.hours import BusinessHours


def callback_due(now: datetime, hours: BusinessHours | None, sla: timedelta) -> datetime:
    """Now + SLA while the line is open (or has no schedule); otherwise the next opening + SLA,
    so that a task made at night is due shortly after staff arrive, not at once."""
    if hours is None or hours.is_open(now):
        return now + sla
    opening = hours.next_opening(now)
    return (opening or now) + sla

"""The ``pbx-service hours`` report: every schedule open or closed at an instant, and why.

Pure text formatting; times are shown in each schedule's own zone with its abbreviation, which
also tells the two readings of a repeated hour apart (e.g. 02:30 CEST and 02:30 CET).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pbx_service.calls.hours import BusinessHours, HoursStatus, NaiveTimeError
from pbx_service.config.hours import describe_holidays
from pbx_service.errors import PbxError

_LOCAL_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_HOW = (
    'write "YYYY-MM-DD HH:MM" (local to the schedule), an ISO time with an offset such as '
    "2026-12-31T17:30+03:00, or now"
)


class BadTimeError(PbxError, ValueError):
    """The time given to a report cannot be read or does not exist."""

    error_id = "hours-bad-time"


def parse_at(text: str, tz: ZoneInfo, *, now: datetime | None = None) -> datetime:
    """Read "YYYY-MM-DD HH:MM" (wall time in `tz`), ISO 8601 with an offset, or "now".

    The result is aware, in `tz`. A wall time that the clocks skip is an error; one they pass
    twice means its first occurrence. `now` (aware) replaces the clock for "now".
    """
    value = text.strip()
    if value.lower() == "now":
        current = now if now is not None else datetime.now(UTC)
        if current.tzinfo is None:
            raise NaiveTimeError("now must be timezone-aware")
        return current.astimezone(tz)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadTimeError(f"cannot read {text!r} as a time; {_HOW}") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(tz)
    if not _LOCAL_RE.match(value):
        raise BadTimeError(f"cannot read {text!r} as a time; {_HOW}")
    local = parsed.replace(tzinfo=tz, fold=0)
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != parsed:
        raise BadTimeError(
            f"{value} does not exist in {tz.key}: the clocks jump forward over it; "
            "give a later time or an ISO time with an offset"
        )
    return local


def render_hours(schedules: Mapping[str, BusinessHours], at: datetime) -> str:
    """For each schedule: open or closed at the instant `at` and why, next opening and closing."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveTimeError(f"{at.isoformat()} has no time zone; use parse_at to read times")
    header = f"Business hours at {_when(at.astimezone(UTC))}"
    return _render(header, [(name, hours, at) for name, hours in schedules.items()])


def render_hours_at(
    schedules: Mapping[str, BusinessHours], text: str, *, now: datetime | None = None
) -> str:
    """Like `render_hours`, reading `text` with `parse_at` in each schedule's own zone.

    So ``--at "2026-12-31 17:30"`` asks every schedule about 17:30 on its own clock; an ISO
    time with an offset, or "now", is the same instant for all.
    """
    now = now if now is not None else datetime.now(UTC)  # one "now" for every schedule
    entries = [
        (name, hours, parse_at(text, hours.zone, now=now)) for name, hours in schedules.items()
    ]
    return _render(f"Business hours at {text.strip()} (each schedule's local time)", entries)


def _render(header: str, entries: list[tuple[str, BusinessHours, datetime]]) -> str:
    lines = [header]
    if not entries:
        lines.append("  (no schedules configured)")
    for name, hours, at in entries:
        status = hours.status_at(at)
        lines.append("")
        lines.append(f"{name}  ({hours.zone.key}, {describe_holidays(hours.schedule.holidays)})")
        lines.extend(_status_lines(status, at))
        lines.append(f"  today    {_today(hours, status.at.date())}")
    return "\n".join(lines) + "\n"


def _status_lines(status: HoursStatus, at: datetime) -> list[str]:
    state = "OPEN" if status.is_open else "CLOSED"
    out = [
        f"  at       {_when(status.at)}",
        f"  status   {state} ({status.reason.value}): {status.detail}",
    ]
    if status.is_open:
        out.append(f"  closes   {_when_from(status.next_closing, at)}")
        out.append(f"  reopens  {_when_from(status.next_opening, at)}")
    else:
        out.append(f"  opens    {_when_from(status.next_opening, at)}")
        out.append(f"  closes   {_when_from(status.next_closing, at)}")
    return out


def _today(hours: BusinessHours, day: date) -> str:
    plan = hours.day_plan(day)
    periods = ", ".join(str(p) for p in plan.periods) or "closed all day"
    return f"{periods} ({plan.kind.value}: {plan.detail})"


def _when(moment: datetime) -> str:
    return moment.strftime("%a %Y-%m-%d %H:%M %Z")


def _when_from(moment: datetime | None, at: datetime) -> str:
    if moment is None:
        return "not within 400 days"
    # In UTC: Python subtracts two datetimes of one zone by wall time, ignoring DST changes.
    return f"{_when(moment)} (in {_duration(moment.astimezone(UTC) - at.astimezone(UTC))})"


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)

"""Property tests: random schedules and instants, checked against the definitions.

For zones without DST over 2026-2027 an independent wall-clock oracle decides "open"; for
zones with DST (including Lord Howe's half-hour change) the definitions are checked at every
period boundary and on a minute grid.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_package
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pbx_service.calls.hours import BusinessHours
from pbx_service.config.hours import WEEKDAY_NAMES, Schedule

FIXED_ZONES = ("Europe/Moscow", "Asia/Kolkata", "UTC")
DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago")
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 12, 31, tzinfo=UTC)
GRID = timedelta(minutes=7)
GRID_SPAN = timedelta(hours=36)
SECOND = timedelta(seconds=1)


def _transitions() -> list[datetime]:
    found: list[datetime] = []
    for name in DST_ZONES:
        zone = ZoneInfo(name)
        moment = START
        offset = moment.astimezone(zone).utcoffset()
        while moment < END:
            moment += timedelta(minutes=30)
            current = moment.astimezone(zone).utcoffset()
            if current != offset:
                found.append(moment)
                offset = current
    return found


TRANSITIONS = _transitions()


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@st.composite
def day_periods(draw: st.DrawFn, min_count: int = 0, overnight: bool = True) -> list[str]:
    count = draw(st.integers(min_count, 2))
    points = sorted(draw(st.sets(st.integers(0, 288), min_size=2 * count, max_size=2 * count)))
    periods = [f"{_hhmm(points[i] * 5)}-{_hhmm(points[i + 1] * 5)}" for i in range(0, 2 * count, 2)]
    last_end = points[-1] * 5 if points else 0
    if overnight and last_end < 1435 and draw(st.integers(0, 3)) == 0:
        start = draw(st.integers(last_end // 5, 286)) * 5
        end = draw(st.integers(1, 287)) * 5  # <= start: past midnight
        if end != start:
            periods.append(f"{_hhmm(start)}-{_hhmm(end)}")
    return periods


dates = st.dates(date(2026, 1, 1), date(2027, 12, 31))


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    zone = draw(st.sampled_from(FIXED_ZONES + DST_ZONES))
    week = [draw(day_periods(overnight=False)) for _ in WEEKDAY_NAMES]
    for index, periods in enumerate(week):
        # A night shift must end before the next day's first period: pick its end so.
        following = week[(index + 1) % 7]
        limit = min((_minutes(p.split("-")[0]) for p in following), default=1440) // 5
        last_end = max((_minutes(p.split("-")[1]) for p in periods), default=0) // 5
        if limit >= 1 and last_end < 287 and draw(st.integers(0, 2)) == 0:
            start = draw(st.integers(max(last_end, 1), 287)) * 5
            end = draw(st.integers(1, min(limit, start))) * 5
            if end != start:
                periods.append(f"{_hhmm(start)}-{_hhmm(end)}")
    weekly = {name[:3]: periods for name, periods in zip(WEEKDAY_NAMES, week, strict=True)}
    body: dict[str, Any] = {"timezone": zone, "weekly": weekly}
    if draw(st.booleans()):
        body["holidays"] = {"country": "RU"}
        working = [name for name, periods in zip(WEEKDAY_NAMES, week, strict=True) if periods]
        use_working_weekends: bool = draw(st.booleans())
        if working and use_working_weekends:
            like = draw(st.sampled_from(working))
            body["holidays"]["working_weekends"] = f"like: {like}"
    closed: list[str] = []
    for first in draw(st.lists(dates, max_size=2)):
        length = draw(st.integers(0, 4))
        last = first + timedelta(days=length)
        closed.append(first.isoformat() if not length else f"{first}..{last}")
    body["closed"] = closed
    body["shortened"] = {
        d.isoformat(): draw(day_periods(min_count=1)) for d in draw(st.lists(dates, max_size=2))
    }
    extra: dict[str, object] = {}
    for day in draw(st.lists(dates, max_size=2)):
        working = [name for name, periods in zip(WEEKDAY_NAMES, week, strict=True) if periods]
        use_like: bool = draw(st.booleans())
        if working and use_like:
            extra[day.isoformat()] = f"like: {draw(st.sampled_from(working))}"
        else:
            extra[day.isoformat()] = draw(day_periods(min_count=1))
    body["extra_working_days"] = extra
    try:
        return Schedule.model_validate(body)
    except ValidationError:
        assume(False)
        raise


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        base = draw(st.sampled_from(TRANSITIONS))
        return base + timedelta(minutes=draw(st.integers(-36 * 60, 36 * 60)))
    seconds = draw(st.integers(0, int((END - START).total_seconds())))
    return START + timedelta(seconds=seconds)


_CALENDAR = holidays_package.country_holidays("RU")


def _calendar_workday(day: date) -> bool:
    # Looking dates up loads their years into the calendar, weekend_workdays included.
    _ = day in _CALENDAR, date(day.year + 1, 1, 1) in _CALENDAR
    return day in _CALENDAR.weekend_workdays


def _oracle_open(schedule: Schedule, at: datetime) -> bool:
    """Open by the wall-clock rule, worked out independently (zones without DST only)."""
    wall = at.astimezone(schedule.zone()).replace(tzinfo=None)
    week = schedule.week()
    for day in (wall.date() - timedelta(days=1), wall.date()):
        if any(day in closure for closure in schedule.closed):
            continue
        extra = schedule.extra_working_days.get(day)
        if extra is not None:
            periods = week[extra.like] if extra.like is not None else extra.periods
        elif day in schedule.shortened:
            periods = tuple(schedule.shortened[day])
        elif (
            schedule.holidays is not None
            and schedule.holidays.working_weekends is not None
            and _calendar_workday(day)
        ):
            like = schedule.holidays.working_weekends.like
            assert like is not None
            periods = week[like]
        elif schedule.holidays is not None and day in _CALENDAR:
            periods = ()
        else:
            periods = week[day.weekday()]
        midnight = datetime.combine(day, datetime.min.time())
        for period in periods:
            begin = midnight + timedelta(minutes=period.start)
            end = midnight + timedelta(minutes=period.end_offset)
            if begin <= wall < end:
                return True
    return False


def _u(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _intervals(
    hours: BusinessHours, begin: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Every period (UTC) of the local days around [begin, end)."""
    zone = hours.zone
    day = begin.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    found = []
    while day <= last:
        for interval in hours.periods_on(day):
            found.append((interval.start.astimezone(UTC), interval.end.astimezone(UTC)))
        day += timedelta(days=1)
    return found


def _boundaries(hours: BusinessHours, begin: datetime, end: datetime) -> list[datetime]:
    edges = [edge for pair in _intervals(hours, begin, end) for edge in pair]
    return [edge for edge in edges if begin <= edge < end]


def _grid(begin: datetime, end: datetime) -> list[datetime]:
    points = []
    moment = begin
    while moment < end and moment < begin + GRID_SPAN:
        points.append(moment)
        moment += GRID
    return points


PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(schedules(), instants())
def test_next_opening_is_open_and_nothing_before_it_is(schedule: Schedule, at: datetime) -> None:
    hours = BusinessHours(schedule)
    opening = _u(hours.next_opening(at))
    if opening is None:
        for moment in _grid(at, at + GRID_SPAN) + _boundaries(hours, at, at + GRID_SPAN):
            assert not hours.is_open(moment), moment
        return
    assert opening >= at
    assert hours.is_open(opening)
    if opening == at:
        return
    assert not hours.is_open(opening - SECOND)
    for moment in _grid(at, opening) + _boundaries(hours, at, min(opening, at + GRID_SPAN)):
        assert not hours.is_open(moment), moment
    # However far the opening, no period in between touches [at, opening).
    for start, end in _intervals(hours, at, opening):
        assert end <= at or start >= opening, (start, end)


@PROPERTY_SETTINGS
@given(schedules(), instants())
def test_next_closing_is_closed_and_everything_before_it_open(
    schedule: Schedule, at: datetime
) -> None:
    hours = BusinessHours(schedule)
    closing = _u(hours.next_closing(at))
    if closing is None:
        assert hours.is_open(at)
        return
    assert closing >= at
    assert not hours.is_open(closing)
    if closing == at:
        return
    assert hours.is_open(closing - SECOND)
    for moment in _grid(at, closing) + _boundaries(hours, at, closing):
        assert hours.is_open(moment), moment


@PROPERTY_SETTINGS
@given(schedules(), instants(), st.sampled_from(["UTC", "Asia/Tokyo", "America/Los_Angeles"]))
def test_status_agrees_with_is_open_and_the_oracle(
    schedule: Schedule, at: datetime, other: str
) -> None:
    hours = BusinessHours(schedule)
    status = hours.status_at(at)
    assert status.is_open == hours.is_open(at)
    assert hours.is_open(at.astimezone(ZoneInfo(other))) == status.is_open
    if status.is_open:
        assert _u(status.next_closing) == _u(hours.next_closing(at))
        if status.next_closing is not None:
            assert _u(status.next_opening) == _u(hours.next_opening(status.next_closing))
    else:
        assert _u(status.next_opening) == _u(hours.next_opening(at))
        if status.next_opening is not None:
            assert _u(status.next_closing) == _u(hours.next_closing(status.next_opening))
    if schedule.timezone in FIXED_ZONES:
        for moment in [at, *_grid(at, at + timedelta(hours=6))]:
            assert hours.is_open(moment) == _oracle_open(schedule, moment), moment

"""When a schedule is open: pure, synchronous answers from a `Schedule` and the holiday data.

Model. Every period of a day becomes one half-open interval ``[start, end)`` of real instants.
The schedule is open at an instant when some interval contains it; intervals that overlap or
touch are one opening (a Friday 20:00-24:00 and a Saturday 00:00-08:00 make one night).

What a day's periods are, in order of precedence: a date under ``closed`` has none; under
``extra_working_days`` its own periods or those of the weekday it is "like" (even on a public
holiday); under ``shortened`` its replacement periods; a weekend day that the official calendar
makes a working day, when ``holidays.working_weekends`` is set, those hours; a public holiday
has none; otherwise the weekly periods of its weekday. A period belongs to the day it starts
on, so a night shift that began on a working Friday runs into a Saturday holiday.

Daylight saving time. Periods are wall-clock times in the schedule's zone:
- a wall time that does not exist (clocks jump forward, e.g. 02:30 on the last Sunday of March
  in Berlin) is the instant the clocks jump: a 02:30 opening opens at 03:00; a period lying
  wholly inside the jump is empty that day;
- a wall time that happens twice (clocks go back) opens at its first occurrence and closes at
  its second: a period is never shorter than its wall-clock length and stays one interval.
  So during the repeated hour the line may be open at a wall time outside a period (a short
  gap between two periods inside that hour vanishes), never closed at one inside a period.

Instants. Inputs may be in any zone but must be timezone-aware; results are in the schedule's
zone. Computations run in UTC, because Python compares two datetimes of the same zone by wall
time and ignores `fold`; callers comparing results should convert to UTC too (Python also never
calls an instant inside a repeated hour equal to one in another zone, PEP 495).

Definitions (``t`` an instant):
- ``next_opening(t)``: ``t`` itself when open at ``t``; otherwise the start of the next opening.
- ``next_closing(t)``: ``t`` itself when closed at ``t``; otherwise the end of the current
  opening (touching periods merged).
Both look 400 days ahead and return None when nothing happens within that horizon.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_package

from pbx_service.config.hours import WEEKDAY_NAMES, Period, Schedule, WorkingDay
from pbx_service.errors import PbxError

HORIZON = timedelta(days=400)
_ONE_DAY = timedelta(days=1)
_CACHE_LIMIT = 4096


class NaiveTimeError(PbxError, ValueError):
    """A datetime without a time zone was given where an instant is needed."""

    error_id = "hours-naive-time"


class Reason(StrEnum):
    """Why a schedule is open or closed at an instant."""

    WEEKLY = "weekly"  # the ordinary weekly periods (open in one, or closed outside them)
    OVERNIGHT = "overnight"  # open in a period that started on the previous day
    HOLIDAY = "holiday"  # a public holiday from the calendar
    CLOSURE = "closure"  # a date listed under closed
    SHORTENED = "shortened"  # a date whose periods were replaced
    EXTRA_WORKING_DAY = "extra-working-day"  # a date worked although normally closed


@dataclass(frozen=True, slots=True)
class DayPlan:
    """The periods a local date has and why."""

    day: date
    periods: tuple[Period, ...]
    kind: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class OpenInterval:
    """One period of one day as real instants, ``[start, end)``, in the schedule's zone."""

    start: datetime
    end: datetime
    day: date
    period: Period
    kind: Reason


@dataclass(frozen=True, slots=True)
class HoursStatus:
    """Open or closed at `at`, why, and the next changes.

    Open: `next_closing` ends the current opening, `next_opening` is the one after it.
    Closed: `next_opening` starts the next opening, `next_closing` ends that opening.
    Either is None when it is not within 400 days. `holiday` names the public holiday on the
    local date of `at`, also when that day is worked.
    """

    at: datetime
    is_open: bool
    reason: Reason
    detail: str
    next_opening: datetime | None
    next_closing: datetime | None
    holiday: str | None = None


@dataclass(frozen=True, slots=True)
class _Span:
    start: datetime  # UTC
    end: datetime  # UTC
    day: date
    period: Period
    kind: Reason


class BusinessHours:
    """Answers "open at this instant?" and "when next?" for one `Schedule`."""

    def __init__(self, schedule: Schedule, name: str = "") -> None:
        self.schedule = schedule
        self.name = name
        self.zone: ZoneInfo = schedule.zone()
        self._week = schedule.week()
        self._closed = tuple(schedule.closed)
        self._calendar: Mapping[Any, str] | None = None
        if schedule.holidays is not None:
            languages = holidays_package.country_holidays(
                schedule.holidays.country
            ).supported_languages
            self._calendar = holidays_package.country_holidays(
                schedule.holidays.country,
                subdiv=schedule.holidays.subdivision,
                language="en_US" if "en_US" in languages else None,
            )
        self._plans: dict[date, DayPlan] = {}
        self._spans: dict[date, tuple[_Span, ...]] = {}

    def __repr__(self) -> str:
        return f"BusinessHours({self.name or 'unnamed'!s}, {self.zone.key})"

    # -- days ---------------------------------------------------------------------------

    def holiday_name(self, day: date) -> str | None:
        """The public holiday's name on a local date, or None (also when holidays are off)."""
        if self._calendar is None:
            return None
        return self._calendar.get(day)

    def day_plan(self, day: date) -> DayPlan:
        """The periods of a local date and the rule that gave them."""
        plan = self._plans.get(day)
        if plan is None:
            if len(self._plans) > _CACHE_LIMIT:
                self._plans.clear()
            plan = self._plans[day] = self._make_plan(day)
        return plan

    def _make_plan(self, day: date) -> DayPlan:
        for closure in self._closed:
            if day in closure:
                return DayPlan(day, (), Reason.CLOSURE, f"closed ({closure})")
        holiday = self.holiday_name(day)
        extra = self.schedule.extra_working_days.get(day)
        if extra is not None:
            if extra.like is not None:
                periods = self._week[extra.like]
                detail = f"extra working day, hours of {WEEKDAY_NAMES[extra.like]}"
            else:
                periods = tuple(sorted(extra.periods, key=lambda p: p.start))
                detail = "extra working day"
            if holiday:
                detail += f" (public holiday {holiday} worked)"
            return DayPlan(day, periods, Reason.EXTRA_WORKING_DAY, detail)
        shortened = self.schedule.shortened.get(day)
        if shortened is not None:
            periods = tuple(sorted(shortened, key=lambda p: p.start))
            detail = "shortened day: " + ", ".join(str(p) for p in periods)
            return DayPlan(day, periods, Reason.SHORTENED, detail)
        working = self._calendar_working_weekend(day)
        if working is not None:
            if working.like is not None:
                periods = self._week[working.like]
                hours_of = f"hours of {WEEKDAY_NAMES[working.like]}"
            else:
                periods = tuple(sorted(working.periods, key=lambda p: p.start))
                hours_of = ", ".join(str(p) for p in periods)
            detail = f"working weekend day of the official calendar, {hours_of}"
            return DayPlan(day, periods, Reason.EXTRA_WORKING_DAY, detail)
        if holiday:
            return DayPlan(day, (), Reason.HOLIDAY, holiday)
        return DayPlan(day, self._week[day.weekday()], Reason.WEEKLY, "weekly hours")

    def _calendar_working_weekend(self, day: date) -> WorkingDay | None:
        """The configured hours when the calendar makes this weekend day a working day."""
        holidays = self.schedule.holidays
        if self._calendar is None or holidays is None or holidays.working_weekends is None:
            return None
        # Looking a date up loads its year; the next year too, as a working Saturday may
        # be listed with the year of the day off it pays for.
        _ = day in self._calendar, date(day.year + 1, 1, 1) in self._calendar
        workdays: set[date] = getattr(self._calendar, "weekend_workdays", set())
        return holidays.working_weekends if day in workdays else None

    def _day_spans(self, day: date) -> tuple[_Span, ...]:
        spans = self._spans.get(day)
        if spans is None:
            if len(self._spans) > _CACHE_LIMIT:
                self._spans.clear()
            plan = self.day_plan(day)
            made = []
            for period in plan.periods:
                start = self._instant(day, period.start, earliest=True)
                end = self._instant(day, period.end_offset, earliest=False)
                if start < end:  # a period inside a spring-forward jump is empty
                    made.append(_Span(start, end, day, period, plan.kind))
            spans = self._spans[day] = tuple(sorted(made, key=lambda s: s.start))
        return spans

    def _instant(self, day: date, minutes: int, *, earliest: bool) -> datetime:
        """The UTC instant of a wall-clock time `minutes` after the local midnight of `day`."""
        wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return first.astimezone(UTC)
        if first.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) == wall:
            # Clocks went back: the wall time happened twice.
            return (first if earliest else second).astimezone(UTC)
        # Clocks jumped forward over this wall time: use the instant of the jump, found by
        # bisection between the two readings (fold=1 reads with the later offset).
        low = int(second.timestamp())
        high = int(first.timestamp())
        before = first.utcoffset()
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self.zone).utcoffset() == before:
                low = middle
            else:
                high = middle
        return datetime.fromtimestamp(high, UTC)

    # -- instants ------------------------------------------------------------------------

    def _utc(self, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise NaiveTimeError(
                f"{at.isoformat()} has no time zone; pass an aware datetime, e.g. "
                f"datetime.now(ZoneInfo({self.zone.key!r}))"
            )
        return at.astimezone(UTC)

    def _local_day(self, at_utc: datetime) -> date:
        return at_utc.astimezone(self.zone).date()

    def _out(self, at_utc: datetime) -> datetime:
        return at_utc.astimezone(self.zone)

    def _span_at(self, at_utc: datetime) -> _Span | None:
        today = self._local_day(at_utc)
        # A period reaches at most into the next day; checking tomorrow too covers zones
        # whose clocks go back across midnight.
        for day in (today - _ONE_DAY, today, today + _ONE_DAY):
            for span in self._day_spans(day):
                if span.start <= at_utc < span.end:
                    return span
        return None

    def _blocks(self, at_utc: datetime) -> Iterator[tuple[datetime, datetime | None]]:
        """Merged openings (UTC) that end after `at_utc`, in order; end None: past horizon."""
        limit = at_utc + HORIZON
        day = self._local_day(at_utc) - _ONE_DAY
        last_day = self._local_day(limit) + _ONE_DAY
        block: tuple[datetime, datetime] | None = None
        while day <= last_day:
            for span in self._day_spans(day):
                if block is not None and span.start <= block[1]:
                    block = (block[0], max(block[1], span.end))
                    continue
                if block is not None and block[1] > at_utc:
                    yield block
                if span.start > limit:
                    return
                block = (span.start, span.end)
            day += _ONE_DAY
        if block is not None and block[1] > at_utc:
            yield (block[0], None if block[1] > limit else block[1])

    def is_open(self, at: datetime) -> bool:
        """Whether the schedule is open at the instant `at` (aware, any zone)."""
        return self._span_at(self._utc(at)) is not None

    def next_opening(self, after: datetime) -> datetime | None:
        """`after` itself when open then, else the start of the next opening; None past 400 days."""
        at_utc = self._utc(after)
        for start, _ in self._blocks(at_utc):
            return self._out(max(start, at_utc))
        return None

    def next_closing(self, after: datetime) -> datetime | None:
        """`after` itself when closed then, else the end of the current opening (or None)."""
        at_utc = self._utc(after)
        for start, end in self._blocks(at_utc):
            if start > at_utc:
                return self._out(at_utc)
            return None if end is None else self._out(end)
        return self._out(at_utc)

    def periods_on(self, day: date) -> tuple[OpenInterval, ...]:
        """Every period that is open during some part of the local date `day`, in order.

        Includes the previous evening's overnight period running into `day`; intervals are
        not clipped to the day.
        """
        begin = self._instant(day, 0, earliest=True)
        finish = self._instant(day + _ONE_DAY, 0, earliest=True)
        found = [
            OpenInterval(self._out(s.start), self._out(s.end), s.day, s.period, s.kind)
            for d in (day - _ONE_DAY, day, day + _ONE_DAY)
            for s in self._day_spans(d)
            if s.start < finish and s.end > begin
        ]
        return tuple(found)

    def status_at(self, at: datetime) -> HoursStatus:
        """Open or closed at `at`, the reason, and the next opening and closing."""
        at_utc = self._utc(at)
        span = self._span_at(at_utc)
        local_day = self._local_day(at_utc)
        if span is not None:
            closing = self.next_closing(at_utc)
            opening = None if closing is None else self.next_opening(closing)
            if span.day < local_day:
                reason = Reason.OVERNIGHT
                detail = (
                    f"{span.period} started {WEEKDAY_NAMES[span.day.weekday()]} "
                    f"{span.day.isoformat()} ({self.day_plan(span.day).detail})"
                )
            else:
                reason = span.kind
                detail = f"{self.day_plan(span.day).detail}, period {span.period}"
            holiday = self.holiday_name(local_day)
            return HoursStatus(self._out(at_utc), True, reason, detail, opening, closing, holiday)
        plan = self.day_plan(local_day)
        detail = plan.detail
        if plan.kind is Reason.WEEKLY:
            detail = "outside the weekly hours"
        elif plan.kind is Reason.EXTRA_WORKING_DAY:
            detail = f"outside the hours of the {plan.detail}"
        elif plan.kind is Reason.HOLIDAY:
            detail = f"public holiday: {plan.detail}"
        opening = self.next_opening(at_utc)
        closing = None if opening is None else self.next_closing(opening)
        holiday = self.holiday_name(local_day)
        return HoursStatus(self._out(at_utc), False, plan.kind, detail, opening, closing, holiday)


def business_hours(schedules: Mapping[str, Schedule]) -> dict[str, BusinessHours]:
    """One `BusinessHours` per configured schedule, keyed by the schedule's name."""
    return {name: BusinessHours(schedule, name) for name, schedule in schedules.items()}

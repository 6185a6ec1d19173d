"""Business-hours schedules and the after-hours policy, as they appear in the YAML config.

A schedule says when people answer the phone. Everything is wall-clock time in the
schedule's own time zone. The keys, all under ``schedules: <name>:``::

    schedules:
      office:
        timezone: Europe/Moscow          # IANA name, e.g. Europe/Moscow, Europe/Berlin, UTC
        weekly:                          # open periods per weekday; a day not listed is closed
          mon-fri: ["09:00-13:00", "14:00-18:00"]   # a range of days; lunch 13-14 closed
          sat: ["10:00-15:00"]           # one day; also "sat,sun" (a list) or "monday"
        holidays: {country: RU}          # public holidays are closed (see below)
        closed: ["2026-12-31", "2027-05-04..2027-05-08"]   # whole days closed; ".." = range
        shortened: {"2026-12-30": ["09:00-16:00"]}         # these periods replace the day's
        extra_working_days:              # days worked although normally closed
          "2026-12-26": "like: monday"   # ...with Monday's periods
          "2027-02-20": ["10:00-14:00"]  # ...or with their own periods
      night-support:
        timezone: Europe/Berlin
        weekly: {mon-sun: ["20:00-08:00"]}

Periods are ``"HH:MM-HH:MM"``. A period whose end is not after its start runs past midnight:
``"20:00-08:00"`` on Friday is open from Friday 20:00 to Saturday 08:00. ``"00:00-24:00"`` is
the whole day. A period belongs to the day it starts on: Friday's night shift still runs on
Saturday morning even when Saturday is a holiday.

``holidays:`` names the country (ISO code, default ``RU``) and optionally a ``subdivision``
(e.g. ``{country: DE, subdivision: BY}``); its public holidays come from the ``holidays``
package and are closed all day. Without the key (or with ``holidays: off``) public holidays
are ordinary days. A holiday listed under ``extra_working_days`` or ``shortened`` is worked.
The Russian production calendar moves working days (a Saturday worked instead of a Monday
off): list the Saturday under ``extra_working_days`` as ``"like: monday"``; the Monday off is
already a holiday in the package. Or let the calendar do it: ``holidays: {country: RU,
working_weekends: "like: monday"}`` works every weekend day the official calendar makes a
working day (e.g. Saturday 2027-02-20) with Monday's periods (or give a list of periods).

A date may appear in only one of ``closed``, ``shortened`` and ``extra_working_days``.

``AfterHoursPolicy`` (``mode: voicemail`` or ``mode: overflow`` with an ``endpoint``) says what
happens to a call while the schedule is closed; see its fields.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_package
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    field_validator,
)

# The dial-string shape of config.model.ENDPOINT_RE, repeated because model.py will import
# this module for its schedules: section (a test keeps the two equal).
ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*/[^\s/][^\s]*$")
MINUTES_PER_DAY = 24 * 60
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_LOOKUP = {name: i for i, name in enumerate(WEEKDAY_NAMES)} | {
    name[:3]: i for i, name in enumerate(WEEKDAY_NAMES)
}
_PERIOD_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_LIKE_RE = re.compile(r"^\s*like\s*:?\s*([A-Za-z]+)\s*$", re.IGNORECASE)
_PERIOD_HINT = "write HH:MM-HH:MM such as 09:00-18:00"
_DAY_HINT = (
    "use mon, tue, wed, thu, fri, sat, sun, a range such as mon-fri or a list such as sat,sun"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class Period:
    """One open period in wall-clock minutes since local midnight.

    ``end`` is in 1..1440; ``end <= start`` means the period runs past midnight into the next
    day (``overnight``).
    """

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    @property
    def end_offset(self) -> int:
        """The end in minutes since the start day's midnight (> 1440 when overnight)."""
        return self.end + MINUTES_PER_DAY if self.overnight else self.end

    def __str__(self) -> str:
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class DateRange:
    """Consecutive calendar days, both ends included."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last

    def __str__(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()}..{self.last.isoformat()}"


@dataclass(frozen=True, slots=True)
class WorkingDay:
    """An extra working day: its own periods, or those of a weekday (``like``, Monday=0)."""

    periods: tuple[Period, ...] = ()
    like: int | None = None

    def __str__(self) -> str:
        if self.like is not None:
            return f"like: {WEEKDAY_NAMES[self.like]}"
        return ", ".join(str(p) for p in self.periods)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_period(value: object) -> Period:
    """Parse ``"HH:MM-HH:MM"``; raise ValueError saying what is wrong and how to write it."""
    if isinstance(value, Period):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time period; {_PERIOD_HINT}")
    match = _PERIOD_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a time period; {_PERIOD_HINT}")
    sh, sm, eh, em = (int(g) for g in match.groups())
    for hour, minute, which in ((sh, sm, "start"), (eh, em, "end")):
        if minute > 59:
            raise ValueError(f"{value!r}: the {which} minute must be 00-59; {_PERIOD_HINT}")
        if hour > 24 or (hour == 24 and minute != 0):
            raise ValueError(
                f"{value!r}: the {which} hour must be 00-23 (24:00 only as an end); {_PERIOD_HINT}"
            )
    start, end = sh * 60 + sm, eh * 60 + em
    if start == MINUTES_PER_DAY:
        raise ValueError(f"{value!r}: a period cannot start at 24:00; start it at 00:00")
    if start == end:
        raise ValueError(
            f"{value!r} is empty (it starts and ends at the same time); "
            "give a real period, or 00:00-24:00 for the whole day"
        )
    if end == 0:
        end = MINUTES_PER_DAY  # "20:00-00:00" is the same as "20:00-24:00"
    return Period(start, end)


def check_no_overlap(periods: Sequence[Period]) -> None:
    """Reject periods of one day that overlap (touching end-to-start is fine)."""
    ordered = sorted(periods, key=lambda p: p.start)
    for first, second in itertools.pairwise(ordered):
        # Sorted by start and each non-overlapping so far: comparing neighbours suffices.
        if second.start < first.end_offset:
            raise ValueError(
                f'"{first}" and "{second}" overlap; end the first before the second starts, '
                "or merge them into one period"
            )


def _periods_list(value: list[Period]) -> list[Period]:
    check_no_overlap(value)
    return value


def _validate_period(value: object) -> Period:
    return parse_period(value)


PeriodText = Annotated[Period, PlainValidator(_validate_period), PlainSerializer(str)]
DayPeriods = Annotated[list[PeriodText], AfterValidator(_periods_list)]


def parse_days(key: str) -> list[int]:
    """Weekdays (Monday=0) named by a ``weekly:`` key: ``mon``, ``mon-fri``, ``sat,sun``."""
    days: list[int] = []
    for item in str(key).split(","):
        item = item.strip().lower()
        if "-" in item:
            first_name, _, last_name = item.partition("-")
            first, last = _day(first_name.strip(), key), _day(last_name.strip(), key)
            span = (last - first) % 7
            days.extend((first + i) % 7 for i in range(span + 1))
        else:
            days.append(_day(item, key))
    return days


def _day(name: str, key: str) -> int:
    try:
        return _DAY_LOOKUP[name]
    except KeyError:
        raise ValueError(f"{key!r}: unknown day {name!r}; {_DAY_HINT}") from None


def parse_weekday(name: str) -> int:
    """Monday=0 for ``monday``/``mon`` (any case); ValueError otherwise."""
    return _day(name.strip().lower(), name)


def check_week(week: Sequence[Sequence[Period]]) -> None:
    """Reject a week where one day's period (overnight included) overlaps another day's."""
    week_minutes = 7 * MINUTES_PER_DAY
    spans: list[tuple[int, int, str]] = []
    for day, periods in enumerate(week):
        for period in periods:
            label = f"{WEEKDAY_NAMES[day]} {period}"
            start = day * MINUTES_PER_DAY + period.start
            end = day * MINUTES_PER_DAY + period.end_offset
            if end > week_minutes:  # Sunday night runs into Monday
                spans.append((start, week_minutes, label))
                spans.append((0, end - week_minutes, label))
            else:
                spans.append((start, end, label))
    spans.sort()
    reach, reach_label = 0, ""
    for start, end, label in spans:
        if start < reach and label != reach_label:
            raise ValueError(
                f'"{reach_label}" overlaps "{label}"; a period past midnight must end before '
                "the next day's first period starts"
            )
        if end > reach:
            reach, reach_label = end, label


def _parse_date(value: object, hint: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date; {hint}")


def _validate_date_range(value: object) -> DateRange:
    if isinstance(value, DateRange):
        return value
    hint = "write YYYY-MM-DD such as 2026-12-31, or a range such as 2026-12-31..2027-01-08"
    if isinstance(value, str) and ".." in value:
        first_text, _, last_text = value.partition("..")
        first, last = _parse_date(first_text, hint), _parse_date(last_text, hint)
        if last < first:
            raise ValueError(
                f"{value!r} ends before it starts; write the earlier date first, "
                f"e.g. {last.isoformat()}..{first.isoformat()}"
            )
        return DateRange(first, last)
    day = _parse_date(value, hint)
    return DateRange(day, day)


def _validate_working_day(value: object) -> WorkingDay:
    if isinstance(value, WorkingDay):
        return value
    like: object = None
    if isinstance(value, str):
        match = _LIKE_RE.match(value)
        if not match:
            raise ValueError(
                f'{value!r} is neither a list of periods nor "like: <weekday>"; write e.g. '
                '"like: monday" or ["09:00-18:00"]'
            )
        like = match.group(1)
    elif isinstance(value, Mapping):
        if set(value) != {"like"}:
            raise ValueError("a mapping here must be {like: <weekday>}, e.g. {like: monday}")
        like = value["like"]
    if like is not None:
        if not isinstance(like, str):
            raise ValueError(f'"like" needs a weekday name such as monday, not {like!r}')
        return WorkingDay(like=parse_weekday(like))
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(
            'give the periods worked, e.g. ["09:00-18:00"], or "like: monday"; '
            "to close the day, list it under closed instead"
        )
    periods: list[Period] = []
    for index, item in enumerate(value):
        try:
            periods.append(parse_period(item))
        except ValueError as exc:
            raise ValueError(f"[{index}] {exc}") from None
    check_no_overlap(periods)
    return WorkingDay(periods=tuple(periods))


DateRangeText = Annotated[DateRange, PlainValidator(_validate_date_range), PlainSerializer(str)]
WorkingDayText = Annotated[WorkingDay, PlainValidator(_validate_working_day), PlainSerializer(str)]


@cache
def _supported_countries() -> dict[str, list[str]]:
    return dict(holidays_package.list_supported_countries())


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


class PublicHolidays(_Strict):
    """Whose public holidays close the schedule (data from the ``holidays`` package)."""

    country: str = Field("RU", description="ISO 3166 country code, e.g. RU, DE, KZ.")
    subdivision: str | None = Field(
        None, description="Region code where holidays differ by region, e.g. BY for Bavaria."
    )
    working_weekends: WorkingDayText | None = Field(
        None,
        description="Hours on weekend days the official calendar makes working days (Russia "
        'moves days off this way), e.g. "like: monday"; default: those days stay closed.',
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in _supported_countries():
            raise ValueError(
                f"unknown country {value!r}; use an ISO 3166 code such as RU, BY, KZ or DE"
            )
        return code

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        if value is None or country is None:
            return value
        known = _supported_countries()[country]
        code = value.strip().upper()
        if code not in known:
            if not known:
                raise ValueError(f"{country} has no subdivisions in the calendar; remove this key")
            raise ValueError(
                f"unknown subdivision {value!r} of {country}; use one of {', '.join(known)}"
            )
        return code


def _holidays_switch(value: object) -> object:
    # YAML turns off/no/false into False; on/yes/true into True.
    if value is False or value is None:
        return None
    if isinstance(value, str) and value.strip().lower() in {"off", "none", "no", "false"}:
        return None
    if value is True:
        return {}
    return value


class Schedule(_Strict):
    """One named business-hours schedule; see the module docstring for the YAML keys."""

    timezone: str = Field(description="IANA time zone name, e.g. Europe/Moscow.")
    weekly: dict[str, DayPeriods] = Field(
        description='Open periods per weekday key ("mon", "mon-fri", "sat,sun").'
    )
    holidays: Annotated[PublicHolidays | None, Field(validate_default=True)] = None
    closed: list[DateRangeText] = Field(
        default_factory=list, description="Dates or ranges (2026-12-31..2027-01-08) closed."
    )
    shortened: dict[date, DayPeriods] = Field(
        default_factory=dict, description="Dates whose periods replace the weekly ones."
    )
    extra_working_days: dict[date, WorkingDayText] = Field(
        default_factory=dict,
        description='Dates worked although normally closed: periods or "like: monday".',
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        name = value.strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(name, sorted(_zone_names()), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else "use an IANA name like Europe/Moscow"
            raise ValueError(f"unknown time zone {value!r}; {hint}") from None
        return name

    @field_validator("holidays", mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        return _holidays_switch(value)

    @field_validator("holidays")
    @classmethod
    def _working_weekends_like(
        cls, value: PublicHolidays | None, info: ValidationInfo
    ) -> PublicHolidays | None:
        weekly = info.data.get("weekly")
        working = value.working_weekends if value is not None else None
        if working is not None and working.like is not None and weekly is not None:
            if not _week_of(weekly)[working.like]:
                name = WEEKDAY_NAMES[working.like]
                raise ValueError(
                    f"working_weekends: like {name}, but {name} has no periods in weekly; "
                    "name a working weekday or list the periods"
                )
        return value

    @field_validator("shortened", "extra_working_days", mode="before")
    @classmethod
    def _date_keys_as_text(cls, value: object) -> object:
        # YAML reads unquoted 2026-12-31 as a date; as text the key path in errors reads well.
        if isinstance(value, Mapping):
            return {k.isoformat() if isinstance(k, date) else k: v for k, v in value.items()}
        return value

    @field_validator("weekly")
    @classmethod
    def _weekdays(cls, weekly: dict[str, list[Period]]) -> dict[str, list[Period]]:
        owner: dict[int, str] = {}
        for key in weekly:
            for day in parse_days(key):
                if day in owner:
                    raise ValueError(
                        f"{WEEKDAY_NAMES[day]} is given by both {owner[day]!r} and {key!r}; "
                        "list each day under one key"
                    )
                owner[day] = key
        check_week(_week_of(weekly))
        return weekly

    @field_validator("shortened")
    @classmethod
    def _shortened_alone(
        cls, shortened: dict[date, list[Period]], info: ValidationInfo
    ) -> dict[date, list[Period]]:
        closed = info.data.get("closed", [])
        for day, periods in shortened.items():
            if not periods:
                raise ValueError(
                    f"{day.isoformat()} has no periods; to close the day list it under closed"
                )
            _not_closed(day, closed, "shortened")
        return shortened

    @field_validator("extra_working_days")
    @classmethod
    def _extra_alone(
        cls, extra: dict[date, WorkingDay], info: ValidationInfo
    ) -> dict[date, WorkingDay]:
        closed = info.data.get("closed", [])
        shortened = info.data.get("shortened", {})
        weekly = info.data.get("weekly")
        for day, working in extra.items():
            _not_closed(day, closed, "extra_working_days")
            if day in shortened:
                raise ValueError(
                    f"{day.isoformat()} is also under shortened; give its periods in one "
                    "place only (remove it from shortened or from extra_working_days)"
                )
            if working.like is not None and weekly is not None:
                if not _week_of(weekly)[working.like]:
                    raise ValueError(
                        f"{day.isoformat()}: like {WEEKDAY_NAMES[working.like]}, but "
                        f"{WEEKDAY_NAMES[working.like]} has no periods in weekly; "
                        "name a working weekday or list the periods"
                    )
        return extra

    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    def week(self) -> tuple[tuple[Period, ...], ...]:
        """Periods for Monday..Sunday (index 0..6), each sorted by start."""
        return _week_of(self.weekly)


def _week_of(weekly: Mapping[str, Sequence[Period]]) -> tuple[tuple[Period, ...], ...]:
    days: list[list[Period]] = [[] for _ in range(7)]
    for key, periods in weekly.items():
        for day in parse_days(key):
            days[day].extend(periods)
    return tuple(tuple(sorted(d, key=lambda p: p.start)) for d in days)


def _not_closed(day: date, closed: Sequence[DateRange], where: str) -> None:
    for closure in closed:
        if day in closure:
            raise ValueError(
                f"{day.isoformat()} is also under closed ({closure}); a day is either closed "
                f"or in {where} - remove it from one of the lists"
            )


class AfterHoursPolicy(_Strict):
    """What happens to a call while its schedule is closed."""

    mode: Literal["voicemail", "overflow"] = Field(
        "voicemail",
        description="voicemail: take a message and promise a callback; overflow: ring "
        "`endpoint` (e.g. an outsourced call centre), then voicemail if nobody answers.",
    )
    endpoint: Annotated[str | None, Field(validate_default=True)] = Field(
        None, description="Dial string for overflow, e.g. PJSIP/+74950000000@trunk."
    )
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to ring the overflow.")
    fallback: Literal["voicemail"] = Field(
        "voicemail", description="What happens when the overflow is not answered or fails."
    )
    greeting: str = Field("closed-night", description="Prompt played when closed.")
    holiday_greeting: str | None = Field(
        None, description="Prompt for public holidays and closed dates; default: greeting."
    )
    night_greeting: str | None = Field(
        None, description="Prompt outside the weekly hours; default: greeting."
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_for_mode(cls, value: str | None, info: ValidationInfo) -> str | None:
        mode = info.data.get("mode")
        if mode == "overflow" and value is None:
            raise ValueError(
                "mode is overflow, so an endpoint is needed; add e.g. "
                "endpoint: PJSIP/+74950000000@trunk, or use mode: voicemail"
            )
        if mode == "voicemail" and value is not None:
            raise ValueError(
                "an endpoint is only used with mode: overflow; remove it or set mode: overflow"
            )
        if value is not None and not ENDPOINT_RE.match(value):
            raise ValueError(
                f"{value!r} is not a dial string; write TECH/resource such as "
                "PJSIP/+74950000000@trunk"
            )
        return value

    @field_validator("greeting", "holiday_greeting", "night_greeting")
    @classmethod
    def _prompt_named(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the prompt name is empty; name a prompt or remove the key")
        return value


def describe_holidays(value: PublicHolidays | None) -> str:
    """A short human label for a schedule's holiday setting (used by reports)."""
    if value is None:
        return "no public holidays"
    region = f"-{value.subdivision}" if value.subdivision else ""
    return f"public holidays of {value.country}{region}"

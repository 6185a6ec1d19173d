"""The schedules: and after_hours: config models: the documented shape and every error."""

from __future__ import annotations

from datetime import date

import pytest

from pbx_service.config import hours as hours_config
from pbx_service.config import model
from pbx_service.config.hours import (
    AfterHoursPolicy,
    DateRange,
    Period,
    PublicHolidays,
    WorkingDay,
    parse_days,
)

from .helpers import errors_of, root

EXAMPLE = """
schedules:
  office:
    timezone: Europe/Moscow
    weekly:
      mon-fri: ["09:00-13:00", "14:00-18:00"]   # lunch closed
      sat: ["10:00-15:00"]
    holidays: {country: RU}
    closed: ["2026-12-31", "2027-05-04..2027-05-08"]
    shortened: {"2026-12-30": ["09:00-16:00"]}
    extra_working_days: {"2026-12-26": "like: monday", 2027-02-20: ["10:00-14:00"]}
  night-support:
    timezone: Europe/Berlin
    weekly: {mon-sun: ["20:00-08:00"]}
after_hours:
  mode: overflow
  endpoint: PJSIP/+74950000000@trunk
  timeout: 25
  holiday_greeting: pbx-holiday
"""


def test_the_documented_example_parses() -> None:
    config = root(EXAMPLE)
    office = config.schedules["office"]
    assert office.zone().key == "Europe/Moscow"
    week = office.week()
    assert week[0] == (Period(540, 780), Period(840, 1080))
    assert week[4] == week[0]
    assert week[5] == (Period(600, 900),)
    assert week[6] == ()
    assert office.holidays == PublicHolidays(country="RU")
    assert office.closed == [
        DateRange(date(2026, 12, 31), date(2026, 12, 31)),
        DateRange(date(2027, 5, 4), date(2027, 5, 8)),
    ]
    assert office.shortened == {date(2026, 12, 30): [Period(540, 960)]}
    assert office.extra_working_days == {
        date(2026, 12, 26): WorkingDay(like=0),
        date(2027, 2, 20): WorkingDay(periods=(Period(600, 840),)),
    }
    night = config.schedules["night-support"].week()
    assert all(day == (Period(1200, 480),) for day in night)
    assert night[4][0].overnight
    assert config.after_hours.endpoint == "PJSIP/+74950000000@trunk"
    assert config.after_hours.timeout == 25
    assert config.after_hours.night_greeting is None


def test_models_are_frozen_and_dump_back_to_the_yaml_words() -> None:
    office = root(EXAMPLE).schedules["office"]
    with pytest.raises(ValueError):
        office.timezone = "UTC"  # type: ignore[misc]
    dumped = office.model_dump(mode="json")
    assert dumped["weekly"]["mon-fri"] == ["09:00-13:00", "14:00-18:00"]
    assert dumped["closed"] == ["2026-12-31", "2027-05-04..2027-05-08"]
    assert dumped["extra_working_days"] == {
        "2026-12-26": "like: monday",
        "2027-02-20": "10:00-14:00",
    }


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mon", [0]),
        ("Monday", [0]),
        ("mon-fri", [0, 1, 2, 3, 4]),
        ("sat,sun", [5, 6]),
        ("fri-mon", [4, 5, 6, 0]),
        ("mon-sun", [0, 1, 2, 3, 4, 5, 6]),
        ("mon, wed-thu", [0, 2, 3]),
    ],
)
def test_weekday_keys(key: str, days: list[int]) -> None:
    assert parse_days(key) == days


def test_whole_day_midnight_end_and_holidays_switch() -> None:
    config = root(
        """
schedules:
  a: {timezone: UTC, weekly: {mon: ["00:00-24:00"], tue: ["20:00-00:00"]}, holidays: off}
  b: {timezone: UTC, weekly: {}, holidays: true}
  c: {timezone: UTC, weekly: {}, holidays: {country: de, subdivision: by}}
"""
    )
    week = config.schedules["a"].week()
    assert week[0] == (Period(0, 1440),)
    assert week[1] == (Period(1200, 1440),)  # 00:00 as an end is midnight
    assert not week[1][0].overnight
    assert config.schedules["a"].holidays is None
    assert config.schedules["b"].holidays == PublicHolidays(country="RU")
    assert config.schedules["c"].holidays == PublicHolidays(country="DE", subdivision="BY")


def test_dial_string_rule_is_the_one_of_the_root_config() -> None:
    assert hours_config.ENDPOINT_RE.pattern == model.ENDPOINT_RE.pattern


def test_after_hours_defaults_to_voicemail() -> None:
    policy = AfterHoursPolicy()
    assert policy.mode == "voicemail"
    assert policy.endpoint is None
    assert policy.fallback == "voicemail"


def _one(doc: str) -> tuple[str, str]:
    found = errors_of(doc)
    assert len(found) == 1, found
    return found[0]


def _sched(body: str) -> str:
    return f"schedules:\n  office:\n    timezone: Europe/Moscow\n{body}"


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        (
            '    weekly: {mon: ["09:00-09:00"]}\n',
            "schedules.office.weekly.mon[0]",
            ["is empty", "00:00-24:00"],
        ),
        (
            '    weekly: {mon: ["00:00-00:00"]}\n',
            "schedules.office.weekly.mon[0]",
            ["is empty", "00:00-24:00"],
        ),
        (
            '    weekly: {mon: ["9-18"]}\n',
            "schedules.office.weekly.mon[0]",
            ["not a time period", "HH:MM-HH:MM"],
        ),
        (
            '    weekly: {mon: ["09:00-18:61"]}\n',
            "schedules.office.weekly.mon[0]",
            ["minute must be 00-59"],
        ),
        (
            '    weekly: {tue: ["08:00-12:00", "25:00-26:00"]}\n',
            "schedules.office.weekly.tue[1]",
            ["hour must be 00-23"],
        ),
        (
            '    weekly: {mon: ["24:00-08:00"]}\n',
            "schedules.office.weekly.mon[0]",
            ["cannot start at 24:00"],
        ),
        (
            '    weekly: {mon-fri: ["09:00-13:00", "12:00-18:00"]}\n',
            "schedules.office.weekly.mon-fri",
            ['"09:00-13:00" and "12:00-18:00" overlap', "merge them"],
        ),
        (
            '    weekly: {sat: ["20:00-08:00", "22:00-23:00"]}\n',
            "schedules.office.weekly.sat",
            ["overlap"],
        ),
        (
            '    weekly: {fri: ["20:00-08:00"], sat: ["07:00-12:00"]}\n',
            "schedules.office.weekly",
            ['"friday 20:00-08:00" overlaps "saturday 07:00-12:00"'],
        ),
        (
            '    weekly: {sun: ["22:00-09:00"], mon-fri: ["08:00-17:00"]}\n',
            "schedules.office.weekly",
            ['"sunday 22:00-09:00" overlaps "monday 08:00-17:00"'],
        ),
        (
            '    weekly: {mon-fri: ["09:00-18:00"], fri: ["19:00-20:00"]}\n',
            "schedules.office.weekly",
            ["friday is given by both 'mon-fri' and 'fri'", "one key"],
        ),
        (
            '    weekly: {mo-fr: ["09:00-18:00"]}\n',
            "schedules.office.weekly",
            ["unknown day 'mo'", "mon-fri"],
        ),
        (
            '    weekly: {}\n    closed: ["2026-02-30"]\n',
            "schedules.office.closed[0]",
            ["not a date", "YYYY-MM-DD"],
        ),
        (
            '    weekly: {}\n    closed: ["2027-01-08..2026-12-31"]\n',
            "schedules.office.closed[0]",
            ["ends before it starts", "2026-12-31..2027-01-08"],
        ),
        (
            '    weekly: {}\n    shortened: {"2026-12-30": []}\n',
            "schedules.office.shortened",
            ["2026-12-30 has no periods", "closed"],
        ),
        (
            '    weekly: {}\n    shortened: {2026-12-30: ["09:00-19:00", "18:00-20:00"]}\n',
            "schedules.office.shortened.2026-12-30",
            ["overlap"],
        ),
        (
            '    weekly: {}\n    closed: ["2026-12-30..2027-01-08"]\n'
            '    shortened: {2026-12-31: ["09:00-16:00"]}\n',
            "schedules.office.shortened",
            ["2026-12-31 is also under closed (2026-12-30..2027-01-08)", "remove it"],
        ),
        (
            '    weekly: {mon: ["09:00-18:00"]}\n    closed: [2026-12-26]\n'
            '    extra_working_days: {2026-12-26: "like: monday"}\n',
            "schedules.office.extra_working_days",
            ["2026-12-26 is also under closed", "remove it"],
        ),
        (
            '    weekly: {mon: ["09:00-18:00"]}\n    shortened: {2026-12-26: ["10:00-12:00"]}\n'
            '    extra_working_days: {2026-12-26: "like: monday"}\n',
            "schedules.office.extra_working_days",
            ["2026-12-26 is also under shortened"],
        ),
        (
            '    weekly: {mon: ["09:00-18:00"]}\n'
            '    extra_working_days: {2026-12-26: "like: sunday"}\n',
            "schedules.office.extra_working_days",
            ["sunday has no periods in weekly"],
        ),
        (
            '    weekly: {mon: ["09:00-18:00"]}\n'
            '    extra_working_days: {2026-12-26: "as monday"}\n',
            "schedules.office.extra_working_days.2026-12-26",
            ['"like: monday"'],
        ),
        (
            '    weekly: {mon: ["09:00-18:00"]}\n'
            '    extra_working_days: {2026-12-26: "like: moonday"}\n',
            "schedules.office.extra_working_days.2026-12-26",
            ["unknown day 'moonday'"],
        ),
        (
            '    weekly: {mon: ["09:00-18:00"]}\n    extra_working_days: {2026-12-26: []}\n',
            "schedules.office.extra_working_days.2026-12-26",
            ["give the periods worked", "closed"],
        ),
        (
            "    weekly: {}\n    holidays: {country: XX}\n",
            "schedules.office.holidays.country",
            ["unknown country 'XX'", "such as RU"],
        ),
        (
            "    weekly: {}\n    holidays: {country: RU, subdivision: MOW}\n",
            "schedules.office.holidays.subdivision",
            ["RU has no subdivisions", "remove this key"],
        ),
        (
            "    weekly: {}\n    holidays: {country: DE, subdivision: XX}\n",
            "schedules.office.holidays.subdivision",
            ["unknown subdivision 'XX' of DE", "BY"],
        ),
        (
            "    weekly: {mon: ['09:00-18:00']}\n"
            "    holidays: {country: RU, working_weekends: 'like: saturday'}\n",
            "schedules.office.holidays",
            ["working_weekends: like saturday, but saturday has no periods"],
        ),
        (
            "    weekly: {}\n    holidays: {country: RU, working_weekends: 'yes'}\n",
            "schedules.office.holidays.working_weekends",
            ['"like: monday"'],
        ),
        (
            "    weekly: {}\n    holidays: {country: RU, region: X}\n",
            "schedules.office.holidays.region",
            ["Extra inputs are not permitted"],
        ),
        (
            "    weekly: {}\n    closd: []\n",
            "schedules.office.closd",
            ["Extra inputs are not permitted"],
        ),
    ],
)
def test_schedule_errors_name_the_key_and_the_fix(body: str, path: str, words: list[str]) -> None:
    where, message = _one(_sched(body))
    assert where == path
    for word in words:
        assert word in message


def test_unknown_timezone_suggests_the_close_name() -> None:
    where, message = _one("schedules:\n  office: {timezone: Europe/Moskow, weekly: {}}\n")
    assert where == "schedules.office.timezone"
    assert "unknown time zone 'Europe/Moskow'" in message
    assert "did you mean Europe/Moscow?" in message
    where, message = _one("schedules:\n  office: {timezone: Mars/Olympus, weekly: {}}\n")
    assert "unknown time zone 'Mars/Olympus'" in message
    assert "Europe/Moscow" in message


def test_several_errors_are_reported_together() -> None:
    found = errors_of(_sched('    weekly: {mon: ["09:00-09:00", "x"]}\n    closed: ["soon"]\n'))
    assert [where for where, _ in found] == [
        "schedules.office.weekly.mon[0]",
        "schedules.office.weekly.mon[1]",
        "schedules.office.closed[0]",
    ]


@pytest.mark.parametrize(
    ("policy", "path", "words"),
    [
        ("{mode: overflow}", "after_hours.endpoint", ["endpoint is needed", "PJSIP/"]),
        ("{endpoint: PJSIP/101}", "after_hours.endpoint", ["only used with mode: overflow"]),
        (
            "{mode: overflow, endpoint: 'not a dial string'}",
            "after_hours.endpoint",
            ["not a dial string", "TECH/resource"],
        ),
        ("{mode: forward}", "after_hours.mode", ["'voicemail' or 'overflow'"]),
        ("{timeout: 0}", "after_hours.timeout", ["greater than 0"]),
        ("{night_greeting: ' '}", "after_hours.night_greeting", ["prompt name is empty"]),
        ("{fallback: hangup}", "after_hours.fallback", ["'voicemail'"]),
    ],
)
def test_after_hours_errors(policy: str, path: str, words: list[str]) -> None:
    where, message = _one(
        f"schedules: {{}}\nafter_hours: {policy}\n",
    )
    assert where == path
    for word in words:
        assert word in message

"""The `pbx-service hours` report text and its time parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pbx_service.calls.hours import BusinessHours, NaiveTimeError, business_hours
from pbx_service.errors import PbxError
from pbx_service.ops.hours_report import BadTimeError, parse_at, render_hours, render_hours_at

from .helpers import BERLIN, MOSCOW, root

SCHEDULES = """
schedules:
  office:
    timezone: Europe/Moscow
    weekly:
      mon-fri: ["09:00-13:00", "14:00-18:00"]
      sat: ["10:00-15:00"]
    holidays: {country: RU}
    closed: ["2026-12-31"]
    shortened: {"2026-12-30": ["09:00-16:00"]}
    extra_working_days: {"2026-12-26": "like: monday"}
  night-support:
    timezone: Europe/Berlin
    weekly: {mon-sun: ["20:00-08:00"]}
"""


def _all() -> dict[str, BusinessHours]:
    built = business_hours(root(SCHEDULES).schedules)
    assert list(built) == ["office", "night-support"]
    assert built["office"].name == "office"
    return built


def test_report_on_new_years_eve() -> None:
    text = render_hours(_all(), parse_at("2026-12-31 17:30", MOSCOW))
    assert text == (
        "Business hours at Thu 2026-12-31 14:30 UTC\n"
        "\n"
        "office  (Europe/Moscow, public holidays of RU)\n"
        "  at       Thu 2026-12-31 17:30 MSK\n"
        "  status   CLOSED (closure): closed (2026-12-31)\n"
        "  opens    Sat 2027-01-09 10:00 MSK (in 8 d 16 h 30 min)\n"
        "  closes   Sat 2027-01-09 15:00 MSK (in 8 d 21 h 30 min)\n"
        "  today    closed all day (closure: closed (2026-12-31))\n"
        "\n"
        "night-support  (Europe/Berlin, no public holidays)\n"
        "  at       Thu 2026-12-31 15:30 CET\n"
        "  status   CLOSED (weekly): outside the weekly hours\n"
        "  opens    Thu 2026-12-31 20:00 CET (in 4 h 30 min)\n"
        "  closes   Fri 2027-01-01 08:00 CET (in 16 h 30 min)\n"
        "  today    20:00-08:00 (weekly: weekly hours)\n"
    )


def test_report_while_open_shows_closing_then_reopening() -> None:
    text = render_hours(_all(), parse_at("2027-01-01T00:30+01:00", BERLIN))
    assert "  status   CLOSED (holiday): public holiday: New Year Holidays\n" in text
    assert "  today    closed all day (holiday: New Year Holidays)\n" in text
    assert (
        "  status   OPEN (overnight): 20:00-08:00 started thursday 2026-12-31 (weekly hours)\n"
        "  closes   Fri 2027-01-01 08:00 CET (in 7 h 30 min)\n"
        "  reopens  Fri 2027-01-01 20:00 CET (in 19 h 30 min)\n"
    ) in text


def test_report_durations_count_real_time_across_dst() -> None:
    night = {"night": _all()["night-support"]}
    text = render_hours(night, parse_at("2026-10-24 21:00", BERLIN))
    # 21:00 CEST to 08:00 CET is 12 real hours, not the 11 the wall clock suggests.
    assert "  closes   Sun 2026-10-25 08:00 CET (in 12 h)\n" in text


def test_report_without_schedules_and_with_nothing_ahead() -> None:
    assert "(no schedules configured)" in render_hours({}, datetime(2026, 1, 1, tzinfo=UTC))
    never = {
        "never": BusinessHours(root("schedules: {n: {timezone: UTC, weekly: {}}}").schedules["n"])
    }
    text = render_hours(never, datetime(2026, 1, 1, tzinfo=UTC))
    assert "  opens    not within 400 days\n" in text
    with pytest.raises(NaiveTimeError):
        render_hours(never, datetime(2026, 1, 1))


def test_report_at_a_wall_time_asks_each_schedule_on_its_own_clock() -> None:
    text = render_hours_at(_all(), "2026-12-31 19:30")
    assert text.startswith("Business hours at 2026-12-31 19:30 (each schedule's local time)\n")
    assert "  at       Thu 2026-12-31 19:30 MSK\n" in text
    assert "  at       Thu 2026-12-31 19:30 CET\n" in text
    assert "  opens    Thu 2026-12-31 20:00 CET (in 30 min)\n" in text


def test_report_at_now_is_one_instant_for_all() -> None:
    fixed = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)  # 21:00 in Moscow, 19:00 in Berlin
    text = render_hours_at(_all(), "now", now=fixed)
    assert "  at       Wed 2026-11-25 21:00 MSK\n" in text
    assert "  at       Wed 2026-11-25 19:00 CET\n" in text
    with pytest.raises(BadTimeError):
        render_hours_at(_all(), "yesterday")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31 17:30", datetime(2026, 12, 31, 14, 30, tzinfo=UTC)),
        ("2026-12-31T17:30", datetime(2026, 12, 31, 14, 30, tzinfo=UTC)),
        (" 2026-12-31 17:30:15 ", datetime(2026, 12, 31, 14, 30, 15, tzinfo=UTC)),
        ("2026-12-31T17:30+01:00", datetime(2026, 12, 31, 16, 30, tzinfo=UTC)),
        ("2026-12-31T16:30Z", datetime(2026, 12, 31, 16, 30, tzinfo=UTC)),
        ("2026-12-31", datetime(2026, 12, 30, 21, 0, tzinfo=UTC)),
    ],
)
def test_parse_at_forms(text: str, expected: datetime) -> None:
    parsed = parse_at(text, MOSCOW)
    assert parsed.astimezone(UTC) == expected
    assert parsed.tzinfo == MOSCOW


def test_parse_at_now_uses_the_given_clock() -> None:
    fixed = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert parse_at("now", MOSCOW, now=fixed) == fixed
    assert parse_at(" NOW ", MOSCOW, now=fixed).tzinfo == MOSCOW
    assert parse_at("now", MOSCOW).tzinfo == MOSCOW


def test_parse_at_ambiguous_is_the_first_reading_and_gap_is_an_error() -> None:
    first = parse_at("2026-10-25 02:30", BERLIN)
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    with pytest.raises(BadTimeError, match="does not exist in Europe/Berlin"):
        parse_at("2026-03-29 02:30", BERLIN)


@pytest.mark.parametrize("text", ["tomorrow", "31.12.2026 17:30", "2026-12-31 25:00", ""])
def test_parse_at_rejects_with_the_accepted_forms(text: str) -> None:
    with pytest.raises(BadTimeError, match="YYYY-MM-DD HH:MM") as caught:
        parse_at(text, ZoneInfo("Europe/Moscow"))
    assert isinstance(caught.value, PbxError)
    assert caught.value.error_id == "hours-bad-time"

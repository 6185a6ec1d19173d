"""BusinessHours: weekly hours, Russian holidays, special dates, overnight periods and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pbx_service.calls.hours import BusinessHours, NaiveTimeError, Reason
from pbx_service.errors import PbxError

from .helpers import BERLIN, MOSCOW, hours, local

OFFICE = """
timezone: Europe/Moscow
weekly:
  mon-fri: ["09:00-13:00", "14:00-18:00"]
holidays: {country: RU}
"""

NIGHT = """
timezone: Europe/Berlin
weekly: {mon-sun: ["20:00-08:00"]}
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# -- weekly hours ---------------------------------------------------------------------


def test_weekly_hours_with_a_lunch_break() -> None:
    office = hours(OFFICE)
    assert not office.is_open(local("2026-11-23 08:59"))  # Monday
    assert office.is_open(local("2026-11-23 09:00"))
    assert office.is_open(local("2026-11-23 12:59"))
    assert not office.is_open(local("2026-11-23 13:00"))  # lunch
    assert office.is_open(local("2026-11-23 14:00"))
    assert not office.is_open(local("2026-11-23 18:00"))
    assert not office.is_open(local("2026-11-28 12:00"))  # Saturday
    assert office.next_opening(local("2026-11-23 13:10")) == local("2026-11-23 14:00")
    assert office.next_closing(local("2026-11-23 10:00")) == local("2026-11-23 13:00")
    assert office.next_opening(local("2026-11-27 18:00")) == local("2026-11-30 09:00")


def test_next_opening_is_the_instant_itself_when_open_and_closing_when_closed() -> None:
    office = hours(OFFICE)
    at = local("2026-11-23 10:15")
    assert office.next_opening(at) == at
    closed_at = local("2026-11-23 13:30")
    assert office.next_closing(closed_at) == closed_at


def test_any_input_zone_gives_the_same_answer_in_the_schedule_zone() -> None:
    office = hours(OFFICE)
    tokyo = local("2026-11-23 15:30", MOSCOW).astimezone(ZoneInfo("Asia/Tokyo"))
    assert office.is_open(tokyo)
    closing = office.next_closing(tokyo)
    assert closing == local("2026-11-23 18:00")
    assert closing is not None and closing.tzinfo == MOSCOW


def test_naive_datetime_is_rejected_with_the_fix() -> None:
    with pytest.raises(NaiveTimeError, match="no time zone") as caught:
        hours(OFFICE).is_open(datetime(2026, 11, 23, 10, 0))
    assert isinstance(caught.value, PbxError)
    assert caught.value.error_id == "hours-naive-time"


def test_status_when_open_gives_the_closing_and_the_reopening() -> None:
    status = hours(OFFICE).status_at(local("2026-11-23 10:00"))
    assert status.is_open
    assert status.reason is Reason.WEEKLY
    assert status.holiday is None
    assert "09:00-13:00" in status.detail
    assert status.next_closing == local("2026-11-23 13:00")
    assert status.next_opening == local("2026-11-23 14:00")


def test_status_when_closed_gives_the_opening_and_its_end() -> None:
    status = hours(OFFICE).status_at(local("2026-11-28 10:00"))
    assert not status.is_open
    assert status.reason is Reason.WEEKLY
    assert status.detail == "outside the weekly hours"
    assert status.next_opening == local("2026-11-30 09:00")
    assert status.next_closing == local("2026-11-30 13:00")


def test_touching_periods_are_one_opening() -> None:
    shift = hours(
        """
timezone: Europe/Moscow
weekly: {fri: ["20:00-24:00"], sat: ["00:00-08:00", "08:00-10:00"]}
"""
    )
    assert shift.next_closing(local("2026-11-27 21:00")) == local("2026-11-28 10:00")
    assert shift.next_opening(local("2026-11-27 12:00")) == local("2026-11-27 20:00")


def test_always_open_and_never_open() -> None:
    always = hours("timezone: UTC\nweekly: {mon-sun: ['00:00-24:00']}\n")
    at = utc("2026-06-01 12:00")
    assert always.is_open(at)
    assert always.next_opening(at) == at
    assert always.next_closing(at) is None
    status = always.status_at(at)
    assert status.is_open and status.next_closing is None and status.next_opening is None

    never = hours("timezone: UTC\nweekly: {}\n")
    assert not never.is_open(at)
    assert never.next_opening(at) is None
    assert never.next_closing(at) == at
    status = never.status_at(at)
    assert not status.is_open and status.next_opening is None and status.next_closing is None


def test_nothing_within_400_days_is_none() -> None:
    rare = hours("timezone: UTC\nweekly: {}\nextra_working_days: {2028-06-01: ['10:00-12:00']}\n")
    assert rare.next_opening(utc("2027-01-01 00:00")) is None
    assert rare.next_opening(utc("2027-06-01 00:00")) == utc("2028-06-01 10:00")


# -- Russian public holidays -----------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        "2026-01-01",
        "2026-01-02",
        "2026-01-05",
        "2026-01-06",
        "2026-01-07",
        "2026-01-08",
        "2026-01-09",  # the day off moved from Saturday 3 January
        "2026-02-23",
        "2026-03-09",  # 8 March is a Sunday: Monday off
        "2026-05-01",
        "2026-05-11",  # 9 May is a Saturday: Monday off
        "2026-06-12",
        "2026-11-04",
        "2026-12-31",
        "2027-01-01",
        "2027-01-08",
        "2027-02-22",
        "2027-02-23",
        "2027-03-08",
        "2027-05-03",
        "2027-05-10",
        "2027-06-14",
        "2027-11-04",
        "2027-11-05",
        "2027-12-31",
    ],
)
def test_russian_public_holidays_are_closed(day: str) -> None:
    office = hours(OFFICE)
    at = local(f"{day} 11:00")
    assert at.weekday() < 5, "pick working weekdays only"
    status = office.status_at(at)
    assert not status.is_open
    assert status.reason is Reason.HOLIDAY
    assert status.detail.startswith("public holiday: ")
    assert office.holiday_name(date.fromisoformat(day))


def test_new_year_holidays_reopen_on_the_first_working_monday() -> None:
    office = hours(OFFICE)
    status = office.status_at(local("2026-01-05 12:00"))
    assert "New Year" in status.detail
    assert status.holiday == "New Year Holidays"
    assert status.next_opening == local("2026-01-12 09:00")  # 9 January is a day off too
    assert office.next_opening(local("2027-01-03 12:00")) == local("2027-01-11 09:00")


def test_eighth_of_march_on_sunday_moves_to_monday() -> None:
    office = hours(OFFICE)
    assert office.next_opening(local("2026-03-06 18:30")) == local("2026-03-10 09:00")
    assert office.is_open(local("2026-03-06 17:00"))


def test_ordinary_weekdays_stay_open_with_holidays_on() -> None:
    office = hours(OFFICE)
    for day in ("2026-01-12", "2026-03-10", "2026-05-12", "2027-02-24", "2027-11-08"):
        assert office.is_open(local(f"{day} 10:00")), day


def test_without_holidays_key_holidays_are_ordinary_days() -> None:
    plain = hours("timezone: Europe/Moscow\nweekly: {mon-fri: ['09:00-18:00']}\n")
    assert plain.is_open(local("2026-01-05 10:00"))
    assert plain.holiday_name(date(2026, 1, 5)) is None


def test_other_country_and_subdivision() -> None:
    bavaria = hours(
        "timezone: Europe/Berlin\nweekly: {mon-fri: ['09:00-17:00']}\n"
        "holidays: {country: DE, subdivision: BY}\n"
    )
    assert not bavaria.is_open(local("2026-01-06 10:00", BERLIN))  # Epiphany in Bavaria
    berlin = hours(
        "timezone: Europe/Berlin\nweekly: {mon-fri: ['09:00-17:00']}\n"
        "holidays: {country: DE, subdivision: BE}\n"
    )
    assert berlin.is_open(local("2026-01-06 10:00", BERLIN))


# -- special dates ------------------------------------------------------------------------

YEAR_END = """
timezone: Europe/Moscow
weekly:
  mon-fri: ["09:00-18:00"]
holidays: {country: RU}
closed: ["2026-12-29", "2027-05-04..2027-05-07"]
shortened: {"2026-12-30": ["09:00-16:00"]}
extra_working_days:
  "2026-12-26": "like: monday"
  "2027-02-20": "like: monday"
  "2027-01-05": ["10:00-14:00"]
"""


def test_closure_dates_and_ranges() -> None:
    schedule = hours(YEAR_END)
    status = schedule.status_at(local("2026-12-29 10:00"))  # a Tuesday
    assert not status.is_open
    assert status.reason is Reason.CLOSURE
    assert "2026-12-29" in status.detail
    assert status.next_opening == local("2026-12-30 09:00")
    for day in ("2027-05-04", "2027-05-05", "2027-05-06", "2027-05-07"):
        assert schedule.status_at(local(f"{day} 12:00")).reason is Reason.CLOSURE
    assert schedule.is_open(local("2027-05-11 12:00"))
    # 8-10 May are the weekend and Victory Day observed.
    assert schedule.next_opening(local("2027-05-04 12:00")) == local("2027-05-11 09:00")


def test_shortened_pre_holiday_day() -> None:
    schedule = hours(YEAR_END)
    assert schedule.is_open(local("2026-12-30 15:59"))
    status = schedule.status_at(local("2026-12-30 16:30"))
    assert not status.is_open
    assert status.reason is Reason.SHORTENED
    assert schedule.next_closing(local("2026-12-30 10:00")) == local("2026-12-30 16:00")


def test_year_end_rolls_into_january() -> None:
    schedule = hours(YEAR_END)
    status = schedule.status_at(local("2026-12-30 17:00"))
    # 31 Dec and 1-8 Jan are holidays; 5 Jan is worked 10-14; then Monday 11 Jan.
    assert status.next_opening == local("2027-01-05 10:00")
    assert status.next_closing == local("2027-01-05 14:00")
    assert schedule.next_opening(local("2027-01-05 14:00")) == local("2027-01-11 09:00")


def test_holiday_made_a_working_day() -> None:
    schedule = hours(YEAR_END)
    status = schedule.status_at(local("2027-01-05 11:00"))
    assert status.is_open
    assert status.reason is Reason.EXTRA_WORKING_DAY
    assert status.holiday == "New Year Holidays"
    assert "New Year" in status.detail  # the holiday is named as worked
    assert not schedule.is_open(local("2027-01-05 14:30"))
    assert schedule.status_at(local("2027-01-05 15:00")).reason is Reason.EXTRA_WORKING_DAY


def test_saturday_worked_like_monday() -> None:
    schedule = hours(YEAR_END)
    status = schedule.status_at(local("2026-12-26 10:00"))  # a Saturday
    assert status.is_open
    assert status.reason is Reason.EXTRA_WORKING_DAY
    assert "monday" in status.detail
    assert schedule.next_closing(local("2026-12-26 10:00")) == local("2026-12-26 18:00")
    assert not schedule.is_open(local("2026-12-27 10:00"))  # the Sunday stays closed


def test_production_calendar_2027_february() -> None:
    schedule = hours(YEAR_END)
    # Saturday 20 Feb is worked instead of Monday 22 Feb; Tuesday 23 Feb is a holiday.
    assert schedule.next_opening(local("2027-02-19 18:30")) == local("2027-02-20 09:00")
    assert schedule.next_opening(local("2027-02-20 18:00")) == local("2027-02-24 09:00")


def test_calendar_working_weekends_when_asked() -> None:
    calendar = hours(
        "timezone: Europe/Moscow\nweekly: {mon-fri: ['09:00-18:00']}\n"
        "holidays: {country: RU, working_weekends: 'like: monday'}\n"
        "closed: [2024-12-28]\n"
    )
    status = calendar.status_at(local("2027-02-20 10:00"))  # Saturday worked for 22 Feb
    assert status.is_open
    assert status.reason is Reason.EXTRA_WORKING_DAY
    assert "official calendar" in status.detail
    assert calendar.is_open(local("2024-11-02 17:59"))  # 2024: Saturday for 4 November
    assert not calendar.is_open(local("2024-12-28 10:00"))  # an explicit closure wins
    assert not calendar.is_open(local("2027-02-13 10:00"))  # an ordinary Saturday
    own = hours(
        "timezone: Europe/Moscow\nweekly: {mon-fri: ['09:00-18:00']}\n"
        "holidays: {country: RU, working_weekends: ['10:00-14:00']}\n"
    )
    assert own.next_closing(local("2027-02-20 10:00")) == local("2027-02-20 14:00")
    # Without the option those Saturdays stay closed.
    assert not hours(OFFICE).is_open(local("2027-02-20 10:00"))


# -- overnight periods ---------------------------------------------------------------------


def test_night_shift_crosses_midnight() -> None:
    night = hours(NIGHT)
    assert not night.is_open(local("2026-11-25 19:59", BERLIN))
    assert night.is_open(local("2026-11-25 20:00", BERLIN))
    assert night.is_open(local("2026-11-26 07:59", BERLIN))
    assert not night.is_open(local("2026-11-26 08:00", BERLIN))
    status = night.status_at(local("2026-11-26 03:00", BERLIN))
    assert status.reason is Reason.OVERNIGHT
    assert "wednesday 2026-11-25" in status.detail
    assert status.next_closing == local("2026-11-26 08:00", BERLIN)
    assert status.next_opening == local("2026-11-26 20:00", BERLIN)
    evening = night.status_at(local("2026-11-25 21:00", BERLIN))
    assert evening.reason is Reason.WEEKLY


def test_sunday_night_runs_into_monday() -> None:
    sunday = hours("timezone: Europe/Moscow\nweekly: {sun: ['22:00-06:00']}\n")
    assert sunday.is_open(local("2026-11-30 05:59"))  # Monday morning
    assert not sunday.is_open(local("2026-11-30 06:00"))
    assert sunday.next_opening(local("2026-11-30 06:00")) == local("2026-12-06 22:00")
    assert sunday.next_closing(local("2026-11-29 23:00")) == local("2026-11-30 06:00")


def test_night_shift_over_new_year() -> None:
    night = hours(NIGHT)
    assert night.is_open(local("2026-12-31 23:59", BERLIN))
    assert night.is_open(local("2027-01-01 00:00", BERLIN))
    assert night.next_closing(local("2026-12-31 22:00", BERLIN)) == local(
        "2027-01-01 08:00", BERLIN
    )


def test_night_shift_belongs_to_the_day_it_starts() -> None:
    shift = hours("timezone: Europe/Moscow\nweekly: {mon-sun: ['20:00-08:00']}\nholidays: {}\n")
    # Friday 8 May is a working day; Saturday 9 May (Victory Day) morning is still open.
    assert shift.is_open(local("2026-05-09 07:00"))
    # The evening of the holiday itself does not open, nor its morning after.
    assert not shift.is_open(local("2026-05-09 21:00"))
    assert not shift.is_open(local("2026-05-10 07:00"))
    assert shift.next_opening(local("2026-05-09 08:00")) == local("2026-05-10 20:00")


def test_periods_on_a_day_include_last_nights_shift() -> None:
    night = hours(NIGHT)
    intervals = night.periods_on(date(2026, 11, 26))
    assert [(i.start, i.end) for i in intervals] == [
        (local("2026-11-25 20:00", BERLIN), local("2026-11-26 08:00", BERLIN)),
        (local("2026-11-26 20:00", BERLIN), local("2026-11-27 08:00", BERLIN)),
    ]
    assert intervals[0].day == date(2026, 11, 25)
    office = hours(OFFICE)
    assert [str(i.period) for i in office.periods_on(date(2026, 11, 23))] == [
        "09:00-13:00",
        "14:00-18:00",
    ]
    assert office.periods_on(date(2026, 1, 5)) == ()


# -- daylight saving time (Europe/Berlin, 2026: 29 March and 25 October) ----------------------


def _hours_between(a: datetime | None, b: datetime | None) -> float:
    assert a is not None and b is not None
    return (b.astimezone(UTC) - a.astimezone(UTC)) / timedelta(hours=1)


def test_night_shift_across_spring_forward_is_an_hour_shorter() -> None:
    night = hours(NIGHT)
    start = night.next_opening(local("2026-03-28 12:00", BERLIN))
    end = night.next_closing(local("2026-03-28 21:00", BERLIN))
    assert start == utc("2026-03-28 19:00")  # 20:00 CET
    assert end == utc("2026-03-29 06:00")  # 08:00 CEST
    assert _hours_between(start, end) == 11
    assert night.is_open(utc("2026-03-29 01:30"))  # 03:30 CEST, just after the jump


def test_night_shift_across_fall_back_is_an_hour_longer() -> None:
    night = hours(NIGHT)
    start = night.next_opening(local("2026-10-24 12:00", BERLIN))
    end = night.next_closing(local("2026-10-24 21:00", BERLIN))
    assert start == utc("2026-10-24 18:00")  # 20:00 CEST
    assert end == utc("2026-10-25 07:00")  # 08:00 CET
    assert _hours_between(start, end) == 13


def test_opening_inside_the_spring_gap_opens_when_the_clocks_jump() -> None:
    early = hours("timezone: Europe/Berlin\nweekly: {sun: ['02:30-05:00']}\n")
    opening = early.next_opening(local("2026-03-29 00:00", BERLIN))
    assert opening == utc("2026-03-29 01:00")
    assert opening is not None and (opening.hour, opening.minute) == (3, 0)  # 03:00 CEST
    assert not early.is_open(utc("2026-03-29 00:59"))  # 01:59 CET
    assert early.is_open(utc("2026-03-29 01:00"))
    assert early.next_closing(opening) == utc("2026-03-29 03:00")  # 05:00 CEST
    # Other Sundays open at 02:30 as written.
    assert early.next_opening(local("2026-04-05 00:00", BERLIN)) == local(
        "2026-04-05 02:30", BERLIN
    )


def test_period_wholly_inside_the_spring_gap_is_empty_that_day() -> None:
    gap = hours("timezone: Europe/Berlin\nweekly: {sun: ['02:00-02:30']}\n")
    assert gap.periods_on(date(2026, 3, 29)) == ()
    assert gap.next_opening(local("2026-03-29 00:00", BERLIN)) == local("2026-04-05 02:00", BERLIN)


def test_repeated_hour_opens_at_first_and_closes_at_second_occurrence() -> None:
    # Python never calls an instant inside a repeated hour equal to one of another zone
    # (PEP 495), so these compare in UTC.
    late = hours("timezone: Europe/Berlin\nweekly: {sun: ['02:30-04:00']}\n")
    opening = late.next_opening(local("2026-10-25 00:00", BERLIN))
    assert opening is not None
    assert opening.astimezone(UTC) == utc("2026-10-25 00:30")  # 02:30 CEST, the first 02:30
    assert opening.tzname() == "CEST"
    assert late.is_open(utc("2026-10-25 01:15"))  # 02:15 CET, inside the opening
    assert late.next_closing(opening) == utc("2026-10-25 03:00")  # 04:00 CET

    until = hours("timezone: Europe/Berlin\nweekly: {sun: ['01:00-02:30']}\n")
    assert until.is_open(utc("2026-10-25 01:10"))  # 02:10 CET, the second reading
    closing = until.next_closing(local("2026-10-25 01:30", BERLIN))
    assert closing is not None
    assert closing.astimezone(UTC) == utc("2026-10-25 01:30")  # the second 02:30 (CET)
    assert closing.fold == 1 and closing.tzname() == "CET"
    assert _hours_between(local("2026-10-25 01:00", BERLIN), closing) == 2.5


def test_status_and_is_open_agree_through_the_fall_back_night() -> None:
    night = hours(NIGHT)
    moment = utc("2026-10-24 17:00")
    while moment < utc("2026-10-25 09:00"):
        assert night.status_at(moment).is_open == night.is_open(moment)
        moment += timedelta(minutes=10)


SANTIAGO = ZoneInfo("America/Santiago")  # changes its clocks at midnight


def test_midnight_spring_forward_in_santiago() -> None:
    # 2026-09-06 00:00 (-04) jumps to 01:00 (-03): midnight itself does not exist.
    shift = hours(
        "timezone: America/Santiago\nweekly: {sat: ['20:00-24:00'], sun: ['00:00-02:00']}\n"
    )
    saturday = local("2026-09-05 21:00", SANTIAGO)
    assert shift.next_closing(saturday) == utc("2026-09-06 05:00")  # 02:00 -03
    assert shift.is_open(utc("2026-09-06 03:59"))  # 23:59 -04
    assert shift.is_open(utc("2026-09-06 04:00"))  # 01:00 -03, the jump
    sunday = shift.periods_on(date(2026, 9, 6))
    # Sunday begins at the jump, exactly when Saturday's period ends: only Sunday's touches it.
    assert [(i.start.astimezone(UTC), i.end.astimezone(UTC)) for i in sunday] == [
        (utc("2026-09-06 04:00"), utc("2026-09-06 05:00")),
    ]


def test_midnight_fall_back_in_santiago() -> None:
    # 2026-04-05 00:00 (-03) goes back to 2026-04-04 23:00 (-04): 23:00-24:00 happens twice.
    late = hours(
        "timezone: America/Santiago\nweekly: {sat: ['22:00-23:30'], sun: ['00:00-01:00']}\n"
    )
    assert late.next_opening(local("2026-04-04 12:00", SANTIAGO)) == utc("2026-04-05 01:00")
    closing = late.next_closing(utc("2026-04-05 01:30"))
    assert closing is not None and closing.astimezone(UTC) == utc("2026-04-05 03:30")
    assert late.is_open(utc("2026-04-05 03:15"))  # 23:15 -04, the second reading
    assert not late.is_open(utc("2026-04-05 03:45"))  # 23:45 -04
    assert late.next_opening(utc("2026-04-05 03:45")) == utc("2026-04-05 04:00")  # 00:00 -04
    assert late.status_at(utc("2026-04-05 03:45")).reason is Reason.WEEKLY


def test_moscow_has_no_dst() -> None:
    office = hours(OFFICE)
    assert (
        _hours_between(
            office.next_opening(local("2026-03-30 08:00")),
            office.next_closing(local("2026-03-30 10:00")),
        )
        == 4
    )


def test_repr_names_the_zone() -> None:
    office = hours(OFFICE)
    assert isinstance(office, BusinessHours)
    assert "Europe/Moscow" in repr(office)

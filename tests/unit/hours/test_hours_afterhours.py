"""decide_call and the callback-promise media."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pbx_service.calls.afterhours import (
    CallAction,
    OverflowTarget,
    callback_promise_media,
    decide_call,
)
from pbx_service.calls.hours import NaiveTimeError, Reason
from pbx_service.config.hours import AfterHoursPolicy

from .helpers import BERLIN, MOSCOW, hours, local

OFFICE = """
timezone: Europe/Moscow
weekly: {mon-fri: ["09:00-18:00"]}
holidays: {country: RU}
closed: ["2026-12-29"]
"""

VOICEMAIL = AfterHoursPolicy(holiday_greeting="pbx-holiday", night_greeting="pbx-night")
OVERFLOW = AfterHoursPolicy(
    mode="overflow", endpoint="PJSIP/+74950000000@trunk", timeout=25, night_greeting="pbx-night"
)


def test_open_routes_normally() -> None:
    decision = decide_call(hours(OFFICE), VOICEMAIL, local("2026-11-25 10:00"), "ru")
    assert decision.action is CallAction.ROUTE
    assert decision.is_open
    assert decision.greeting is None
    assert decision.overflow is None
    assert decision.callback_due is None
    assert decision.callback_promise == ()
    assert decision.status.is_open


def test_night_voicemail_promises_tomorrow_morning() -> None:
    decision = decide_call(hours(OFFICE), VOICEMAIL, local("2026-11-25 19:30"), "ru")
    assert decision.action is CallAction.VOICEMAIL
    assert not decision.is_open
    assert decision.greeting == "pbx-night"
    assert decision.overflow is None
    assert decision.callback_due == local("2026-11-26 09:00")
    assert decision.callback_promise == (
        "sound:pbx/callback-promise",
        "sound:digits/tomorrow",
        "sound:pbx/callback-after-opening",
        "number:9",
    )


def test_holiday_and_closure_play_the_holiday_greeting() -> None:
    holiday = decide_call(hours(OFFICE), VOICEMAIL, local("2027-01-04 12:00"), "ru")
    assert holiday.status.reason is Reason.HOLIDAY
    assert holiday.greeting == "pbx-holiday"
    assert holiday.callback_due == local("2027-01-11 09:00")
    closure = decide_call(hours(OFFICE), VOICEMAIL, local("2026-12-29 12:00"), "ru")
    assert closure.status.reason is Reason.CLOSURE
    assert closure.greeting == "pbx-holiday"
    assert closure.callback_due == local("2026-12-30 09:00")


def test_greetings_fall_back_to_the_common_one() -> None:
    policy = AfterHoursPolicy(greeting="pbx-closed")
    assert decide_call(hours(OFFICE), policy, local("2027-01-04 12:00"), "ru").greeting == (
        "pbx-closed"
    )
    assert decide_call(hours(OFFICE), policy, local("2026-11-25 20:00"), "ru").greeting == (
        "pbx-closed"
    )
    # Only the night greeting set: holidays use the common one.
    assert decide_call(hours(OFFICE), OVERFLOW, local("2027-01-04 12:00"), "ru").greeting == (
        "closed-night"
    )


def test_overflow_rings_the_endpoint_then_voicemail() -> None:
    decision = decide_call(hours(OFFICE), OVERFLOW, local("2026-11-28 12:00"), "en")
    assert decision.action is CallAction.OVERFLOW
    assert decision.overflow == OverflowTarget(
        "PJSIP/+74950000000@trunk", 25.0, CallAction.VOICEMAIL
    )
    assert decision.greeting == "pbx-night"
    assert decision.callback_due == local("2026-11-30 09:00")
    assert decision.callback_promise[1] == "sound:digits/day-1"  # Monday


def test_no_opening_within_the_horizon_makes_no_promise() -> None:
    never = hours("timezone: UTC\nweekly: {}\n")
    decision = decide_call(never, VOICEMAIL, datetime(2026, 1, 1, tzinfo=UTC), "en")
    assert decision.action is CallAction.VOICEMAIL
    assert decision.callback_due is None
    assert decision.callback_promise == ()


def test_decisions_are_frozen() -> None:
    decision = decide_call(hours(OFFICE), VOICEMAIL, local("2026-11-25 19:30"), "ru")
    with pytest.raises(AttributeError):
        decision.greeting = "x"  # type: ignore[misc]


# -- the promise ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "opens", "day_words"),
    [
        ("2026-11-25 07:00", "2026-11-25 09:00", ["sound:digits/today"]),
        ("2026-11-25 23:59", "2026-11-26 09:00", ["sound:digits/tomorrow"]),
        ("2026-11-27 19:00", "2026-11-30 09:00", ["sound:digits/day-1"]),  # Fri -> Mon
        ("2026-11-28 19:00", "2026-11-29 09:00", ["sound:digits/tomorrow"]),
        ("2026-11-23 19:00", "2026-11-29 09:00", ["sound:digits/day-0"]),  # Sunday
        ("2026-11-23 19:00", "2026-11-28 09:00", ["sound:digits/day-6"]),  # Saturday
        (
            "2026-12-30 17:00",
            "2027-01-11 09:00",
            ["sound:digits/day-1", "sound:digits/mon-0", "number:11"],
        ),
    ],
)
def test_promise_day_words(now: str, opens: str, day_words: list[str]) -> None:
    media = callback_promise_media(local(now), local(opens), "ru")
    assert media[0] == "sound:pbx/callback-promise"
    assert media[1 : 1 + len(day_words)] == day_words
    assert media[1 + len(day_words)] == "sound:pbx/callback-after-opening"


@pytest.mark.parametrize(
    ("clock", "lang", "time_words"),
    [
        ("09:00", "ru", ["number:9"]),
        ("09:30", "ru", ["number:9", "number:30"]),
        ("14:05", "ru", ["number:14", "number:0", "number:5"]),
        ("00:00", "ru", ["number:0"]),
        ("09:00", "en", ["number:9", "sound:digits/oclock", "sound:digits/a-m"]),
        ("14:05", "en", ["number:2", "sound:digits/oh", "number:5", "sound:digits/p-m"]),
        ("12:30", "en_GB", ["number:12", "number:30", "sound:digits/p-m"]),
        ("00:15", "en-US", ["number:12", "number:15", "sound:digits/a-m"]),
        ("20:00", "de", ["number:20"]),
    ],
)
def test_promise_time_words(clock: str, lang: str, time_words: list[str]) -> None:
    media = callback_promise_media(local("2026-11-25 07:00"), local(f"2026-11-26 {clock}"), lang)
    assert media[3:] == time_words


def test_days_are_counted_in_the_opening_zone() -> None:
    # 23:30 in Berlin on the 25th is already the 26th in Moscow: the opening is "today".
    now = local("2026-11-25 23:30", BERLIN)
    media = callback_promise_media(now, local("2026-11-26 09:00", MOSCOW), "ru")
    assert media[1] == "sound:digits/today"


def test_custom_prompt_names_and_naive_times() -> None:
    media = callback_promise_media(
        local("2026-11-25 07:00"),
        local("2026-11-25 09:00"),
        "ru",
        promise_prompt="custom/promise",
        after_opening_prompt="custom/after",
    )
    assert media[0] == "sound:custom/promise" and media[2] == "sound:custom/after"
    with pytest.raises(NaiveTimeError):
        callback_promise_media(datetime(2026, 11, 25, 7, 0), local("2026-11-25 09:00"), "ru")

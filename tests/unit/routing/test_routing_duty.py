"""Who is on duty: rota shifts at their boundaries, overnight, DST days, fallback members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbx_service.calls.hours import NaiveTimeError
from pbx_service.calls.routing import DutyRota, duty_rota, on_duty
from pbx_service.config.teams import Team

from .helpers import BERLIN, local, team

# 2026-11-23 is a Monday; 2026-11-27 a Friday.
SALES = team(
    """
    members: [ivanov, petrov, sidorov, kozlov]
    rota:
      timezone: Europe/Moscow
      shifts:
        - {agents: [ivanov, petrov], days: mon-fri, hours: "09:00-18:00"}
        - {agents: [sidorov], days: mon-fri, hours: "18:00-09:00"}
        - {agents: [kozlov], days: sat-sun, hours: "10:00-16:00"}
        - {agents: [petrov, kozlov], days: wed, hours: "12:00-14:00"}
    fallback_members: [PJSIP/200]
    """
)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-11-23 08:59", ["PJSIP/200"]),  # Sunday has no night shift: fallback
        ("2026-11-23 09:00", ["ivanov", "petrov"]),
        ("2026-11-23 17:59", ["ivanov", "petrov"]),
        ("2026-11-23 18:00", ["sidorov"]),
        ("2026-11-24 08:59", ["sidorov"]),  # Monday's night shift, Tuesday morning
        ("2026-11-24 09:00", ["ivanov", "petrov"]),
        ("2026-11-25 11:59", ["ivanov", "petrov"]),
        ("2026-11-25 12:00", ["ivanov", "petrov", "kozlov"]),  # overlapping shifts: union
        ("2026-11-25 14:00", ["ivanov", "petrov"]),
        ("2026-11-28 08:59", ["sidorov"]),  # Friday's night shift runs into Saturday
        ("2026-11-28 09:00", ["PJSIP/200"]),
        ("2026-11-28 09:59", ["PJSIP/200"]),
        ("2026-11-28 10:00", ["kozlov"]),
        ("2026-11-29 15:59", ["kozlov"]),
        ("2026-11-29 16:00", ["PJSIP/200"]),
        ("2026-11-29 23:59", ["PJSIP/200"]),
    ],
)
def test_the_rota_at_shift_boundaries(at: str, expected: list[str]) -> None:
    assert on_duty(SALES, local(at)) == expected


def test_an_instant_in_another_zone_is_the_same_instant() -> None:
    # 06:00 UTC is 09:00 in Moscow.
    assert on_duty(SALES, datetime(2026, 11, 23, 5, 59, tzinfo=UTC)) == ["PJSIP/200"]
    assert on_duty(SALES, datetime(2026, 11, 23, 6, 0, tzinfo=UTC)) == ["ivanov", "petrov"]


def test_without_fallback_nobody_is_on_duty() -> None:
    lean = team(
        "{members: [a], rota: {timezone: Europe/Moscow, shifts: "
        "[{agents: [a], days: mon-fri, hours: '09:00-18:00'}]}}"
    )
    assert on_duty(lean, local("2026-11-23 08:59")) == []
    assert on_duty(lean, local("2026-11-23 09:00")) == ["a"]


def test_without_a_rota_every_member_is_always_on_duty() -> None:
    plain = team("{members: [PJSIP/201, PJSIP/202]}")
    for hour in range(0, 24, 5):
        at = local("2026-11-28 00:00") + timedelta(hours=hour)
        assert on_duty(plain, at) == ["PJSIP/201", "PJSIP/202"]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(NaiveTimeError, match="has no time zone"):
        on_duty(SALES, datetime(2026, 11, 23, 9, 0))


NIGHTS = team(
    """
    members: [early, night, late]
    rota:
      timezone: Europe/Berlin
      shifts:
        - {agents: [night], days: sat-sun, hours: "22:00-06:00"}
        - {agents: [early], days: sun, hours: "02:00-04:00"}
        - {agents: [late], days: sun, hours: "01:00-02:30"}
    """
)


@pytest.mark.parametrize(
    ("at", "fold", "expected"),
    [
        # 2026-03-29: clocks jump from 02:00 to 03:00 (CET to CEST).
        ("2026-03-28 21:59", 0, []),
        ("2026-03-28 22:00", 0, ["night"]),
        ("2026-03-29 01:59", 0, ["night", "late"]),
        ("2026-03-29 03:00", 0, ["night", "early"]),  # 02:00 does not exist: starts at 03:00
        ("2026-03-29 03:59", 0, ["night", "early"]),
        ("2026-03-29 04:00", 0, ["night"]),
        ("2026-03-29 05:59", 0, ["night"]),
        ("2026-03-29 06:00", 0, []),
        # 2026-10-25: clocks go back from 03:00 to 02:00: 02:00-02:59 happens twice.
        ("2026-10-25 02:15", 0, ["night", "late", "early"]),
        # late's 02:30 end is its second occurrence (a period is never cut short).
        ("2026-10-25 02:45", 0, ["night", "late", "early"]),
        ("2026-10-25 02:15", 1, ["night", "late", "early"]),
        ("2026-10-25 02:45", 1, ["night", "early"]),
        ("2026-10-25 03:59", 0, ["night", "early"]),
        ("2026-10-25 04:00", 0, ["night"]),
        ("2026-10-25 05:59", 0, ["night"]),
        ("2026-10-25 06:00", 0, []),
    ],
)
def test_the_rota_on_dst_days(at: str, fold: int, expected: list[str]) -> None:
    assert sorted(on_duty(NIGHTS, local(at, BERLIN, fold))) == sorted(expected)


def test_the_night_of_a_dst_change_lasts_its_real_length() -> None:
    rota = DutyRota(NIGHTS.rota)  # type: ignore[arg-type]
    start = local("2026-03-28 22:00", BERLIN).astimezone(UTC)
    minutes = [start + timedelta(minutes=m) for m in range(-60, 9 * 60)]
    on = [t for t in minutes if "night" in rota.on_duty(t)]
    assert on[0] == start
    assert on[-1] - on[0] == timedelta(hours=7, minutes=-1)  # 22:00 CET to 06:00 CEST


def test_the_rota_is_built_once_per_config() -> None:
    assert NIGHTS.rota is not None
    assert duty_rota(NIGHTS.rota) is duty_rota(NIGHTS.rota)
    copy = Team.model_validate(NIGHTS.model_dump())
    assert copy.rota is not None
    assert duty_rota(copy.rota) is not duty_rota(NIGHTS.rota)

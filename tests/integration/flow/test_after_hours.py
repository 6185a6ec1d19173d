"""After hours, end to end: a closed line takes a voicemail with the callback promise, or
overflows to an outside call centre and falls back to voicemail when that fails."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pbx_service.simulator.driver import AgentBehaviour, Press, Wait, WaitBridged, WaitPlayback
from tests.fixtures.pbx import Pbx

WEBSITE = "84952223344"
ZONE = "Europe/Moscow"


def closed_today() -> dict[str, Any]:
    today = datetime.now(ZoneInfo(ZONE)).date().isoformat()
    return {
        "office": {
            "timezone": ZONE,
            "weekly": {"mon-sun": ["09:00-18:00"]},
            "closed": [today],
        }
    }


ALWAYS_OPEN = {"office": {"timezone": ZONE, "weekly": {"mon-sun": ["00:00-24:00"]}}}


async def test_open_schedule_routes_to_people(pbx: Pbx) -> None:
    agent = pbx.agent("b101", AgentBehaviour.answers(after=0.2))
    await pbx.start_daemon(pbx.config(reception=[agent], schedules=ALWAYS_OPEN, schedule="office"))
    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[WaitBridged(15)])
    await call.wait_script()
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "answered"
    assert "closed" not in [e["kind"] for e in row["events"]]


async def test_closed_takes_voicemail_with_the_callback_promise(pbx: Pbx) -> None:
    agent = pbx.agent("b201", AgentBehaviour.answers(after=0.2))
    await pbx.start_daemon(
        pbx.config(reception=[agent], schedules=closed_today(), schedule="office")
    )
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951234567",
        steps=[WaitPlayback("leave-message", 20), Wait(2), Press("#"), Wait(3)],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "voicemail"
    [closed] = [e for e in row["events"] if e["kind"] == "closed"]
    assert closed["reason"] == "closure"
    tomorrow = datetime.fromordinal(datetime.now(ZoneInfo(ZONE)).date().toordinal() + 1)
    assert closed["next_opening"].startswith(f"{tomorrow:%Y-%m-%d}T09:00")
    played = call.playbacks
    assert played[0].endswith("closed-night"), played
    assert any("callback-promise" in m for m in played), played
    assert any("callback-after-opening" in m for m in played), played
    assert not pbx.driver.legs_of("b201"), "nobody is rung while closed"


async def test_overflow_answered_by_the_outside_centre(pbx: Pbx) -> None:
    centre = pbx.agent("centre1", AgentBehaviour.answers(after=0.3))
    reception = pbx.agent("b301", AgentBehaviour.answers(after=0.2))
    policy = {"mode": "overflow", "endpoint": centre, "timeout": 5}
    await pbx.start_daemon(
        pbx.config(
            reception=[reception], schedules=closed_today(), schedule="office", after_hours=policy
        )
    )
    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[WaitBridged(15)])
    await pbx.driver.wait_leg("centre1")
    await call.wait_script()
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "overflow"
    assert row["answered_by"] == centre


async def test_overflow_busy_falls_back_to_voicemail(pbx: Pbx) -> None:
    centre = pbx.agent("centre2", AgentBehaviour.busy(after=0.2))
    reception = pbx.agent("b401", AgentBehaviour.answers(after=0.2))
    policy = {"mode": "overflow", "endpoint": centre, "timeout": 5}
    await pbx.start_daemon(
        pbx.config(
            reception=[reception], schedules=closed_today(), schedule="office", after_hours=policy
        )
    )
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951234567",
        steps=[WaitPlayback("leave-message", 20), Wait(2), Press("#"), Wait(3)],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "voicemail"
    kinds = [e["kind"] for e in row["events"]]
    assert "overflow_failed" in kinds
    [rung] = [e for e in row["events"] if e["kind"] == "rung"]
    assert rung["rung"][0]["result"] == "BUSY"


async def test_public_holiday_plays_the_holiday_greeting(pbx: Pbx) -> None:
    agent = pbx.agent("b501", AgentBehaviour.answers(after=0.2))
    office = {
        "office": {
            "timezone": ZONE,
            "weekly": {"mon-sun": ["00:00-24:00"]},
            "holidays": {"country": "RU"},
        }
    }
    new_year = datetime(2027, 1, 1, 9, 0, tzinfo=UTC)  # open every day, but a public holiday
    await pbx.start_daemon(
        pbx.config(
            reception=[agent],
            schedules=office,
            schedule="office",
            after_hours={"greeting": "closed-night", "holiday_greeting": "closed-holiday"},
        ),
        clock=lambda: new_year,
    )
    call = await pbx.driver.place_call(
        WEBSITE,
        "+74951234567",
        steps=[WaitPlayback("leave-message", 20), Wait(2), Press("#"), Wait(3)],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    [closed] = [e for e in row["events"] if e["kind"] == "closed"]
    assert closed["reason"] == "holiday"
    assert call.playbacks[0].endswith("closed-holiday"), call.playbacks
    assert not pbx.driver.legs_of("b501")


async def test_overnight_shift_is_open_after_midnight(pbx: Pbx) -> None:
    agent = pbx.agent("b601", AgentBehaviour.answers(after=0.2))
    night = {"night": {"timezone": ZONE, "weekly": {"mon-sun": ["20:00-08:00"]}}}
    two_am = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # 02:00 in Moscow, Thursday
    await pbx.start_daemon(
        pbx.config(reception=[agent], schedules=night, schedule="night"), clock=lambda: two_am
    )
    call = await pbx.driver.place_call(WEBSITE, "+74951234567", steps=[WaitBridged(15)])
    await call.wait_script()
    await pbx.driver.client.rest.hangup(call.channel_id)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "answered"
    assert "closed" not in [e["kind"] for e in row["events"]]

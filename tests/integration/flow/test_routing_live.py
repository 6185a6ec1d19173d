"""Routing decisions as the caller lives them: round-robin order across calls, a rota that
changes at the shift boundary, and an endpoint Asterisk refuses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pbx_service.simulator.driver import AgentBehaviour, Hangup, WaitBridged
from tests.fixtures.pbx import Pbx


async def one_call(pbx: Pbx, number: str) -> dict[str, object]:
    call = await pbx.driver.place_call("84952223344", number, steps=[WaitBridged(20), Hangup()])
    await asyncio.wait_for(call.ended, 30)
    rows = await pbx.wait_ended(len(await pbx.calls()))
    return rows[-1]


async def test_round_robin_starts_after_the_last_agent_rung(pbx: Pbx) -> None:
    a = pbx.agent("rr1", AgentBehaviour.never_answers())
    b = pbx.agent("rr2", AgentBehaviour.never_answers())
    c = pbx.agent("rr3", AgentBehaviour.answers(after=0.1))
    config = pbx.config(
        reception=[a, b, c],
        teams={
            "reception": {
                "members": [a, b, c],
                "strategy": "round_robin",
                "ring_timeout": 0.6,
                "max_wait": 20,
            }
        },
    )
    await pbx.start_daemon(config)
    first = await one_call(pbx, "+74951230201")
    second = await one_call(pbx, "+74951230202")
    rung = [
        [e["rung"][0]["endpoint"] for e in row["events"] if e["kind"] == "rung"]
        for row in (first, second)
    ]
    assert rung[0] == [a, b, c]  # one at a time, in the rotation
    assert rung[1] == [a, b, c]  # c answered last: the rotation starts after c again


async def test_rota_changes_at_the_shift_boundary(pbx: Pbx) -> None:
    day = pbx.agent("day1", AgentBehaviour.answers(after=0.1))
    night = pbx.agent("night1", AgentBehaviour.answers(after=0.1))
    now = [datetime(2026, 11, 25, 14, 59, 30, tzinfo=UTC)]  # 17:59:30 in Moscow
    config = pbx.config(
        reception=["day"],
        agents={"day": {"endpoint": day}, "night": {"endpoint": night}},
        teams={
            "support": {
                "members": ["day", "night"],
                "rota": {
                    "timezone": "Europe/Moscow",
                    "shifts": [
                        {"agents": ["day"], "days": "mon-sun", "hours": "09:00-18:00"},
                        {"agents": ["night"], "days": "mon-sun", "hours": "18:00-09:00"},
                    ],
                },
            }
        },
        flow={"reception_team": "support"},
    )
    await pbx.start_daemon(config, clock=lambda: now[0])
    before = await one_call(pbx, "+74951230203")
    now[0] = datetime(2026, 11, 25, 15, 0, 30, tzinfo=UTC)  # 18:00:30: the night shift
    after = await one_call(pbx, "+74951230204")
    assert before["answered_by"] == day
    assert after["answered_by"] == night


async def test_an_endpoint_asterisk_refuses_does_not_stop_the_call(pbx: Pbx) -> None:
    good = pbx.agent("ok1", AgentBehaviour.answers(after=0.2))
    config = pbx.config(reception=["PJSIP/no-such-phone", good])
    await pbx.start_daemon(config)
    row = await one_call(pbx, "+74951230205")
    assert row["answered_by"] == good
    [rung] = [e for e in row["events"] if e["kind"] == "rung"]
    results = {leg["endpoint"]: leg["result"] for leg in rung["rung"]}
    assert results["PJSIP/no-such-phone"].startswith("rejected")

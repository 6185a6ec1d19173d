"""Callers wait for a busy agent instead of being sent to voicemail at once; an agent is never
offered two calls at once, and gets their wrap-up time between calls."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pbx_service.callbacks import queue
from pbx_service.contacts import import_contacts
from pbx_service.simulator.driver import (
    AgentBehaviour,
    Hangup,
    Press,
    Wait,
    WaitBridged,
    WaitPlayback,
)
from tests.fixtures.pbx import Pbx


async def test_second_caller_waits_for_the_agent_after_wrap_up(pbx: Pbx) -> None:
    agent = pbx.agent("q101", AgentBehaviour.answers(after=0.2))
    config = pbx.config(
        reception=[agent],
        teams={
            "reception": {"members": [agent], "ring_timeout": 5, "wrap_up": 1.0, "max_wait": 30}
        },
    )
    await pbx.start_daemon(config)
    first = await pbx.driver.place_call(
        "84952223344", "+74951110001", steps=[WaitBridged(15), Wait(1.0), Hangup()]
    )
    await first.wait_script()
    second = await pbx.driver.place_call(
        "84952223344", "+74951110002", steps=[WaitBridged(20), Hangup()]
    )
    await asyncio.wait_for(first.ended, 20)
    first_ended = time.monotonic()
    await asyncio.wait_for(second.ended, 30)
    rows = await pbx.wait_ended(2)
    by_caller = {r["caller"]: r for r in rows}
    assert by_caller["+74951110002"]["outcome"] == "answered"
    assert "queued" in [e["kind"] for e in by_caller["+74951110002"]["events"]]
    legs = pbx.driver.legs_of("q101")
    # Rung once per caller: never while on the first call, and only after the wrap-up.
    assert len(legs) == 2
    assert legs[1].arrived_at - first_ended >= 0.9


async def test_press_1_to_be_called_back_keeps_the_place(pbx: Pbx) -> None:
    agent = pbx.agent("q201", AgentBehaviour.never_answers())
    config = pbx.config(
        reception=[agent],
        teams={
            "reception": {
                "members": [agent],
                "ring_timeout": 1.0,
                "max_wait": 1.5,
                "overflow": {"callback_offer": True},
            }
        },
    )
    await pbx.start_daemon(config)
    call = await pbx.driver.place_call(
        "84952223344",
        "+74951110003",
        steps=[
            WaitPlayback("press-1-callback", 20),
            Press("1"),
            WaitPlayback("callback-confirmed", 10),
            Wait(2),
        ],
    )
    await asyncio.wait_for(call.ended, 30)
    [row] = await pbx.wait_ended(1)
    assert row["outcome"] == "callback" and row["callback_task"]
    [task] = await queue.list_tasks(pbx.database_url)
    assert task["sources"] == ["callback_requested"]
    assert task["due_at"] <= row["ended_at"]  # due at once: the caller kept their place


async def test_waiting_callers_are_served_by_tier_then_arrival(pbx: Pbx, tmp_path: Path) -> None:
    csv = tmp_path / "crm.csv"
    csv.write_text("name,phone,tier\nVIP Client,+74951110099,A\n", encoding="utf-8")
    await import_contacts(pbx.database_url, csv)
    agent = pbx.agent("q301", AgentBehaviour.answers(after=0.2))
    config = pbx.config(
        reception=[agent],
        teams={"reception": {"members": [agent], "ring_timeout": 5, "max_wait": 60}},
    )
    await pbx.start_daemon(config)
    busy = await pbx.driver.place_call("84952223344", "+74951110010", steps=[WaitBridged(15)])
    await busy.wait_script()  # the only agent is now talking
    unknown = await pbx.driver.place_call(
        "84952223344", "+74951110011", steps=[WaitBridged(30), Wait(0.5), Hangup()]
    )
    await asyncio.sleep(0.5)  # the unknown caller is first in the queue...
    vip = await pbx.driver.place_call(
        "84952223344", "+74951110099", steps=[WaitBridged(30), Wait(0.5), Hangup()]
    )
    await asyncio.sleep(1.0)  # both wait in the queue
    await pbx.driver.client.rest.hangup(busy.channel_id)
    await asyncio.gather(*(asyncio.wait_for(c.ended, 40) for c in (busy, unknown, vip)))
    rows = {r["caller"]: r for r in await pbx.wait_ended(3)}
    assert "queued" in [e["kind"] for e in rows["+74951110011"]["events"]]
    # ...but the tier A customer who came later is answered first.
    assert rows["+74951110099"]["answered_at"] < rows["+74951110011"]["answered_at"]
    assert all(r["outcome"] == "answered" for r in rows.values())


async def test_waiting_callers_hear_their_position(pbx: Pbx) -> None:
    agent = pbx.agent("q401", AgentBehaviour.answers(after=0.2))
    config = pbx.config(
        reception=[agent],
        teams={
            "reception": {
                "members": [agent],
                "ring_timeout": 5,
                "max_wait": 30,
                "announce_position_every": 0.5,
            }
        },
    )
    await pbx.start_daemon(config)
    busy = await pbx.driver.place_call("84952223344", "+74951110020", steps=[WaitBridged(15)])
    await busy.wait_script()
    waiting = await pbx.driver.place_call(
        "84952223344", "+74951110021", steps=[WaitPlayback("position", 15), Wait(0.3)]
    )
    await waiting.wait_script()
    assert "number:1" in waiting.playbacks
    rest = pbx.driver.client.rest
    assert await rest.get_device_state("Stasis:queue-reception") == "BUSY"  # callers waiting
    await pbx.driver.client.rest.hangup(busy.channel_id)
    await pbx.driver.client.rest.hangup(waiting.channel_id)
    rows = await pbx.wait_ended(2)
    for _ in range(50):
        if await rest.get_device_state("Stasis:queue-reception") == "NOT_INUSE":
            break
        await asyncio.sleep(0.05)
    assert await rest.get_device_state("Stasis:queue-reception") == "NOT_INUSE"
    [row] = [r for r in rows if r["caller"] == "+74951110021"]
    positions = [e["position"] for e in row["events"] if e["kind"] == "position_announced"]
    assert positions and positions[0] == 1


async def test_twenty_callers_five_agents_never_two_calls_at_once(pbx: Pbx) -> None:
    names = [f"m10{n}" for n in range(5)]
    agents = [
        pbx.agent(n, AgentBehaviour.answers(after=0.1 + 0.1 * i)) for i, n in enumerate(names)
    ]
    config = pbx.config(
        reception=agents,
        teams={
            "reception": {
                "members": agents,
                "ring_timeout": 3,
                "max_wait": 60,
                "wrap_up": 0.3,
                "strategy": "longest_idle",
            }
        },
    )
    await pbx.start_daemon(config)
    calls = []
    for n in range(20):
        calls.append(
            await pbx.driver.place_call(
                "84952223344", f"+7495111{n:04d}", steps=[WaitBridged(60), Wait(0.4), Hangup()]
            )
        )
        await asyncio.sleep(0.05)
    await asyncio.gather(*(asyncio.wait_for(c.ended, 90) for c in calls))
    rows = await pbx.wait_ended(20, timeout=60)
    assert [r["outcome"] for r in rows] == ["answered"] * 20
    for name in names:
        # Each call at this phone (from its arrival to its last event) starts after the
        # previous one ended: never two at once.
        spans = sorted(_span(leg.events) for leg in pbx.driver.legs_of(name))
        for (_, end), (begin, _) in itertools.pairwise(spans):
            assert begin >= end, f"{name} was offered a call while on another"


def _span(events: list[Any]) -> tuple[datetime, datetime]:
    stamps = [datetime.strptime(e.timestamp, "%Y-%m-%dT%H:%M:%S.%f%z") for e in events]
    return min(stamps), max(stamps)


async def test_queue_to_agent_costs_one_request_per_control_action(pbx: Pbx) -> None:
    """Music on hold starts once and stops once for a caller who waits, then rings and talks;
    an agent's key changes once per visible state (ringing, in call, free): no request is
    sent for a state that is already so (issue 6: <= 1 REST request per control action)."""
    agent = pbx.agent("q301", AgentBehaviour.answers(after=0.2))
    config = pbx.config(
        reception=[agent],
        teams={
            "reception": {"members": [agent], "ring_timeout": 5, "wrap_up": 0.3, "max_wait": 30}
        },
    )
    daemon = await pbx.start_daemon(config)
    assert daemon.client is not None
    sent: list[tuple[str, str]] = []
    daemon.client.rest.observer = lambda method, path, lag: sent.append((method, path))
    first = await pbx.driver.place_call("84952223344", "+74951110030", steps=[WaitBridged(15)])
    await first.wait_script()
    second = await pbx.driver.place_call(
        "84952223344", "+74951110031", steps=[WaitBridged(20), Wait(0.3), Hangup()]
    )

    assert daemon.app is not None
    app = daemon.app

    def queued() -> bool:
        return any(
            e.kind == "queued"
            for call in app.calls.values()
            if call.record.caller_number == "+74951110031"
            for e in call.record.events
        )

    await pbx.wait_until(queued, 10, "the second caller waiting in the queue")
    await pbx.driver.client.rest.hangup(first.channel_id)
    await asyncio.wait_for(second.ended, 30)
    await pbx.wait_ended(2)
    moh = [(m, p) for m, p in sent if p.endswith("/moh")]
    for call in (first, second):
        mine = [m for m, p in moh if p == f"/channels/{call.peer_id}/moh"]
        assert mine == ["POST", "DELETE"], f"{call}: music on hold requests {mine}"
    keys = [p for m, p in sent if m == "PUT" and p.startswith("/deviceStates/Stasis%3Aagent")]
    keys += [p for m, p in sent if m == "PUT" and p.startswith("/deviceStates/Stasis:agent")]
    assert 0 < len(keys) <= 6, f"two calls: ringing, in call, free each; got {len(keys)}"

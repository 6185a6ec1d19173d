"""Two Asterisk nodes, two daemons, one PostgreSQL, 200 calls: an agent is never offered two
calls at once, whichever node the calls come in on (the reservation lives in PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from pbx_service.ari import AriClient
from pbx_service.audio import shipped_prompts_dir
from pbx_service.daemon import Daemon, Database
from pbx_service.simulator import Simulator
from pbx_service.simulator.driver import AgentBehaviour, CallerDriver, Hangup, Wait, WaitBridged
from pbx_service.store.queries import list_calls
from tests.fixtures.pbx import (
    SIM_PASSWORD,
    SIM_USER,
    TIME_SCALE,
    assert_no_lost_calls,
    build_config,
)

AGENTS = ("anna", "boris", "vera", "gleb", "dina", "egor")
CALLS = 200


async def node(stack: AsyncExitStack, name: str, database_url: str, tmp: Path) -> CallerDriver:
    sim = Simulator(
        username=SIM_USER,
        password=SIM_PASSWORD,
        sound_dirs=[("pbx", shipped_prompts_dir())],
        recordings_dir=tmp / name / "recording",
        time_scale=TIME_SCALE,
    )
    await sim.start()
    stack.push_async_callback(sim.stop)
    client = await stack.enter_async_context(
        AriClient(sim.base_url, SIM_USER, SIM_PASSWORD, "caller-sim")
    )
    driver = CallerDriver(client)
    await driver.start()
    stack.push_async_callback(driver.stop)
    phones = {a: driver.agent(f"{a}1", AgentBehaviour.answers(after=0.1)) for a in AGENTS}
    config = build_config(
        sim.base_url,
        SIM_USER,
        SIM_PASSWORD,
        reception=list(AGENTS),
        agents={a: {"endpoint": phones[a]} for a in AGENTS},
        teams={"reception": {"members": list(AGENTS), "ring_timeout": 3, "max_wait": 90}},
    )
    daemon = Daemon(
        config, data_dir=tmp / name / "data", database=Database(database_url, None), node=name
    )
    await daemon.start()
    stack.push_async_callback(daemon.stop)
    await daemon.wait_connected(10)
    return driver


async def test_two_daemons_never_offer_one_agent_two_calls(
    database_url: str, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        drivers = [await node(stack, n, database_url, tmp_path) for n in ("node1", "node2")]
        calls = []
        for n in range(CALLS):
            driver = drivers[n % 2]
            calls.append(
                await driver.place_call(
                    "84952223344", f"+7495222{n:04d}", steps=[WaitBridged(90), Wait(0.3), Hangup()]
                )
            )
            await asyncio.sleep(0.02)
        await asyncio.gather(*(asyncio.wait_for(c.ended, 120) for c in calls))
        for _ in range(200):
            rows = await list_calls(database_url)
            if len([r for r in rows if r["ended_at"]]) == CALLS:
                break
            await asyncio.sleep(0.1)
        spans = {
            agent: sorted(
                _span(leg.events) for driver in drivers for leg in driver.legs_of(f"{agent}1")
            )
            for agent in AGENTS
        }
    assert [r["outcome"] for r in rows] == ["answered"] * CALLS
    assert {r["node"] for r in rows} == {"node1", "node2"}
    for agent, agent_spans in spans.items():
        for (_, end), (begin, _) in itertools.pairwise(agent_spans):
            assert begin >= end, f"{agent} was offered a call on one node while on another"
    assert_no_lost_calls(rows)


def _span(events: list[Any]) -> tuple[datetime, datetime]:
    stamps = [datetime.strptime(e.timestamp, "%Y-%m-%dT%H:%M:%S.%f%z") for e in events]
    return min(stamps), max(stamps)

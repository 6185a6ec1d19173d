"""PostgreSQL stops in the middle of calls: the daemon keeps answering, the call log spools to
disk, and when the database returns every call is there exactly once, with all its events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbx_service.ari import AriClient
from pbx_service.audio import shipped_prompts_dir
from pbx_service.daemon import Daemon, Database
from pbx_service.simulator import Simulator
from pbx_service.simulator.driver import AgentBehaviour, CallerDriver, Hangup, Wait, WaitBridged
from pbx_service.store.queries import list_calls
from tests.fixtures.database import RestartablePostgres
from tests.fixtures.pbx import (
    SIM_PASSWORD,
    SIM_USER,
    TIME_SCALE,
    assert_no_lost_calls,
    build_config,
)


async def test_database_stopped_mid_calls_loses_and_duplicates_nothing(
    restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    sim = Simulator(
        username=SIM_USER,
        password=SIM_PASSWORD,
        sound_dirs=[("pbx", shipped_prompts_dir())],
        recordings_dir=tmp_path / "recording",
        time_scale=TIME_SCALE,
    )
    await sim.start()
    async with AriClient(sim.base_url, SIM_USER, SIM_PASSWORD, "caller-sim") as client:
        driver = CallerDriver(client)
        await driver.start()
        agents = [driver.agent(f"g10{n}", AgentBehaviour.answers(after=0.2)) for n in range(8)]
        config = build_config(
            sim.base_url, SIM_USER, SIM_PASSWORD, reception=agents, ring_timeout=5
        )
        daemon = Daemon(
            config,
            data_dir=tmp_path / "data",
            database=Database(restartable_postgres.url, None),
            node="outage",
        )
        await daemon.start()
        try:
            await daemon.wait_connected(10)
            calls = []

            async def wave(first: int, count: int) -> None:
                for n in range(first, first + count):
                    calls.append(
                        await driver.place_call(
                            "84952223344",
                            f"+7495000{n:04d}",
                            steps=[WaitBridged(20), Wait(0.5), Hangup()],
                        )
                    )
                    await asyncio.sleep(0.1)

            await wave(0, 4)
            await asyncio.sleep(0.3)  # calls are mid-flight: answered, bridged, talking
            await asyncio.to_thread(restartable_postgres.stop)
            await wave(4, 4)  # the database is down for these from start to end
            await asyncio.gather(*(asyncio.wait_for(c.ended, 30) for c in calls))
            assert daemon.app is not None
            await daemon.app.wait_idle(30)
            assert daemon.writer is not None
            await daemon.writer.flush()
            assert daemon.writer.spooled_batches > 0, "the outage should have spooled rows"
            await asyncio.to_thread(restartable_postgres.start)
            for _ in range(200):
                await daemon.writer.flush()
                if daemon.writer.spooled_batches == 0:
                    break
                await asyncio.sleep(0.1)
            rows = await list_calls(restartable_postgres.url)
        finally:
            await daemon.stop()
            await driver.stop()
            await sim.stop()
    assert sorted(r["caller"] for r in rows) == [f"+7495000{n:04d}" for n in range(8)]
    for row in rows:
        assert row["outcome"] == "answered", row
        seqs = [e["seq"] for e in row["events"]]
        assert seqs == list(range(1, len(seqs) + 1)), "an event lost or duplicated"
        assert row["events"][-1]["kind"] == "ended"
    assert_no_lost_calls(rows)

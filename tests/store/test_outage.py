"""The PostgreSQL server goes away in the middle of the traffic and comes back: every call row
and every event ends up in the database exactly once, with the latest data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pbx_service.store.records import CallRecord
from pbx_service.store.writer import CallLogWriter, wait_idle
from tests.fixtures.database import RestartablePostgres
from tests.store.helpers import fetch, make_call, progress

CALLS = 300
STEPS = 4


async def _submit_round(writer: CallLogWriter, calls: list[CallRecord], step: int) -> None:
    for n, call in enumerate(calls):
        if step:
            progress(call, step)
        writer.submit(call)
        if n % 20 == 0:
            await asyncio.sleep(0.002)  # let batches go out while we keep submitting


async def test_server_stopped_mid_traffic_loses_and_duplicates_nothing(
    restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    pg = restartable_postgres
    writer = CallLogWriter(
        pg.url,
        tmp_path / "spool",
        batch_rows=50,
        batch_seconds=0.02,
        retry_min_seconds=0.05,
        retry_max_seconds=0.3,
        connect_timeout=2,
    )
    await writer.start()
    calls = [make_call(n) for n in range(CALLS)]

    await _submit_round(writer, calls, 0)
    await _submit_round(writer, calls, 1)
    written_before = writer.stats["rows_written"]
    assert written_before > 0

    # Step 2: the server is stopped while half the round is still being submitted.
    await _submit_round(writer, calls[: CALLS // 2], 2)
    stopping = asyncio.create_task(asyncio.to_thread(pg.stop))
    await _submit_round(writer, calls[CALLS // 2 :], 2)
    await stopping

    # Step 3 while the server is down: everything lands in the spool.
    await _submit_round(writer, calls, 3)
    await writer.flush()
    assert writer.pending == 0
    assert writer.spooled_batches > 0
    assert writer.stats["write_failures"] > 0

    await asyncio.to_thread(pg.start)
    await _submit_round(writer, calls, 4)
    await wait_idle(writer, timeout=30)
    await writer.close()
    assert writer.spooled_batches == 0
    assert writer.stats["replayed"] > 0
    assert not list((tmp_path / "spool").glob("batch-*"))
    assert writer.stats["rejected"] == 0

    rows = await fetch(
        pg.url, "SELECT id, menu_path, wait_seconds, talk_seconds, outcome, ended_at FROM calls"
    )
    assert len(rows) == CALLS
    by_id = {r["id"]: r for r in rows}
    for call in calls:
        row = by_id[call.id]
        assert row["menu_path"] == [str(s) for s in range(1, STEPS + 1)]
        assert row["wait_seconds"] == float(STEPS)
        assert row["talk_seconds"] == 5.0 * STEPS
        assert row["outcome"] == "answered"
        assert row["ended_at"] == call.ended_at

    events = await fetch(pg.url, "SELECT call_id, seq, kind FROM call_events")
    assert len(events) == CALLS * STEPS
    assert {(e["call_id"], e["seq"], e["kind"]) for e in events} == {
        (c.id, s, f"step-{s}") for c in calls for s in range(1, STEPS + 1)
    }

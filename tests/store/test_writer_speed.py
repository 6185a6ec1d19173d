"""The writer's reason to exist: batching beats one INSERT per row by an order of magnitude."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.records import CallRecord
from pbx_service.store.rows import snapshot
from pbx_service.store.writer import INSERT_EVENT_SQL, UPSERT_CALL_SQL, CallLogWriter
from tests.fixtures.database import RestartablePostgres
from tests.store.helpers import make_call, progress


def _calls(n: int, offset: int = 0) -> list[CallRecord]:
    calls = []
    for i in range(n):
        call = make_call(offset + i)
        for step in range(1, 4):
            progress(call, step)
        calls.append(call)
    return calls


async def test_writer_is_at_least_ten_times_faster_than_row_by_row(
    restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    # A dedicated server with production durability (fsync on): the shared test server runs
    # with fsync off, which flatters the row-by-row path.
    database_url = restartable_postgres.url
    row_by_row = _calls(200)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        start = time.perf_counter()
        for call in row_by_row:
            snap = snapshot(call, datetime.now(UTC))
            await conn.execute(UPSERT_CALL_SQL, *snap.row)
            for event in snap.events:
                await conn.execute(INSERT_EVENT_SQL, *event)
        per_row_rate = len(row_by_row) / (time.perf_counter() - start)
    finally:
        await conn.close()

    batched = _calls(4000, offset=1000)
    writer = CallLogWriter(database_url, tmp_path / "spool", queue_size=5000)
    await writer.start()
    start = time.perf_counter()
    for call in batched:
        writer.submit(call)
    await writer.flush()
    writer_rate = len(batched) / (time.perf_counter() - start)
    await writer.close()
    assert writer.stats["rows_written"] == len(batched)
    assert writer_rate >= 10 * per_row_rate, (writer_rate, per_row_rate)

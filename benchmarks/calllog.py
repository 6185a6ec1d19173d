"""Call-log write paths on one PostgreSQL, in one run: rows (finished calls, each with its
events) per second for

* one call per transaction through SQLAlchemy `AsyncSession` (one INSERT per row; the naive
  path the writer replaces);
* batched ``executemany`` (asyncpg, 500 calls per transaction);
* ``COPY`` (asyncpg ``copy_records_to_table``, 500 calls per transaction);
* the daemon's `pbx_service.store.writer.CallLogWriter` (its default method, and executemany);

then how long a row waits in the writer: the latency from ``submit`` until the row is
committed (seen by another connection, polled every few milliseconds), under a trickle and
under a burst. Every path starts from the same `CallRecord` objects, so turning them into rows
is part of each figure.

The database is a scratch database created (and dropped afterwards) on the server of
``$DATABASE_URL`` if set (its user needs CREATEDB), otherwise an embedded PostgreSQL 16
(pgserver) in a temporary directory. Migrated first with `pbx_service.store.migrate.upgrade`.

    python benchmarks/calllog.py            # full run
    python benchmarks/calllog.py --quick    # well under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from rig import database, machine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from pbx_service.store.embedded import asyncpg_dsn, normalize_database_url
from pbx_service.store.migrate import upgrade
from pbx_service.store.models import Call, CallEvent
from pbx_service.store.records import CallRecord, Outcome
from pbx_service.store.rows import CALL_COLUMNS, EVENT_COLUMNS, CallSnapshot, snapshot
from pbx_service.store.writer import INSERT_EVENT_SQL, UPSERT_CALL_SQL, CallLogWriter

BATCH = 500
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def make_calls(n: int, events: int = 4, ended: bool = True) -> list[CallRecord]:
    """``n`` answered calls, each with ``events`` steps, like the call flow submits them;
    finished, or (``ended=False``) still talking."""
    calls = []
    for i in range(n):
        start = T0 + timedelta(seconds=i)
        call = CallRecord(
            id=uuid.uuid4(),
            channel_id=f"1795611{i:06d}.{i % 1000}",
            started_at=start,
            did="+74951234567",
            line_label="Sales",
            listed=True,
            caller_number=f"+7916{i:07d}",
            caller_name="Maria Ivanova",
            linkedid=f"1795611{i:06d}.{i % 1000}",
            node="pbx-1",
        )
        kinds = ("entered", "menu", "queued", "answered", "ended", "survey")
        for step in range(events):
            call.add_event(start + timedelta(seconds=5 * step), kinds[step % 6], step=step)
        call.menu_path = ["1", "2"]
        call.answered_at = start + timedelta(seconds=20)
        call.answered_by = "agent-101"
        call.wait_seconds = 20.0
        if ended:
            call.ended_at = start + timedelta(seconds=95)
            call.outcome = Outcome.ANSWERED
            call.talk_seconds = 75.0
        calls.append(call)
    return calls


# -- the write paths ----------------------------------------------------------------------------


async def per_row_sqlalchemy(url: str, calls: Sequence[CallRecord]) -> None:
    """One transaction per call through the ORM: the call's INSERT, then its events'."""
    engine = create_async_engine(normalize_database_url(url))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with sessions() as session:
            for c in calls:
                now = datetime.now(UTC)
                session.add(
                    Call(
                        id=c.id,
                        channel_id=c.channel_id,
                        linkedid=c.linkedid,
                        node=c.node,
                        started_at=c.started_at,
                        answered_at=c.answered_at,
                        ended_at=c.ended_at,
                        caller_number=c.caller_number,
                        caller_name=c.caller_name,
                        did=c.did,
                        line_label=c.line_label,
                        listed=c.listed,
                        outcome=str(c.outcome) if c.outcome else None,
                        answered_by=c.answered_by,
                        wait_seconds=c.wait_seconds,
                        talk_seconds=c.talk_seconds,
                        recording=c.recording,
                        voicemail=c.voicemail,
                        category=c.category,
                        menu_path=list(c.menu_path),
                        updated_at=now,
                    )
                )
                # Flush the parent first: the events reference it.
                await session.flush()
                session.add_all(
                    CallEvent(call_id=c.id, seq=e.seq, at=e.at, kind=e.kind, detail=e.detail)
                    for e in c.events
                )
                await session.commit()
    finally:
        await engine.dispose()


async def batched_executemany(url: str, calls: Sequence[CallRecord]) -> None:
    """asyncpg ``executemany`` of the writer's own upsert/insert, BATCH calls a transaction."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for i in range(0, len(calls), BATCH):
            now = datetime.now(UTC)
            snaps = [snapshot(c, now) for c in calls[i : i + BATCH]]
            async with conn.transaction():
                await conn.executemany(UPSERT_CALL_SQL, [s.row for s in snaps])
                await conn.executemany(INSERT_EVENT_SQL, [e for s in snaps for e in s.events])
    finally:
        await conn.close()


async def copy(url: str, calls: Sequence[CallRecord]) -> None:
    """asyncpg ``copy_records_to_table`` straight into the tables, BATCH calls a transaction
    (no upsert: the bound of what PostgreSQL takes)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for i in range(0, len(calls), BATCH):
            now = datetime.now(UTC)
            snaps = [snapshot(c, now) for c in calls[i : i + BATCH]]
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "calls", records=[s.row for s in snaps], columns=CALL_COLUMNS
                )
                await conn.copy_records_to_table(
                    "call_events",
                    records=[e for s in snaps for e in s.events],
                    columns=EVENT_COLUMNS,
                )
    finally:
        await conn.close()


def writer_path(
    spool: Path, **options: Any
) -> Callable[[str, Sequence[CallRecord]], Awaitable[None]]:
    async def run(url: str, calls: Sequence[CallRecord]) -> None:
        writer = CallLogWriter(url, spool, queue_size=len(calls) + 10, **options)
        await writer.start()
        try:
            for c in calls:
                writer.submit(c)
            await writer.flush()
        finally:
            await writer.close()
        if writer.stats["rows_written"] != len(calls):
            raise RuntimeError(f"writer wrote {writer.stats['rows_written']} of {len(calls)}")

    return run


async def truncate(url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("TRUNCATE calls, call_events CASCADE")
        await conn.execute("VACUUM ANALYZE calls")
        await conn.execute("VACUUM ANALYZE call_events")
    finally:
        await conn.close()


async def count_rows(url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        calls = await conn.fetchval("SELECT count(*) FROM calls")
        events = await conn.fetchval("SELECT count(*) FROM call_events")
    finally:
        await conn.close()
    return int(calls), int(events)


async def throughput(
    url: str, name: str, path: Callable[[str, Sequence[CallRecord]], Awaitable[None]], n: int,
    runs: int, events: int, ended: bool = True,
) -> dict[str, Any]:  # fmt: skip
    rates = []
    for _ in range(runs):
        await truncate(url)
        calls = make_calls(n, events, ended)
        started = time.perf_counter()
        await path(url, calls)
        rates.append(n / (time.perf_counter() - started))
        written = await count_rows(url)
        if written[0] != n:
            raise RuntimeError(f"{name}: {written[0]} calls in the table, expected {n}")
    return {"path": name, "rows": n, "rows_s": statistics.median(rates), "runs": rates}


# -- latency ------------------------------------------------------------------------------------


class TimedWriter(CallLogWriter):
    """The writer, noting when the write of each row's batch began (the end of its wait).
    Benchmark-only: hooks the private ``_write_db``; nothing else changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_started: dict[uuid.UUID, float] = {}

    async def _write_db(self, snaps: Sequence[CallSnapshot]) -> None:
        now = time.perf_counter()
        for snap in snaps:
            self.write_started.setdefault(snap.call_id, now)
        await super()._write_db(snaps)


async def latency(
    url: str, spool: Path, *, trickle_rate: float, trickle_seconds: float, burst: int, events: int
) -> dict[str, Any]:
    """Submit-to-committed latency of the writer (its defaults: 500 rows or 1 s)."""
    await truncate(url)
    writer = TimedWriter(url, spool, queue_size=burst + 10_000)
    await writer.start()
    submitted: dict[uuid.UUID, float] = {}
    committed: dict[uuid.UUID, float] = {}
    poller = await asyncpg.connect(asyncpg_dsn(url))
    stop = asyncio.Event()

    async def poll() -> None:
        # Another connection sees a row only once its transaction has committed.
        while not (stop.is_set() and len(committed) == len(submitted)):
            pending = [i for i in submitted if i not in committed]
            if pending:
                seen = await poller.fetch(
                    "SELECT id FROM calls WHERE id = ANY($1::uuid[])", pending
                )
                now = time.perf_counter()
                for r in seen:
                    committed.setdefault(r["id"], now)
            await asyncio.sleep(0.005)

    poll_task = asyncio.create_task(poll())
    results: dict[str, Any] = {}
    try:
        for phase in ("trickle", "burst"):
            before = dict(submitted)
            if phase == "trickle":
                n = int(trickle_rate * trickle_seconds)
                calls = make_calls(n, events)
                t0 = time.perf_counter()
                for i, c in enumerate(calls):
                    # Paced by the clock, not by sleeps adding up.
                    delay = t0 + i / trickle_rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    submitted[c.id] = time.perf_counter()
                    writer.submit(c)
            else:
                calls = make_calls(burst, events)
                for c in calls:
                    submitted[c.id] = time.perf_counter()
                    writer.submit(c)
            async with asyncio.timeout(60):
                while any(c.id not in committed for c in calls):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            ids = [c.id for c in calls if c.id not in before]
            results[phase] = {
                "rows": len(calls),
                "committed": _percentiles([committed[i] - submitted[i] for i in ids]),
                "wait": _percentiles([writer.write_started[i] - submitted[i] for i in ids]),
            }
        results["max_batch_rows"] = max(writer.batch_sizes)
    finally:
        stop.set()
        await poll_task
        await poller.close()
        await writer.close()
    return results


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50_s": values[len(values) // 2],
        "p99_s": values[min(len(values) - 1, int(len(values) * 0.99))],
        "max_s": values[-1],
    }


# -- main ---------------------------------------------------------------------------------------


async def bench(url: str, args: argparse.Namespace, tmp: Path) -> None:
    await upgrade(url)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        server = await conn.fetchval("SHOW server_version")
        fsync = await conn.fetchval("SHOW fsync")
        commit = await conn.fetchval("SHOW synchronous_commit")
    finally:
        await conn.close()
    print(f"Machine: {machine()}")
    print(f"PostgreSQL {server} (fsync={fsync}, synchronous_commit={commit}), {args.where}")
    print(f"{args.events} events per call; medians of {args.runs} runs\n", flush=True)

    Path_ = Callable[[str, Sequence[CallRecord]], Awaitable[None]]
    paths: list[tuple[str, Path_, int, bool]] = [
        ("per row: SQLAlchemy AsyncSession, a transaction per call", per_row_sqlalchemy,
         args.per_row_calls, True),
        ("batched executemany (asyncpg, 500 per transaction)", batched_executemany, args.calls,
         True),
        ("COPY (asyncpg copy_records_to_table, 500 per tx)", copy, args.calls, True),
        ("CallLogWriter (default: method='copy')", writer_path(tmp / "spool-a"), args.calls,
         True),
        ("CallLogWriter (method='executemany')",
         writer_path(tmp / "spool-b", method="executemany"), args.calls, True),
        # Calls not ended yet: the writer skips its callback-task step for them.
        ("CallLogWriter (copy), calls still in progress", writer_path(tmp / "spool-c"),
         args.calls, False),
    ]  # fmt: skip
    results = []
    for name, path, n, ended in paths:
        print(f"measuring {name} ...", flush=True)
        results.append(await throughput(url, name, path, n, args.runs, args.events, ended))
    per_row = results[0]["rows_s"]
    print()
    width = max(len(r["path"]) for r in results)
    print(f"{'path'.ljust(width)}  {'calls':>6}  {'rows/s':>9}  {'x per row':>9}")
    print(f"{'-' * width}  {'-' * 6}  {'-' * 9}  {'-' * 9}")
    for r in results:
        print(
            f"{r['path'].ljust(width)}  {r['rows']:>6,}  {r['rows_s']:>9,.0f}  "
            f"{r['rows_s'] / per_row:>8.1f}x"
        )

    print("\nmeasuring the writer's latency ...", flush=True)
    lat = await latency(
        url, tmp / "spool-lat", trickle_rate=args.trickle_rate,
        trickle_seconds=args.trickle_seconds, burst=args.burst, events=args.events,
    )  # fmt: skip
    for phase, label in (
        ("trickle", f"trickle ({args.trickle_rate:g} rows/s for {args.trickle_seconds:g} s)"),
        ("burst", f"burst ({args.burst:,} rows at once)"),
    ):
        print(f"  {label}:")
        for key, what in (
            ("wait", "submit -> its batch's write begins"),
            ("committed", "submit -> committed (seen by another connection)"),
        ):
            p = lat[phase][key]
            print(
                f"    {what:50} p50 {p['p50_s'] * 1000:5.0f} ms, "
                f"p99 {p['p99_s'] * 1000:5.0f} ms, max {p['max_s'] * 1000:5.0f} ms"
            )  # fmt: skip
    print(f"  largest batch written: {lat['max_batch_rows']} rows")

    writer_rate = results[3]["rows_s"]
    ratio = writer_rate / per_row
    trickle_wait = lat["trickle"]["wait"]["max_s"]
    trickle_commit = lat["trickle"]["committed"]["max_s"]
    print("\nTargets:")
    targets = [
        (ratio >= 10, f"writer >= 10x the per-row path: {ratio:.1f}x"),
        (
            trickle_wait <= 1.0,
            f"a row waits <= 1 s (trickle, submit -> batch write, max): {trickle_wait:.3f} s",
        ),
        (
            trickle_commit <= 1.0,
            f"(stricter) committed <= 1 s after submit (trickle, max): {trickle_commit:.3f} s",
        ),
        (
            lat["max_batch_rows"] <= BATCH,
            f"... or 500 rows (largest batch): {lat['max_batch_rows']} rows",
        ),
    ]
    for ok, text in targets:
        print(f"  {'[MET]' if ok else '[MISSED]':8} {text}")


async def run(args: argparse.Namespace, tmp: Path) -> None:
    """On a scratch database of $DATABASE_URL's server (created, then dropped: the benchmark
    empties its tables, which must never be someone's call log) or an embedded one."""
    async with database(tmp) as (url, where):
        args.where = where
        await bench(url, args, tmp)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", type=int, default=20_000, help="calls per batched path")
    parser.add_argument("--per-row-calls", type=int, default=2_000, help="calls, per-row path")
    parser.add_argument("--events", type=int, default=4, help="events per call (4)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--burst", type=int, default=5_000, help="rows in the latency burst")
    parser.add_argument("--trickle-rate", type=float, default=200.0, help="rows/s, latency")
    parser.add_argument("--trickle-seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="small counts: well under a minute")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.per_row_calls, args.burst, args.trickle_seconds = 5_000, 500, 2_000, 2.5
    with tempfile.TemporaryDirectory(prefix="pbx-bench-calllog-") as tmp_name:
        asyncio.run(run(args, Path(tmp_name)))


if __name__ == "__main__":
    main()

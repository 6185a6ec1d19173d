"""CallLogWriter against a real PostgreSQL: batching, upserts, odd text, bad rows, spool."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from pbx_service.store.errors import StoreError, WriterStateError
from pbx_service.store.writer import CallLogWriter, wait_idle
from tests.store.helpers import UNREACHABLE_URL, fetch, make_call, progress


async def _count(url: str, table: str) -> int:
    rows = await fetch(url, f"SELECT count(*) AS n FROM {table}")
    return int(rows[0]["n"])


@pytest.mark.parametrize("method", ["executemany", "copy"])
async def test_flushes_when_batch_rows_reached(
    database_url: str, tmp_path: Path, method: Any
) -> None:
    writer = CallLogWriter(
        database_url, tmp_path / "spool", batch_rows=100, batch_seconds=60, method=method
    )
    await writer.start()
    for n in range(250):
        call = make_call(n)
        progress(call, 1)
        writer.submit(call)
    await writer.flush()
    await writer.close()
    assert list(writer.batch_sizes) == [100, 100, 50]
    assert await _count(database_url, "calls") == 250
    assert await _count(database_url, "call_events") == 250
    assert writer.stats["rows_written"] == 250 and writer.stats["batches"] == 3


async def test_flushes_after_batch_seconds_without_flush_call(
    database_url: str, tmp_path: Path
) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=0.2)
    await writer.start()
    for n in range(3):
        writer.submit(make_call(n))
    assert writer.pending == 3
    for _ in range(100):  # the writer's own timer must flush, within 5 s
        if await _count(database_url, "calls") == 3:
            break
        await asyncio.sleep(0.05)
    assert await _count(database_url, "calls") == 3
    assert list(writer.batch_sizes) == [3]
    assert writer.pending == 0
    await writer.close()


@pytest.mark.parametrize("method", ["executemany", "copy"])
async def test_upsert_keeps_latest_version_and_each_event_once(
    database_url: str, tmp_path: Path, method: Any
) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=60, method=method)
    await writer.start()
    call = make_call()
    writer.submit(call)
    for step in range(1, 5):
        progress(call, step)
        writer.submit(call)
        if step % 2 == 0:  # some versions share a batch, others are separate batches
            await writer.flush()
    writer.submit(call)  # the same version again
    await writer.close()
    rows = await fetch(database_url, "SELECT * FROM calls")
    assert len(rows) == 1
    row = rows[0]
    assert row["outcome"] == "answered" and row["answered_by"] == "agent-1"
    assert row["wait_seconds"] == 4.0 and row["talk_seconds"] == 20.0
    assert row["menu_path"] == ["1", "2", "3", "4"]
    assert row["ended_at"] == call.ended_at
    events = await fetch(database_url, "SELECT seq, kind, detail FROM call_events ORDER BY seq")
    assert [(e["seq"], e["kind"]) for e in events] == [(s, f"step-{s}") for s in range(1, 5)]
    assert orjson.loads(events[0]["detail"]) == {"step": 1, "note": "step 1"}


async def test_finished_calls_leave_no_state_behind(database_url: str, tmp_path: Path) -> None:
    """Only calls in progress keep their encoded events (so a resubmission pays only for new
    ones); a finished call's are dropped. The soak benchmark found the writer holding every
    finished call's events up to its 10,000-call cap: ~4 KB a call of steady growth."""
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=60)
    await writer.start()
    calls = [make_call(n) for n in range(20)]
    for call in calls:
        progress(call, 1)
        writer.submit(call)  # in progress: cached
    assert len(writer._known_events) == 20
    for call in calls:
        for step in (2, 3):
            progress(call, step)
            writer.submit(call)  # ended at step 3
    await writer.flush()
    assert writer._known_events == {}
    await writer.close()
    assert await _count(database_url, "call_events") == 60


async def test_submit_copies_the_record(database_url: str, tmp_path: Path) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=60)
    await writer.start()
    call = make_call(caller_name="Before")
    writer.submit(call)
    call.caller_name = "After"
    call.add_event(call.started_at, "later")
    await writer.close()
    rows = await fetch(database_url, "SELECT caller_name FROM calls")
    assert rows[0]["caller_name"] == "Before"
    assert await _count(database_url, "call_events") == 0


ODD_TEXT = [
    "Zoë 😀👩‍👩‍👧 — ☎",
    'O\'Brien "the" `quote` \\ back',
    "x" * 10_000,
    "nul\x00in\x00the\x00middle",
    "'); DROP TABLE calls; --",
    "עברית العربية 中文 \u202e",
    "line\nbreak\ttab\r",
    "lone surrogate \ud800 here",
    "",
]


@pytest.mark.parametrize("method", ["executemany", "copy"])
async def test_caller_text_of_any_length_and_charset_is_stored(
    database_url: str, tmp_path: Path, method: Any
) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=60, method=method)
    await writer.start()
    calls = []
    for n, text in enumerate(ODD_TEXT):
        call = make_call(n, caller_name=text, caller_number=text, line_label=text)
        call.add_event(call.started_at, "odd", text=text, **{"key\x00": text})
        calls.append(call)
        writer.submit(call)
    await writer.close()
    assert writer.stats["rejected"] == 0
    for call, text in zip(calls, ODD_TEXT, strict=True):
        expected = text.replace("\x00", "").replace("\ud800", "\ufffd")
        rows = await fetch(
            database_url,
            "SELECT c.caller_name, c.caller_number, c.line_label, e.detail "
            "FROM calls c JOIN call_events e ON e.call_id = c.id WHERE c.id = $1",
            call.id,
        )
        assert rows[0]["caller_name"] == expected
        assert rows[0]["caller_number"] == expected
        assert rows[0]["line_label"] == expected
        assert orjson.loads(rows[0]["detail"]) == {"text": expected, "key": expected}
    # The hash index on caller_number serves equality on a 10,000-character number too.
    long_number = await fetch(
        database_url, "SELECT count(*) AS n FROM calls WHERE caller_number = $1", "x" * 10_000
    )
    assert long_number[0]["n"] == 1


@pytest.mark.parametrize("method", ["executemany", "copy"])
async def test_bad_row_is_rejected_and_the_rest_of_the_batch_is_written(
    database_url: str, tmp_path: Path, method: Any
) -> None:
    spool = tmp_path / "spool"
    writer = CallLogWriter(database_url, spool, batch_seconds=60, method=method)
    await writer.start()
    good = [make_call(n) for n in range(5)]
    bad = make_call(99)
    bad.outcome = "not-an-outcome"  # type: ignore[assignment]  # violates the CHECK
    for call in [*good[:2], bad, *good[2:]]:
        progress(call, 1)
        writer.submit(call)
    await writer.flush()
    writer.submit(make_call(100))  # the writer goes on afterwards
    await writer.close()
    ids = {r["id"] for r in await fetch(database_url, "SELECT id FROM calls")}
    assert ids >= {c.id for c in good} and bad.id not in ids and len(ids) == 6
    assert writer.stats["rejected"] == 1
    assert writer.spooled_batches == 0
    rejected = [
        orjson.loads(line)
        for f in (spool / "rejected").glob("*.jsonl")
        for line in f.read_bytes().splitlines()
    ]
    assert [r["call_id"] for r in rejected] == [str(bad.id)]
    assert "ck_calls_outcome" in rejected[0]["error"]
    assert rejected[0]["row"]["outcome"] == "not-an-outcome"


async def test_unreachable_database_spools_and_a_new_writer_replays_it(
    database_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    first = CallLogWriter(UNREACHABLE_URL, spool, batch_rows=10, batch_seconds=60)
    await first.start()
    calls = [make_call(n) for n in range(25)]
    for call in calls:
        progress(call, 1)
        first.submit(call)
    await first.flush()
    assert first.spooled_batches == 3 and first.pending == 0
    assert first.stats["rows_written"] == 0
    # Crash: the task is cancelled, close() never runs.
    task = first.task
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(list(spool.glob("batch-*.jsonl"))) == 3

    second = CallLogWriter(database_url, spool)
    assert second.spooled_batches == 3
    await second.start()
    await wait_idle(second)
    await second.close()
    assert second.stats["replayed"] == 3
    assert list(spool.glob("batch-*.jsonl")) == []
    rows = await fetch(database_url, "SELECT id, menu_path FROM calls")
    assert {r["id"] for r in rows} == {c.id for c in calls}
    assert await _count(database_url, "call_events") == 25


async def test_stale_spooled_version_never_overwrites_a_newer_row(
    database_url: str, tmp_path: Path
) -> None:
    call = make_call()
    old = CallLogWriter(UNREACHABLE_URL, tmp_path / "old-spool")
    await old.start()
    old.submit(call)  # version 1, spooled
    await old.close()
    progress(call, 1)
    progress(call, 2)
    progress(call, 3)
    new = CallLogWriter(database_url, tmp_path / "new-spool")
    await new.start()
    new.submit(call)  # version 2, in the database
    await new.close()
    replay = CallLogWriter(database_url, tmp_path / "old-spool")
    await replay.start()
    await wait_idle(replay)
    await replay.close()
    assert replay.stats["replayed"] == 1
    rows = await fetch(database_url, "SELECT outcome, menu_path FROM calls")
    assert [(r["outcome"], r["menu_path"]) for r in rows] == [("answered", ["1", "2", "3"])]


async def test_full_queue_spools_instead_of_dropping(database_url: str, tmp_path: Path) -> None:
    writer = CallLogWriter(
        database_url, tmp_path / "spool", queue_size=5, batch_seconds=60, overflow_chunk=4
    )
    calls = [make_call(n) for n in range(20)]
    for call in calls:  # before start(): nothing drains the queue
        writer.submit(call)
    # 5 queued, 15 overflowed: 3 chunks of 4 on disk already, 3 waiting for the task.
    assert writer.pending == 5 + 3
    assert writer.stats["overflowed"] == 12 and writer.spooled_batches == 3
    await writer.start()
    await wait_idle(writer)
    await writer.close()
    rows = await fetch(database_url, "SELECT id FROM calls")
    assert {r["id"] for r in rows} == {c.id for c in calls}


async def test_damaged_spool_line_is_set_aside_and_the_rest_replayed(
    database_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    first = CallLogWriter(UNREACHABLE_URL, spool)
    await first.start()
    calls = [make_call(n) for n in range(3)]
    for call in calls:
        first.submit(call)
    await first.close()
    (batch,) = spool.glob("batch-*.jsonl")
    lines = batch.read_bytes().splitlines()
    batch.write_bytes(b"\n".join([lines[0], b'{"row": {"id": "trunc', lines[2]]) + b"\n")
    second = CallLogWriter(database_url, spool)
    await second.start()
    await wait_idle(second)
    await second.close()
    ids = {r["id"] for r in await fetch(database_url, "SELECT id FROM calls")}
    assert ids == {calls[0].id, calls[2].id}
    (rejected,) = (spool / "rejected").glob("*.jsonl")
    assert b"trunc" in rejected.read_bytes()


async def test_submit_after_close_is_spooled_and_flush_before_start_fails(
    database_url: str, tmp_path: Path
) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool")
    with pytest.raises(WriterStateError):
        await writer.flush()
    await writer.start()
    await writer.close()
    writer.submit(make_call())
    assert writer.spooled_batches == 1


async def test_events_are_merged_when_versions_share_a_batch(
    database_url: str, tmp_path: Path
) -> None:
    writer = CallLogWriter(database_url, tmp_path / "spool", batch_seconds=60)
    await writer.start()
    calls = [make_call(n) for n in range(10)]
    for step in range(1, 4):
        for call in calls:
            progress(call, step)
            writer.submit(call)
    await writer.close()
    assert list(writer.batch_sizes) == [10]
    assert await _count(database_url, "call_events") == 30
    ids = await fetch(database_url, "SELECT count(DISTINCT id) AS n FROM calls")
    assert ids[0]["n"] == 10
    assert uuid.UUID(str(calls[0].id)) == calls[0].id


async def test_unwritable_spool_keeps_rows_in_memory_and_says_so(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    writer = CallLogWriter(UNREACHABLE_URL, spool, retry_min_seconds=0.01)
    await writer.start()
    shutil.rmtree(spool)
    spool.write_text("not a directory")  # every spool write now fails
    calls = [make_call(n) for n in range(3)]
    for call in calls:
        writer.submit(call)
    with pytest.raises(StoreError, match="only in memory"):
        await writer.flush()
    assert writer.pending == 3
    spool.unlink()
    (spool / "rejected").mkdir(parents=True)
    await writer.flush()
    await writer.close()
    assert writer.pending == 0 and writer.spooled_batches == 1
    (batch,) = spool.glob("batch-*.jsonl")
    assert len(batch.read_bytes().splitlines()) == 3


async def test_malformed_record_is_rejected_without_raising(
    database_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    writer = CallLogWriter(database_url, spool)
    await writer.start()
    broken = make_call(started_at=None)  # the flow's bug must not become the caller's crash
    writer.submit(broken)
    writer.submit(make_call(1))
    await writer.close()
    assert writer.stats["rejected"] == 1
    assert await _count(database_url, "calls") == 1
    (rejected,) = (spool / "rejected").glob("*.jsonl")
    assert str(broken.id) in rejected.read_text()


def test_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="batch_rows=0"):
        CallLogWriter(UNREACHABLE_URL, tmp_path / "spool", batch_rows=0)

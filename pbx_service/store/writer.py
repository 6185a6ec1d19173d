"""The call-log writer: the daemon never waits for PostgreSQL.

`CallLogWriter.submit` snapshots a record and queues it without blocking. One named background
task batches the queue (``batch_rows`` rows or ``batch_seconds``, whichever comes first),
keeps only the latest version of each call in a batch, and writes it in one transaction:
``calls`` upserted by id (a version never replaces a newer one: ``updated_at`` guards it) and
``call_events`` inserted once per ``(call_id, seq)``.

When PostgreSQL is unreachable, a batch goes to the disk spool and the writer retries with
exponential backoff; spooled batches are replayed oldest first before any new batch is written,
and deleted once in the database. Every write is idempotent, so a batch replayed twice (crash
between commit and delete) changes nothing. A row PostgreSQL refuses for its data is written
alone, and if it still fails it is logged with its call id and kept in ``rejected/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from pbx_service.config.notify import NotifySettings
from pbx_service.notify.outbox import enqueue_for_calls
from pbx_service.store.callbacks import apply_callbacks
from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.errors import StoreError, WriterStateError
from pbx_service.store.records import CallRecord
from pbx_service.store.rows import (
    CALL_COLUMNS,
    EVENT_COLUMNS,
    CallSnapshot,
    EventRow,
    merge,
    snapshot,
)
from pbx_service.store.spool import Spool

log = logging.getLogger(__name__)

# "copy" (COPY into a temp table, then one merging INSERT ... SELECT) is the default: measured
# on pgserver (PostgreSQL 16, 20,000 calls with 3 events each, 2 shared cores) it wrote
# 7-10k calls/s against 3-5k/s for executemany and 300-500/s for one autocommitted INSERT per
# statement (1 call + 3 events).
WriteMethod = Literal["executemany", "copy"]

_UPDATE_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in CALL_COLUMNS if c != "id")
_CALL_PARAMS = ", ".join(f"${i}" for i in range(1, len(CALL_COLUMNS) + 1))
UPSERT_CALL_SQL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({_CALL_PARAMS}) "
    f"ON CONFLICT (id) DO UPDATE SET {_UPDATE_SET} WHERE calls.updated_at <= EXCLUDED.updated_at"
)
INSERT_EVENT_SQL = (
    f"INSERT INTO call_events ({', '.join(EVENT_COLUMNS)}) VALUES ($1, $2, $3, $4, $5::jsonb) "
    "ON CONFLICT (call_id, seq) DO NOTHING"
)
# COPY path: per-connection temp tables, emptied at each commit, merged with the same rules.
_COPY_SETUP_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS calls_in (LIKE calls) ON COMMIT DELETE ROWS; "
    "CREATE TEMP TABLE IF NOT EXISTS call_events_in (LIKE call_events) ON COMMIT DELETE ROWS"
)
_MERGE_CALLS_SQL = (
    f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) SELECT {', '.join(CALL_COLUMNS)} FROM calls_in "
    f"ON CONFLICT (id) DO UPDATE SET {_UPDATE_SET} WHERE calls.updated_at <= EXCLUDED.updated_at"
)
_MERGE_EVENTS_SQL = (
    f"INSERT INTO call_events ({', '.join(EVENT_COLUMNS)}) "
    f"SELECT {', '.join(EVENT_COLUMNS)} FROM call_events_in ORDER BY call_id, seq "
    "ON CONFLICT (call_id, seq) DO NOTHING"
)

# Errors about the data of a row, not the connection: retrying the same row cannot help.
_DATA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.ProgramLimitExceededError,
    UnicodeError,
    ValueError,  # includes asyncpg's client-side DataError (a value it cannot encode)
    TypeError,
    OverflowError,
)


class _Transient(Exception):
    """The database could not take the batch now (unreachable, shut down, timed out...)."""


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


_STOP = object()


class CallLogWriter:
    """Batches call records into PostgreSQL, spooling to disk while it is unreachable."""

    def __init__(
        self,
        database_url: str,
        spool_dir: Path,
        *,
        batch_rows: int = 500,
        batch_seconds: float = 0.8,
        queue_size: int = 10000,
        retry_min_seconds: float = 0.2,
        retry_max_seconds: float = 10.0,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        method: WriteMethod = "copy",
        overflow_chunk: int = 500,
        notify: NotifySettings | None = None,
    ) -> None:
        if batch_rows < 1 or queue_size < 1 or overflow_chunk < 1 or not batch_seconds > 0:
            raise StoreError(
                f"call-log writer settings: batch_rows={batch_rows}, queue_size={queue_size} and "
                f"overflow_chunk={overflow_chunk} must be >= 1, batch_seconds={batch_seconds} > 0"
            )
        self._dsn = asyncpg_dsn(database_url)
        # Notifications are enqueued in the same transaction as the calls and tasks they tell of.
        self._notify = notify if notify is not None and notify.enabled else None
        self._spool = Spool(spool_dir)
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self._retry_min = retry_min_seconds
        self._retry_max = retry_max_seconds
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._method: WriteMethod = method
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._batch: dict[uuid.UUID, CallSnapshot] = {}
        self._batch_submissions = 0
        self._batch_deadline = 0.0
        self._pending = 0
        self._overflow: list[CallSnapshot] = []
        self._spool_error: OSError | None = None
        # Serialised events per call, so a call submitted again only pays for its new events.
        self._known_events: dict[uuid.UUID, tuple[EventRow, ...]] = {}
        self._known_events_max = max(1000, queue_size)
        self._overflow_chunk = overflow_chunk
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._retry_delay = retry_min_seconds
        self._next_retry = 0.0
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        """Rows of each batch written to the database, most recent last."""
        self.stats: dict[str, int] = {
            "submitted": 0,
            "rows_written": 0,
            "events_written": 0,
            "batches": 0,
            "spooled": 0,
            "spooled_rows": 0,
            "replayed": 0,
            "rejected": 0,
            "overflowed": 0,
            "write_failures": 0,
        }

    # ----------------------------------------------------------------- public API

    @property
    def pending(self) -> int:
        """Submitted rows not yet in the database or the spool."""
        return self._pending

    @property
    def spooled_batches(self) -> int:
        """Batches waiting in the disk spool."""
        return self._spool.count

    @property
    def spool(self) -> Spool:
        return self._spool

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The background task, for the daemon's supervisor."""
        return self._task

    async def start(self) -> None:
        """Start the background task; a spool left by a previous run is replayed first."""
        if self._task is not None:
            raise WriterStateError("CallLogWriter.start() called twice")
        self._task = asyncio.create_task(self._run(), name="call-log-writer")

    def submit(self, record: CallRecord) -> None:
        """Queue the current state of ``record``; never blocks on the database.

        The record is copied now. If the queue is full the row goes to the spool instead of
        being dropped: overflow rows are written in chunks of ``overflow_chunk`` (one blocking
        fsync per chunk, here), the remainder by the background task. After close() a row is
        spooled at once.
        """
        known = self._known_events.pop(record.id, ())
        try:
            snap = snapshot(record, self._stamp(), known)
        except Exception as exc:  # a malformed record must not break the call flow
            self.stats["rejected"] += 1
            log.exception("call %s: record cannot be stored; kept in rejected/", record.id)
            with contextlib.suppress(OSError):
                self._spool.reject_record(repr(record), f"{type(exc).__name__}: {exc}")
            return
        if snap.events and record.ended_at is None:
            # Most recently submitted last; the oldest entries go when the cache is full. An
            # ended call is not submitted again (if it is, its events are simply re-encoded):
            # caching it would keep every finished call's events up to the cap.
            self._known_events[snap.call_id] = snap.events
            if len(self._known_events) > self._known_events_max:
                del self._known_events[next(iter(self._known_events))]
        self.stats["submitted"] += 1
        self._pending += 1
        if not self._closed:
            try:
                self._queue.put_nowait(snap)
                return
            except asyncio.QueueFull:
                pass
        self._overflow.append(snap)
        if self._closed or len(self._overflow) >= self._overflow_chunk:
            try:
                self._spool_overflow()
            except OSError as exc:  # the caller is the call flow: never raise into it
                log.error("cannot spool call-log overflow (%s); kept in memory", exc)
                self._spool_error = exc

    async def flush(self) -> None:
        """Wait until every row submitted so far is in the database or the spool; spooled
        batches are also tried once more right away."""
        self._check_running()
        request = _Flush()
        await self._queue.put(request)
        task = self._task
        assert task is not None
        await asyncio.wait({request.done, task}, return_when=asyncio.FIRST_COMPLETED)
        if not request.done.done():
            self._check_running()
        await request.done

    async def close(self) -> None:
        """Flush everything (to the database or the spool) and stop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            await self._queue.put(_STOP)
            await task
        try:
            # Whatever is left (never started, task died, spool was unwritable): one last try.
            self._drain_queue_to_spool()
            self._spool_overflow()
        except OSError as exc:
            raise StoreError(
                f"{self._pending} call-log rows could not be saved to {self._spool.directory}: "
                f"{exc}"
            ) from exc
        finally:
            await self._disconnect()

    # ----------------------------------------------------------------- internals

    def _check_running(self) -> None:
        task = self._task
        if task is None:
            raise WriterStateError("CallLogWriter not started: call `await writer.start()`")
        if task.done():
            exc = None if task.cancelled() else task.exception()
            raise WriterStateError(f"call-log writer task has stopped: {exc!r}") from exc

    def _stamp(self) -> datetime:
        # Strictly increasing within this process, so the later submit always wins the upsert.
        now = datetime.now(UTC)
        if now <= self._last_stamp:
            now = self._last_stamp + timedelta(microseconds=1)
        self._last_stamp = now
        return now

    def _spool_overflow(self) -> None:
        snaps = self._overflow
        if snaps:
            self._spool.write(snaps)
            self._overflow = []
            self._count_spooled(snaps, overflow=True)

    def _count_spooled(self, snaps: Sequence[CallSnapshot], *, overflow: bool = False) -> None:
        self.stats["spooled"] += 1
        self.stats["spooled_rows"] += len(snaps)
        if overflow:
            self._pending = max(0, self._pending - len(snaps))
            self.stats["overflowed"] += len(snaps)
            log.warning("call-log queue full: %d calls spooled to disk", len(snaps))

    def _drain_queue_to_spool(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, CallSnapshot):
                self._add(item)
            elif isinstance(item, _Flush) and not item.done.done():
                item.done.set_result(None)
        snaps = list(self._batch.values())
        if snaps:
            self._spool.write(snaps)
            self._count_spooled(snaps)
        self._batch = {}
        self._batch_submissions = 0
        self._pending = len(self._overflow)

    def _add(self, snap: CallSnapshot) -> None:
        if not self._batch:
            # The wait counts from the submit (stamped in `updated_at`), not from when this
            # task got to the row: rows queued behind a slow write must not wait twice.
            waited = (datetime.now(UTC) - snap.updated_at).total_seconds()
            self._batch_deadline = time.monotonic() + self.batch_seconds - max(0.0, waited)
        self._batch[snap.call_id] = merge(self._batch.get(snap.call_id), snap)
        self._batch_submissions += 1

    def _wait_timeout(self) -> float | None:
        now = time.monotonic()
        timeouts = []
        if self._batch:
            timeouts.append(self._batch_deadline - now)
        if self._spool.count:
            timeouts.append(self._next_retry - now)
        return max(0.0, min(timeouts)) if timeouts else None

    async def _get(self, timeout: float | None) -> Any:
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            return self._get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self._queue.get()
        except TimeoutError:
            return None

    def _get_nowait(self) -> Any:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def _run(self) -> None:
        await self._replay(force=True)
        stopping = False
        while not stopping:
            flushes: list[_Flush] = []
            item = await self._get(self._wait_timeout())
            while item is not None:
                if item is _STOP:
                    stopping = True
                elif isinstance(item, _Flush):
                    flushes.append(item)
                else:
                    self._add(item)
                if len(self._batch) >= self.batch_rows:
                    break
                item = self._get_nowait()
            urgent = bool(flushes) or stopping
            if self._batch and (
                urgent  # a flush or close asks to try now, even after a spool failure
                or (len(self._batch) >= self.batch_rows and self._spool_error is None)
                or time.monotonic() >= self._batch_deadline
            ):
                await self._write_batch()
            if self._overflow:
                snaps, self._overflow = self._overflow, []
                try:
                    await asyncio.to_thread(self._spool.write, snaps)
                except OSError as exc:
                    log.error("cannot spool %d overflow rows (%s); kept in memory", len(snaps), exc)
                    self._overflow[:0] = snaps
                    self._spool_error = exc
                else:
                    self._count_spooled(snaps, overflow=True)
            if self._spool.count and (urgent or time.monotonic() >= self._next_retry):
                await self._replay(force=urgent)
            unsaved = len(self._batch) + len(self._overflow)
            for request in flushes:
                if request.done.done():
                    continue
                if unsaved and self._spool_error is not None:
                    request.done.set_exception(
                        StoreError(
                            f"{unsaved} call-log rows are only in memory: the database is "
                            f"unreachable and the spool cannot be written ({self._spool_error})"
                        )
                    )
                else:
                    request.done.set_result(None)
        await self._disconnect()

    async def _write_batch(self) -> None:
        snaps = list(self._batch.values())
        submissions = self._batch_submissions
        self._batch = {}
        self._batch_submissions = 0
        # Keep order: while older batches wait in the spool, this one goes behind them unless
        # they can all be replayed now.
        written = False
        if not self._spool.count or await self._replay(force=False):
            try:
                await self._write_snapshots(snaps)
                written = True
            except _Transient as exc:
                self._failed(exc)
        if not written:
            try:
                await self._spool_batch(snaps)
            except OSError as exc:
                # Database down and spool unwritable (disk full?): keep the rows in memory and
                # try again later rather than lose them.
                log.error("cannot spool %d call-log rows (%s); kept in memory", len(snaps), exc)
                self._batch = {s.call_id: s for s in snaps}
                self._batch_submissions = submissions
                self._failed(exc)
                self._batch_deadline = self._next_retry
                self._spool_error = exc
                return
        self._spool_error = None
        self._pending = max(0, self._pending - submissions)

    async def _spool_batch(self, snaps: list[CallSnapshot]) -> None:
        await asyncio.to_thread(self._spool.write, snaps)
        self._count_spooled(snaps)

    async def _replay(self, *, force: bool) -> bool:
        """Replay spooled batches oldest first; True when the spool is empty afterwards."""
        if not self._spool.count:
            return True
        if not force and time.monotonic() < self._next_retry:
            return False
        try:
            paths = await asyncio.to_thread(self._spool.files)
        except OSError as exc:
            self._failed(exc)
            return False
        for path in paths:
            try:
                snaps = await asyncio.to_thread(self._spool.read, path)
                if snaps:
                    await self._write_snapshots(snaps)
            except (_Transient, OSError) as exc:
                self._failed(exc)
                return False
            await asyncio.to_thread(self._spool.remove, path)
            self.stats["replayed"] += 1
            log.info("replayed spooled call-log batch %s (%d rows)", path.name, len(snaps))
        self._retry_delay = self._retry_min
        return True

    def _failed(self, exc: BaseException) -> None:
        self.stats["write_failures"] += 1
        self._next_retry = time.monotonic() + self._retry_delay
        log.warning(
            "call-log database unavailable (%s); spooling, next try in %.1fs",
            exc.__cause__ or exc,
            self._retry_delay,
        )
        self._retry_delay = min(self._retry_max, self._retry_delay * 2)

    async def _write_snapshots(self, snaps: Sequence[CallSnapshot]) -> None:
        """Write in one transaction; on a data error, row by row, rejecting the bad ones.
        Raises `_Transient` when the database cannot be used now."""
        try:
            await self._write_db(snaps)
            return
        except _DATA_ERRORS as exc:
            if len(snaps) == 1:
                self._reject(snaps[0], exc)
                return
            log.warning("call-log batch of %d refused (%s); writing row by row", len(snaps), exc)
        for snap in snaps:
            try:
                await self._write_db([snap])
            except _DATA_ERRORS as exc:
                self._reject(snap, exc)

    def _reject(self, snap: CallSnapshot, exc: BaseException) -> None:
        self.stats["rejected"] += 1
        log.error("call %s refused by PostgreSQL, kept in rejected/: %s", snap.call_id, exc)
        self._spool.reject(snap, f"{type(exc).__name__}: {exc}")

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn, timeout=self._connect_timeout, command_timeout=self._command_timeout
            )
            if self._method == "copy":
                await self._conn.execute(_COPY_SETUP_SQL)
        return self._conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=2)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()

    async def _write_db(self, snaps: Sequence[CallSnapshot]) -> None:
        rows = [s.row for s in snaps]
        events = [ev for s in snaps for ev in s.events]
        try:
            conn = await self._connection()
            async with conn.transaction():
                if self._method == "copy":
                    await conn.copy_records_to_table("calls_in", records=rows, columns=CALL_COLUMNS)
                    await conn.execute(_MERGE_CALLS_SQL)
                    if events:
                        await conn.copy_records_to_table(
                            "call_events_in", records=events, columns=EVENT_COLUMNS
                        )
                        await conn.execute(_MERGE_EVENTS_SQL)
                else:
                    await conn.executemany(UPSERT_CALL_SQL, rows)
                    if events:
                        await conn.executemany(INSERT_EVENT_SQL, events)
                await apply_callbacks(conn, snaps)
                if self._notify is not None:
                    await enqueue_for_calls(conn, snaps, self._notify)
        except _DATA_ERRORS:
            raise
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # anything else: the row may be fine, the database is not
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            raise _Transient(str(exc)) from exc
        self.stats["batches"] += 1
        self.stats["rows_written"] += len(rows)
        self.stats["events_written"] += len(events)
        self.batch_sizes.append(len(rows))


async def wait_idle(writer: CallLogWriter, timeout: float = 10.0) -> None:
    """Test and shutdown helper: flush until nothing is pending or spooled."""
    async with asyncio.timeout(timeout):
        while True:
            await writer.flush()
            if writer.pending == 0 and writer.spooled_batches == 0:
                return
            await asyncio.sleep(0.05)

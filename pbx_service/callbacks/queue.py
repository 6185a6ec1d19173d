"""Working the callback queue: agents (or a dialler) claim, finish and release callback tasks.

Tasks are made, joined and auto-closed by the call-log writer (`pbx_service.store.callbacks`);
this module is the other side. Every function takes the database URL, opens its own connection
and does its work in one transaction, so a CLI command, the ops web and several daemons can use
the queue at once:

- `claim_next` takes the most urgent due task (``status = 'open' AND due_at <= now``, ordered by
  ``priority DESC, due_at, created_at``) with ``SELECT ... FOR UPDATE SKIP LOCKED``: two agents
  or two daemons never get the same task, and neither waits for the other.
- `finish` closes a task with a result. ``no_answer`` is a dial attempt, not an end: below
  `RetryPolicy.max_dial_attempts` the task goes back to ``open`` with ``due_at = now + backoff``
  (15 min, 1 h, 4 h by default); the attempt that reaches the maximum closes it with status
  ``no_answer`` (closed_by, closed_at and close_reason set). A later call from that number then
  opens a new task, as after any other close.
- `release` and `release_stale` put a claimed task back (the agent hung up, the app crashed):
  nothing is lost, the task keeps its place by priority and due time.

Dial attempts: ``done``, ``wrong_number`` and ``no_answer`` count one (the agent dialled);
``cancelled`` does not. Notes are appended, one line per finish, so the retry history stays.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from pbx_service.errors import PbxError
from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.errors import DatabaseUnavailableError, StoreError
from pbx_service.store.models import CALLBACK_STATUSES

Result = Literal["done", "no_answer", "wrong_number", "cancelled"]
RESULTS: Final[tuple[str, ...]] = ("done", "no_answer", "wrong_number", "cancelled")
CLOSED_STATUSES: Final[tuple[str, ...]] = ("done", "no_answer", "wrong_number", "cancelled")
# The "open/claimed" pair is what the writer's one-open-task-per-number index covers.
ACTIVE_STATUSES: Final[tuple[str, ...]] = ("open", "claimed")

DEVICE_STATE: Final = "Stasis:pbx-callbacks"
"""The custom device state phones subscribe to (BLF): BUSY while due callbacks wait."""

MAX_AGENT_CHARS: Final = 100
MAX_NOTES_CHARS: Final = 4000


class CallbackQueueError(PbxError):
    """Root of the errors of working the callback queue."""

    error_id = "callback-queue-error"


class CallbackInputError(CallbackQueueError):
    """A value from the user (task id, agent, result, status) that cannot be used."""

    error_id = "callback-bad-input"


class CallbackTaskNotFound(CallbackQueueError):
    """No callback task has that id."""

    error_id = "callback-task-not-found"


class CallbackTaskClosed(CallbackQueueError):
    """The task is already closed (done, no_answer, wrong_number or cancelled)."""

    error_id = "callback-task-closed"


class CallbackTaskClaimedByOther(CallbackQueueError):
    """Another agent holds the task."""

    error_id = "callback-task-claimed-by-other"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What a ``no_answer`` does: when the task is due again, and after how many it closes.

    After the n-th unanswered dial the task is due again in ``backoff[n - 1]`` (the last delay
    repeats when there are more attempts than delays); the ``max_dial_attempts``-th closes it.
    """

    backoff: tuple[timedelta, ...] = (
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=4),
    )
    max_dial_attempts: int = 4

    def __post_init__(self) -> None:
        if not self.backoff or any(d <= timedelta(0) for d in self.backoff):
            raise CallbackInputError(
                f"callback retry backoff must be one or more positive delays, got {self.backoff}"
            )
        if self.max_dial_attempts < 1:
            raise CallbackInputError(
                f"callback max_dial_attempts must be at least 1, got {self.max_dial_attempts}"
            )

    def delay_after(self, dial_attempts: int) -> timedelta:
        """How long after the ``dial_attempts``-th unanswered dial the task is due again."""
        return self.backoff[min(max(dial_attempts, 1), len(self.backoff)) - 1]


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A callback task as it is after a claim: what the agent needs to call back."""

    id: uuid.UUID
    number: str | None
    anonymous: bool
    caller_name: str | None
    did: str | None
    line_label: str | None
    status: str
    priority: int
    due_at: datetime
    attempts: int
    dial_attempts: int
    sources: tuple[str, ...]
    voicemails: tuple[str, ...]
    claimed_by: str | None
    claimed_at: datetime | None
    notes: str | None
    created_at: datetime
    last_call_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, the same keys as a `list_tasks` entry."""
        return {
            "id": str(self.id),
            "number": self.number,
            "status": self.status,
            "due_at": _iso(self.due_at),
            "attempts": self.attempts,
            "sources": list(self.sources),
            "voicemails": list(self.voicemails),
            "claimed_by": self.claimed_by,
            "closed_by": None,
            "closed_at": None,
            "caller_name": self.caller_name,
            "did": self.did,
            "line_label": self.line_label,
            "priority": self.priority,
            "dial_attempts": self.dial_attempts,
            "notes": self.notes,
            "anonymous": self.anonymous,
            "claimed_at": _iso(self.claimed_at),
            "close_reason": None,
            "created_at": _iso(self.created_at),
            "last_call_at": _iso(self.last_call_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def task_dict(row: Any) -> dict[str, Any]:
    """A ``callback_tasks`` row as a JSON-ready dict (ids and times as strings)."""
    return {
        "id": str(row["id"]),
        "number": row["number"],
        "status": row["status"],
        "due_at": _iso(row["due_at"]),
        "attempts": row["attempts"],
        "sources": list(row["sources"]),
        "voicemails": list(row["voicemails"]),
        "claimed_by": row["claimed_by"],
        "closed_by": row["closed_by"],
        "closed_at": _iso(row["closed_at"]),
        "caller_name": row["caller_name"],
        "did": row["did"],
        "line_label": row["line_label"],
        "priority": row["priority"],
        "dial_attempts": row["dial_attempts"],
        "notes": row["notes"],
        "anonymous": row["anonymous"],
        "claimed_at": _iso(row["claimed_at"]),
        "close_reason": row["close_reason"],
        "created_at": _iso(row["created_at"]),
        "last_call_at": _iso(row["last_call_at"]),
    }


def _claimed(row: Any) -> ClaimedTask:
    return ClaimedTask(
        id=row["id"],
        number=row["number"],
        anonymous=row["anonymous"],
        caller_name=row["caller_name"],
        did=row["did"],
        line_label=row["line_label"],
        status=row["status"],
        priority=row["priority"],
        due_at=row["due_at"],
        attempts=row["attempts"],
        dial_attempts=row["dial_attempts"],
        sources=tuple(row["sources"]),
        voicemails=tuple(row["voicemails"]),
        claimed_by=row["claimed_by"],
        claimed_at=row["claimed_at"],
        notes=row["notes"],
        created_at=row["created_at"],
        last_call_at=row["last_call_at"],
    )


# -- input checks -------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise CallbackInputError(f"time {now.isoformat()} has no timezone; pass an aware datetime")
    return now


def parse_task_id(task_id: uuid.UUID | str) -> uuid.UUID:
    """A task id from the user: a UUID or its text form."""
    if isinstance(task_id, uuid.UUID):
        return task_id
    try:
        return uuid.UUID(task_id.strip())
    except (ValueError, AttributeError) as exc:
        raise CallbackInputError(
            f"{task_id!r} is not a callback task id; copy the id column of "
            "'pbx-service callbacks list' (a UUID such as 3f2b...-...)"
        ) from exc


def _agent(agent: str) -> str:
    cleaned = "".join(ch for ch in agent if ch.isprintable()).strip()
    if not cleaned:
        raise CallbackInputError("agent must name who works the task, e.g. '101' or 'anna'")
    if len(cleaned) > MAX_AGENT_CHARS:
        raise CallbackInputError(f"agent name is longer than {MAX_AGENT_CHARS} characters")
    return cleaned


def _result(result: str) -> str:
    if result not in RESULTS:
        raise CallbackInputError(f"callback result {result!r} is not one of: {', '.join(RESULTS)}")
    return result


def _statuses(status: str | Sequence[str] | None) -> list[str] | None:
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    for value in wanted:
        if value not in CALLBACK_STATUSES:
            raise CallbackInputError(
                f"callback task status {value!r} is not one of: {', '.join(CALLBACK_STATUSES)}"
            )
    return wanted


def _notes(notes: str | None) -> str | None:
    if notes is None:
        return None
    # PostgreSQL rejects NUL in text; keep line breaks, drop other control characters.
    cleaned = "".join(ch for ch in notes if ch.isprintable() or ch in "\n\t").strip()
    if len(cleaned) > MAX_NOTES_CHARS:
        raise CallbackInputError(f"notes are longer than {MAX_NOTES_CHARS} characters")
    return cleaned or None


# -- connection ---------------------------------------------------------------------------


@asynccontextmanager
async def connect(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """One asyncpg connection, with asyncpg's errors translated to the store's error tree."""
    try:
        conn = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    except (OSError, TimeoutError, asyncpg.exceptions.CannotConnectNowError) as exc:
        raise DatabaseUnavailableError(f"cannot reach the call-log database: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreError(f"cannot open the call-log database: {exc}") from exc
    try:
        yield conn
    except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError) as exc:
        raise DatabaseUnavailableError(f"lost the call-log database: {exc}") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"callback queue query failed: {exc}") from exc
    finally:
        await conn.close()


# -- SQL ----------------------------------------------------------------------------------

# The InitPlan picks and locks one row; SKIP LOCKED passes rows another claimer holds, and a
# row whose status changed since our snapshot fails the recheck, so LIMIT moves on to the next.
_CLAIM_NEXT_SQL = """
UPDATE callback_tasks SET status = 'claimed', claimed_by = $1, claimed_at = $2, updated_at = $2
WHERE id = (
    SELECT id FROM callback_tasks
    WHERE status = 'open' AND due_at <= $2 AND (number IS NOT NULL OR NOT $3)
    ORDER BY priority DESC, due_at, created_at, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
) AND status = 'open'
RETURNING *
"""
_LOCK_SQL = "SELECT * FROM callback_tasks WHERE id = $1 FOR UPDATE"
_CLAIM_SQL = """
UPDATE callback_tasks SET status = 'claimed', claimed_by = $2, claimed_at = $3, updated_at = $3
WHERE id = $1 RETURNING *
"""


def _append_notes(param: str) -> str:
    """SQL appending the text parameter ``param`` to ``notes`` as a new line (NULL: no change)."""
    return (
        f"CASE WHEN {param}::text IS NULL THEN notes WHEN notes IS NULL THEN {param}::text "
        f"ELSE notes || E'\\n' || {param}::text END"
    )


_REOPEN_SQL = f"""
UPDATE callback_tasks SET status = 'open', due_at = $2, dial_attempts = $3,
    claimed_by = NULL, claimed_at = NULL, notes = {_append_notes("$4")}, updated_at = $5
WHERE id = $1 RETURNING *
"""
_CLOSE_SQL = f"""
UPDATE callback_tasks SET status = $2, dial_attempts = $3, closed_by = $4, closed_at = $5,
    close_reason = $6, notes = {_append_notes("$7")}, updated_at = $5
WHERE id = $1 RETURNING *
"""
_RELEASE_SQL = """
UPDATE callback_tasks SET status = 'open', claimed_by = NULL, claimed_at = NULL, updated_at = $3
WHERE id = $1 AND status = 'claimed' AND ($2::text IS NULL OR claimed_by = $2::text)
RETURNING id
"""
_RELEASE_STALE_SQL = """
UPDATE callback_tasks SET status = 'open', claimed_by = NULL, claimed_at = NULL, updated_at = $2
WHERE status = 'claimed' AND claimed_at < $1
RETURNING id
"""
_DUE_COUNT_SQL = "SELECT count(*) FROM callback_tasks WHERE status = 'open' AND due_at <= $1"
_CLOSE_FOR_NUMBER_SQL = """
UPDATE callback_tasks SET status = 'done', dial_attempts = dial_attempts + 1,
    closed_by = $2, closed_at = $3, close_reason = $4, updated_at = $3
WHERE number = $1 AND status IN ('open', 'claimed') AND created_at <= $3
RETURNING id
"""
_LIST_SQL = """
SELECT * FROM callback_tasks
WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))
ORDER BY status NOT IN ('open', 'claimed'), priority DESC, due_at, created_at, id
LIMIT $2
"""


# -- the queue ----------------------------------------------------------------------------


async def claim_next(
    database_url: str, agent: str, *, now: datetime | None = None, dialable: bool = False
) -> ClaimedTask | None:
    """Claim the most urgent due task for ``agent``; None when nothing is due.

    Most urgent: highest ``priority``, then earliest ``due_at``, then oldest. Safe against any
    number of concurrent claimers (``FOR UPDATE SKIP LOCKED``): each task goes to one of them.
    ``dialable``: only tasks with a number (a desk phone cannot dial an anonymous caller).
    """
    who, at = _agent(agent), _now(now)
    async with connect(database_url) as conn:
        row = await conn.fetchrow(_CLAIM_NEXT_SQL, who, at, dialable)
    return None if row is None else _claimed(row)


async def claim(
    database_url: str, task_id: uuid.UUID | str, agent: str, *, now: datetime | None = None
) -> ClaimedTask:
    """Claim one task by id (an agent picked it from the list), due or not.

    Claiming a task one already holds returns it again. Raises `CallbackTaskNotFound`,
    `CallbackTaskClosed`, or `CallbackTaskClaimedByOther`.
    """
    tid, who, at = parse_task_id(task_id), _agent(agent), _now(now)
    async with connect(database_url) as conn, conn.transaction():
        row = await _locked(conn, tid)
        if row["status"] == "claimed":
            if row["claimed_by"] == who:
                return _claimed(row)
            raise CallbackTaskClaimedByOther(
                f"callback task {tid} is being worked by {row['claimed_by']} since "
                f"{_iso(row['claimed_at'])}; they can release it, or it returns to the queue "
                "when the claim goes stale"
            )
        row = await conn.fetchrow(_CLAIM_SQL, tid, who, at)
    return _claimed(row)


async def finish(
    database_url: str,
    task_id: uuid.UUID | str,
    agent: str,
    result: str,
    notes: str | None = None,
    *,
    now: datetime | None = None,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    force: bool = False,
) -> dict[str, Any]:
    """Record the result of working a task; returns the task as `list_tasks` shows it.

    ``result``: ``done`` (reached the customer), ``wrong_number``, ``cancelled`` (nothing to
    do, e.g. a duplicate), or ``no_answer`` (see `RetryPolicy`: back to ``open`` with a later
    ``due_at`` until the last attempt, which closes it as ``no_answer``). The task may be open
    or claimed by ``agent``; a task another agent holds needs ``force=True`` (a supervisor).
    """
    tid, who, outcome, at = parse_task_id(task_id), _agent(agent), _result(result), _now(now)
    note = _notes(notes)
    async with connect(database_url) as conn, conn.transaction():
        row = await _locked(conn, tid)
        if row["status"] == "claimed" and row["claimed_by"] != who and not force:
            raise CallbackTaskClaimedByOther(
                f"callback task {tid} is claimed by {row['claimed_by']}, not {who}; "
                "finish it as that agent, or force it as a supervisor"
            )
        dialled = row["dial_attempts"] + (0 if outcome == "cancelled" else 1)
        if outcome == "no_answer" and dialled < policy.max_dial_attempts:
            due = at + policy.delay_after(dialled)
            row = await conn.fetchrow(_REOPEN_SQL, tid, due, dialled, note, at)
        else:
            reason = _close_reason(outcome, who, dialled)
            row = await conn.fetchrow(_CLOSE_SQL, tid, outcome, dialled, who, at, reason, note)
    return task_dict(row)


def _close_reason(result: str, agent: str, dial_attempts: int) -> str:
    if result == "no_answer":
        return f"no answer after {dial_attempts} dial attempts"
    if result == "wrong_number":
        return f"wrong number, reported by {agent}"
    if result == "cancelled":
        return f"cancelled by {agent}"
    return f"called back by {agent}"


async def _locked(conn: asyncpg.Connection, tid: uuid.UUID) -> Any:
    """The task row, locked for this transaction; it must still be open or claimed."""
    row = await conn.fetchrow(_LOCK_SQL, tid)
    if row is None:
        raise CallbackTaskNotFound(f"no callback task {tid}; see 'pbx-service callbacks list'")
    if row["status"] in CLOSED_STATUSES:
        raise CallbackTaskClosed(
            f"callback task {tid} is already closed ({row['status']}"
            f"{', by ' + row['closed_by'] if row['closed_by'] else ''}"
            f", at {_iso(row['closed_at'])})"
        )
    return row


async def release(
    database_url: str,
    task_id: uuid.UUID | str,
    agent: str | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Put a claimed task back in the queue (the agent hung up or gave up on it).

    With ``agent``, only that agent's claim is released. True if a claim was released; False
    when the task was not claimed (already back, or closed). Its due time and priority stay, so
    it is next in line again.
    """
    tid, at = parse_task_id(task_id), _now(now)
    who = None if agent is None else _agent(agent)
    async with connect(database_url) as conn:
        released = await conn.fetchval(_RELEASE_SQL, tid, who, at)
        if (
            released is None
            and await conn.fetchval("SELECT 1 FROM callback_tasks WHERE id = $1", tid) is None
        ):
            raise CallbackTaskNotFound(f"no callback task {tid}; see 'pbx-service callbacks list'")
    return released is not None


async def release_stale(
    database_url: str, older_than: timedelta, *, now: datetime | None = None
) -> list[uuid.UUID]:
    """Return to the queue every task claimed longer than ``older_than`` ago without a finish.

    For the daemon's periodic sweep (an agent's app crashed, a dialler died). Returns the ids
    released.
    """
    if older_than <= timedelta(0):
        raise CallbackInputError(f"stale-claim age must be positive, got {older_than}")
    at = _now(now)
    async with connect(database_url) as conn:
        rows = await conn.fetch(_RELEASE_STALE_SQL, at - older_than, at)
    return [r["id"] for r in rows]


async def list_tasks(
    database_url: str,
    *,
    status: str | Sequence[str] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Tasks as JSON-ready dicts (`task_dict`), open and claimed first in claim order.

    ``status``: one status or several; None for all.
    """
    wanted = _statuses(status)
    if limit is not None and limit < 0:
        raise CallbackInputError(f"limit must be >= 0, got {limit}")
    async with connect(database_url) as conn:
        rows = await conn.fetch(_LIST_SQL, wanted, limit)
    return [task_dict(r) for r in rows]


async def due_count(database_url: str, now: datetime | None = None) -> int:
    """How many open tasks are due at ``now`` (``Stasis:pbx-callbacks`` is BUSY while > 0)."""
    at = _now(now)
    async with connect(database_url) as conn:
        count: int = await conn.fetchval(_DUE_COUNT_SQL, at)
    return count


def device_state_for(due: int) -> Literal["BUSY", "NOT_INUSE"]:
    """The `DEVICE_STATE` value for ``due`` waiting tasks (from `due_count`), for ARI's
    ``PUT /deviceStates/Stasis:pbx-callbacks?deviceState=...``."""
    return "BUSY" if due > 0 else "NOT_INUSE"


async def close_number(
    conn: asyncpg.Connection, number: str, by: str, reason: str, at: datetime
) -> uuid.UUID | None:
    """`close_for_number` on a connection the caller owns (to share its transaction)."""
    task_id: uuid.UUID | None = await conn.fetchval(
        _CLOSE_FOR_NUMBER_SQL, number, _agent(by), at, reason
    )
    return task_id


async def close_for_number(
    database_url: str, number: str, by: str, reason: str, *, now: datetime | None = None
) -> uuid.UUID | None:
    """Close the open (or claimed) task for ``number`` as done; returns its id, None if none.

    ``number`` must be E.164-normalised like the tasks (`pbx_service.calls.numbers.to_e164`).
    A task made after ``now`` is left alone: it is about a later call.
    """
    at = _now(now)
    async with connect(database_url) as conn:
        return await close_number(conn, number, by, reason, at)


_REOPEN_AFTER_DIAL_SQL = """
UPDATE callback_tasks SET status = 'open', due_at = $2, closed_by = NULL, closed_at = NULL,
    close_reason = NULL, claimed_by = NULL, claimed_at = NULL, updated_at = $3
WHERE id = $1 RETURNING *
"""
_GIVE_UP_AFTER_DIAL_SQL = """
UPDATE callback_tasks SET status = 'no_answer', closed_at = $2, close_reason = $3, updated_at = $2
WHERE id = $1 RETURNING *
"""
_ACTIVE_FOR_NUMBER_SQL = """
SELECT id FROM callback_tasks WHERE number = $1 AND status IN ('open', 'claimed') AND id <> $2
"""


async def undo_dial_close(
    conn: asyncpg.Connection,
    task_id: uuid.UUID,
    by: str,
    closed_at: datetime,
    at: datetime,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> str | None:
    """An outbound call closed ``task_id`` when ``by`` dialled, but the customer did not answer:
    treat it as a ``no_answer`` attempt (the dial was already counted when it closed).

    Below ``policy.max_dial_attempts`` the task is open again, due after the backoff; at the
    maximum it stays closed with status ``no_answer``. Nothing changes (None) when the task was
    changed since that close (closed by someone else, reopened), or when the customer has
    another active task meanwhile (they called again: that task carries on). Returns the new
    status. Runs on the caller's connection, inside its transaction.
    """
    row = await conn.fetchrow(_LOCK_SQL, task_id)
    if (
        row is None
        or row["status"] != "done"
        or row["closed_by"] != by
        or row["closed_at"] != closed_at
    ):
        return None
    if row["number"] is not None and await conn.fetchval(
        _ACTIVE_FOR_NUMBER_SQL, row["number"], task_id
    ):
        return None
    dialled = row["dial_attempts"]
    if dialled < policy.max_dial_attempts:
        due = at + policy.delay_after(dialled)
        try:
            async with conn.transaction():  # a savepoint: the caller's work survives a clash
                await conn.execute(_REOPEN_AFTER_DIAL_SQL, task_id, due, at)
        except asyncpg.exceptions.UniqueViolationError:
            return None  # the customer's new call opened a task a moment ago; it carries on
        return "open"
    reason = f"no answer after {dialled} dial attempts"
    await conn.execute(_GIVE_UP_AFTER_DIAL_SQL, task_id, at, reason)
    return "no_answer"

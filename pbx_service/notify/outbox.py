"""The outbox: notifications written in the call-log transaction, claimed and settled by the
dispatcher. All SQL of the package lives here (asyncpg).

Writing: `enqueue_for_calls` runs inside the call-log writer's transaction right after
``apply_callbacks``, so a notification exists exactly when the voicemail or callback task it is
about was committed, a PostgreSQL outage spools both together, and a replayed batch enqueues
nothing twice (``dedupe_key`` + channel + target is unique). Which rows it writes:

- a call whose outcome is ``voicemail``: one ``voicemail`` row per destination taking that
  event, keyed by the call;
- any call that made or joined a callback task: one ``callback_task`` row per destination
  taking that event and not told about this task yet (keyed by the task, so a repeat caller
  does not make a second one); a destination that was just sent the voicemail of this task
  is not sent the task as well.

Sending: `claim` marks due rows ``sending`` with a lease (``FOR UPDATE SKIP LOCKED``: two
daemons never take the same row); the dispatcher then settles each one with `mark_delivered`,
`schedule_retry` or `mark_failed`, guarded by the attempt number it claimed, so a sender whose
lease ran out cannot overwrite the outcome of the one that took over. A row left ``sending``
by a crash is due again when its lease ends: delivery is at least once, and the notification
id (webhook ``X-PBX-Delivery``, e-mail Message-ID) lets receivers drop the duplicate.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg  # type: ignore[import-untyped,unused-ignore]
import orjson

from pbx_service.config.notify import NotificationKind, NotifySettings
from pbx_service.notify.payload import CallerInfo, TaskInfo, call_payload
from pbx_service.store.rows import CALL_COLUMNS, CallSnapshot

log = logging.getLogger(__name__)

Channel = Literal["email", "webhook"]
EMAIL_TARGET = "email"
"""The ``target`` of e-mail rows: there is one e-mail destination (its recipient list)."""
WAKE_CHANNEL = "pbx_notifications"
"""LISTEN/NOTIFY channel: a commit that enqueued something wakes the dispatchers at once."""

# Outcomes that make or join a callback task (store.callbacks.TASK_SOURCES).
TASK_OUTCOMES: frozenset[str] = frozenset({"voicemail", "abandoned", "failed", "callback"})
_COL = {name: i for i, name in enumerate(CALL_COLUMNS)}

# The connection or the server is the problem, not this data: the writer must retry the batch.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.InsufficientResourcesError,
)

CallerLookup = Callable[[asyncpg.Connection, Sequence[str]], Awaitable[Mapping[str, CallerInfo]]]
"""Finds what the directory knows about caller numbers (E.164) on the writer's connection."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where notifications go: ``email`` (target "email") or a webhook (target its URL)."""

    channel: Channel
    target: str
    events: frozenset[str]


@dataclass(frozen=True, slots=True)
class ClaimedNotification:
    """A row this dispatcher claimed; ``attempt`` (1-based) is also the claim's token."""

    id: uuid.UUID
    kind: NotificationKind
    channel: Channel
    target: str
    payload: dict[str, Any]
    attempt: int
    created_at: datetime


def destinations(settings: NotifySettings) -> tuple[Destination, ...]:
    """Every configured destination with the events it takes."""
    found: list[Destination] = []
    if settings.email is not None:
        found.append(Destination("email", EMAIL_TARGET, frozenset(settings.email.events)))
    for hook in settings.webhooks:
        found.append(Destination("webhook", hook.url, frozenset(hook.events)))
    return tuple(found)


_INSERT_SQL = """
INSERT INTO notifications (id, kind, channel, target, dedupe_key, call_id, task_id, payload,
                           status, attempts, next_attempt_at, created_at)
SELECT $1, $2, $3, $4, $5, $6, $7, $8::jsonb, 'pending', 0, now(), now()
WHERE NOT $9::bool OR NOT EXISTS (
    SELECT 1 FROM notifications WHERE task_id = $7 AND channel = $3 AND target = $4)
ON CONFLICT (dedupe_key, channel, target) DO NOTHING
"""
_WAKE_SQL = f"SELECT pg_notify('{WAKE_CHANNEL}', '')"


async def enqueue(
    conn: asyncpg.Connection,
    kind: NotificationKind,
    payload: Mapping[str, Any],
    channels: Sequence[Destination],
    *,
    dedupe_key: str,
    call_id: uuid.UUID | None = None,
    task_id: uuid.UUID | None = None,
    once_per_task: bool = False,
) -> int:
    """Queue ``payload`` as a ``kind`` notification to each destination of ``channels`` that
    takes ``kind``; returns how many rows were written.

    Idempotent: a destination that already has ``dedupe_key`` gets nothing. With
    ``once_per_task`` a destination already holding any notification of ``task_id`` gets
    nothing either. Call it inside the transaction that commits what it is about.
    """
    body = orjson.dumps(payload).decode("utf-8")
    written = 0
    for dest in channels:
        if kind not in dest.events:
            continue
        status = await conn.execute(
            _INSERT_SQL,
            uuid.uuid4(),
            kind,
            dest.channel,
            dest.target,
            dedupe_key,
            call_id,
            task_id,
            body,
            once_per_task,
        )
        written += int(status.rsplit(" ", 1)[-1])
    if written:
        await conn.execute(_WAKE_SQL)  # delivered to listeners at commit, dropped on rollback
    return written


_LINKS_SQL = """
SELECT c.id, t.id AS task_id, t.created_at, t.due_at, t.attempts
FROM calls c LEFT JOIN callback_tasks t ON t.id = c.callback_task
WHERE c.id = ANY($1::uuid[])
"""
_CONTACTS_SQL = """
SELECT n.number, c.name, c.company, c.tier
FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id
WHERE n.number = ANY($1::text[])
"""


async def lookup_contacts(
    conn: asyncpg.Connection, numbers: Sequence[str]
) -> Mapping[str, CallerInfo]:
    """Name, company and tier of known numbers from the ``contacts`` directory."""
    rows = await conn.fetch(_CONTACTS_SQL, list(numbers))
    return {
        row["number"]: CallerInfo(contact=row["name"], company=row["company"], tier=row["tier"])
        for row in rows
    }


async def enqueue_for_calls(
    conn: asyncpg.Connection,
    snaps: Sequence[CallSnapshot],
    settings: NotifySettings,
    *,
    caller_lookup: CallerLookup | None = lookup_contacts,
) -> int:
    """Queue the notifications the ended calls in ``snaps`` call for; returns rows written.

    Runs inside the call-log writer's transaction, after ``apply_callbacks(conn, snaps)``.
    A failure of its own (a bug, a missing table) is logged and rolled back to a savepoint:
    notifications must never stop the call log. A lost connection is raised, so the writer
    keeps the whole batch and retries it, notifications included.
    """
    channels = destinations(settings)
    if not channels:
        return 0
    ended = [
        snap
        for snap in snaps
        if snap.row[_COL["ended_at"]] is not None and snap.row[_COL["outcome"]] in TASK_OUTCOMES
    ]
    if not ended:
        return 0
    try:
        async with conn.transaction():  # a savepoint inside the writer's transaction
            return await _enqueue_calls(conn, ended, channels, caller_lookup)
    except _CONNECTION_ERRORS:
        raise
    except Exception:
        if conn.is_closed():
            raise
        log.exception(
            "notifications for %d calls could not be queued; the calls are logged without them",
            len(ended),
        )
        return 0


async def _enqueue_calls(
    conn: asyncpg.Connection,
    snaps: Sequence[CallSnapshot],
    channels: Sequence[Destination],
    caller_lookup: CallerLookup | None,
) -> int:
    links = {row["id"]: row for row in await conn.fetch(_LINKS_SQL, [s.call_id for s in snaps])}
    callers = await _callers(conn, snaps, caller_lookup)
    written = 0
    for snap in snaps:
        row = snap.row
        link = links.get(snap.call_id)
        task = None
        if link is not None and link["task_id"] is not None:
            task = TaskInfo(
                id=link["task_id"],
                # The task's created_at is the ended_at of the call that opened it.
                new=link["created_at"] == row[_COL["ended_at"]],
                due_at=link["due_at"],
                calls=link["attempts"],
            )
        number = row[_COL["caller_number"]]
        payload = call_payload(
            row, task=task, caller=callers.get(number) if number else None, events=snap.events
        )
        task_id = task.id if task else None
        if payload["voicemail"] is not None:
            written += await enqueue(
                conn,
                "voicemail",
                payload,
                channels,
                dedupe_key=f"voicemail:{snap.call_id}",
                call_id=snap.call_id,
                task_id=task_id,
            )
        if task is not None:
            # Only destinations that did not take this call's voicemail.
            rest = [
                d for d in channels if payload["voicemail"] is None or "voicemail" not in d.events
            ]
            written += await enqueue(
                conn,
                "callback_task",
                payload,
                rest,
                dedupe_key=f"callback_task:{task.id}",
                call_id=snap.call_id,
                task_id=task.id,
                once_per_task=True,
            )
    return written


async def _callers(
    conn: asyncpg.Connection,
    snaps: Sequence[CallSnapshot],
    caller_lookup: CallerLookup | None,
) -> Mapping[str, CallerInfo]:
    numbers = sorted({n for s in snaps if (n := s.row[_COL["caller_number"]])})
    if caller_lookup is None or not numbers:
        return {}
    try:
        async with conn.transaction():
            return await caller_lookup(conn, numbers)
    except _CONNECTION_ERRORS:
        raise
    except Exception as exc:
        if conn.is_closed():
            raise
        # Without the directory the notification still goes out, just less informative.
        log.warning("caller directory lookup failed (%s); notifying without it", exc)
        return {}


_CLAIM_SQL = """
UPDATE notifications AS n
SET status = 'sending', attempts = n.attempts + 1,
    next_attempt_at = now() + make_interval(secs => $2), claimed_by = $3
FROM (
    SELECT id FROM notifications
    WHERE status IN ('pending', 'sending') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
) AS due
WHERE n.id = due.id
RETURNING n.id, n.kind, n.channel, n.target, n.payload, n.attempts, n.created_at
"""
_DELIVERED_SQL = """
UPDATE notifications SET status = 'delivered', delivered_at = now(), last_error = NULL
WHERE id = $1 AND status = 'sending' AND attempts = $2
"""
_RETRY_SQL = """
UPDATE notifications
SET status = 'pending', next_attempt_at = now() + make_interval(secs => $3), last_error = $4
WHERE id = $1 AND status = 'sending' AND attempts = $2
"""
_FAILED_SQL = """
UPDATE notifications SET status = 'failed', last_error = $3
WHERE id = $1 AND status = 'sending' AND attempts = $2
"""
_RELEASE_SQL = """
UPDATE notifications SET status = 'pending', next_attempt_at = now()
WHERE id = $1 AND status = 'sending' AND attempts = $2
"""
_NEXT_DUE_SQL = """
SELECT EXTRACT(EPOCH FROM (min(next_attempt_at) - now()))::float8
FROM notifications WHERE status IN ('pending', 'sending')
"""
_COUNTS_SQL = "SELECT status, count(*) FROM notifications GROUP BY status"
_MAX_ERROR = 2000


async def claim(
    conn: asyncpg.Connection, *, limit: int, lease_seconds: float, node: str
) -> list[ClaimedNotification]:
    """Take up to ``limit`` due notifications for this sender (committed at once)."""
    rows = await conn.fetch(_CLAIM_SQL, limit, lease_seconds, node)
    return [
        ClaimedNotification(
            id=row["id"],
            kind=row["kind"],
            channel=row["channel"],
            target=row["target"],
            payload=orjson.loads(row["payload"]),
            attempt=row["attempts"],
            created_at=row["created_at"],
        )
        for row in rows
    ]


def _settled(status: str) -> bool:
    return status.rsplit(" ", 1)[-1] != "0"


async def mark_delivered(conn: asyncpg.Connection, item: ClaimedNotification) -> bool:
    """Record the delivery; False when the claim was lost (lease ran out, another took it)."""
    return _settled(await conn.execute(_DELIVERED_SQL, item.id, item.attempt))


async def schedule_retry(
    conn: asyncpg.Connection, item: ClaimedNotification, delay: float, error: str
) -> bool:
    """Put the row back as pending, due in ``delay`` seconds; False when the claim was lost."""
    return _settled(
        await conn.execute(_RETRY_SQL, item.id, item.attempt, delay, error[:_MAX_ERROR])
    )


async def mark_failed(conn: asyncpg.Connection, item: ClaimedNotification, error: str) -> bool:
    """Give up on the row; False when the claim was lost."""
    return _settled(await conn.execute(_FAILED_SQL, item.id, item.attempt, error[:_MAX_ERROR]))


async def release(conn: asyncpg.Connection, item: ClaimedNotification) -> bool:
    """Hand an unfinished row back at once (shutdown), rather than after its lease."""
    return _settled(await conn.execute(_RELEASE_SQL, item.id, item.attempt))


async def seconds_until_due(conn: asyncpg.Connection) -> float | None:
    """Seconds until the next row falls due (<= 0: now); None when nothing is waiting."""
    value = await conn.fetchval(_NEXT_DUE_SQL)
    return None if value is None else float(value)


async def status_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """How many notifications are in each status (for ops pages and tests)."""
    return {row[0]: int(row[1]) for row in await conn.fetch(_COUNTS_SQL)}


_PURGE_SQL = """
DELETE FROM notifications
WHERE status IN ('delivered', 'failed') AND created_at < $1
"""


async def delete_settled(conn: asyncpg.Connection, before: datetime) -> int:
    """Delete delivered and failed notifications created before ``before`` (retention);
    pending ones are kept whatever their age. Returns how many were deleted."""
    status: str = await conn.execute(_PURGE_SQL, before)
    return int(status.rsplit(" ", 1)[-1])


_REQUEUE_SQL = """
UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = now()
WHERE status = 'failed' AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[]))
"""


async def requeue_failed(conn: asyncpg.Connection, ids: Sequence[uuid.UUID] | None = None) -> int:
    """Send failed notifications again with a fresh set of attempts (all of them, or those
    in ``ids``), e.g. after a webhook's URL or secret was fixed. Returns how many."""
    status: str = await conn.execute(_REQUEUE_SQL, None if ids is None else list(ids))
    return int(status.rsplit(" ", 1)[-1])

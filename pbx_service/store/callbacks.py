"""Callback tasks, written in the same transaction as the calls that make or close them.

Every ended call that reached nobody (voicemail, abandoned, failed, a callback request) makes
or joins the caller's one open task; a later call from that number that reaches a person closes
it. Doing this inside the call-log writer's transaction gives it the writer's guarantees for
free: nothing blocks a call, an outage spools it to disk, and a replayed batch changes nothing
because ``calls.callback_task`` is set in the same transaction that links the call.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from pbx_service.store.records import Outcome
from pbx_service.store.rows import CALL_COLUMNS, CallSnapshot

# What each outcome puts in a task's `sources`.
TASK_SOURCES: dict[str, str] = {
    Outcome.VOICEMAIL.value: "voicemail",
    Outcome.ABANDONED.value: "abandoned",
    Outcome.FAILED.value: "failed",
    Outcome.CALLBACK.value: "callback_requested",
}
# Outcomes where the caller spoke to a person: an open task for that number is done.
REACHED_A_PERSON: frozenset[str] = frozenset(
    {Outcome.ANSWERED.value, Outcome.TRANSFERRED.value, Outcome.OVERFLOW.value}
)
_COL = {name: i for i, name in enumerate(CALL_COLUMNS)}

_LINKED_SQL = "SELECT callback_task FROM calls WHERE id = $1 FOR UPDATE"
_OPEN_TASK_SQL = (
    "SELECT id FROM callback_tasks WHERE number = $1 AND status IN ('open', 'claimed') FOR UPDATE"
)
_NEW_TASK_SQL = """
INSERT INTO callback_tasks (id, number, anonymous, caller_name, did, line_label, status,
                            due_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $8)
ON CONFLICT (number) WHERE status IN ('open', 'claimed') AND number IS NOT NULL DO NOTHING
RETURNING id
"""
_ADD_CALL_SQL = """
UPDATE callback_tasks SET
    attempts = attempts + 1,
    sources = CASE WHEN $2 = ANY(sources) THEN sources ELSE array_append(sources, $2) END,
    voicemails = CASE WHEN $3::text IS NULL THEN voicemails
                      ELSE array_append(voicemails, $3::text) END,
    due_at = LEAST(due_at, $4),
    last_call_at = GREATEST(COALESCE(last_call_at, $5), $5),
    caller_name = COALESCE(caller_name, $6),
    updated_at = now()
WHERE id = $1
"""
_LINK_SQL = "UPDATE calls SET callback_task = $2 WHERE id = $1"


_ALREADY_LINKED_SQL = (
    "SELECT id FROM calls WHERE id = ANY($1::uuid[]) AND callback_task IS NOT NULL"
)
# One statement for every call of the batch that reached a person; most calls do.
_CLOSE_MANY_SQL = """
UPDATE callback_tasks AS t SET status = 'done', closed_by = u.closed_by, closed_at = u.at,
    close_reason = 'called again and reached a person', updated_at = now()
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(number, closed_by, at)
WHERE t.number = u.number AND t.status IN ('open', 'claimed') AND t.created_at <= u.at
"""


async def apply_callbacks(conn: asyncpg.Connection, snaps: Sequence[CallSnapshot]) -> None:
    """Make, join or close callback tasks for the ended calls in ``snaps``.

    Runs inside the writer's transaction, after the calls themselves were written. A batch
    costs one statement for the calls that reached a person and one for those that did not,
    plus a few per call that makes a task (the rare case).
    """
    to_task: list[tuple[tuple[Any, ...], str]] = []
    closing: tuple[list[str], list[str | None], list[datetime]] = ([], [], [])
    for snap in snaps:
        row = snap.row
        ended_at = row[_COL["ended_at"]]
        if ended_at is None:
            continue
        outcome = row[_COL["outcome"]]
        if outcome in TASK_SOURCES:
            to_task.append((row, TASK_SOURCES[outcome]))
        elif outcome in REACHED_A_PERSON and row[_COL["caller_number"]]:
            closing[0].append(row[_COL["caller_number"]])
            closing[1].append(row[_COL["answered_by"]])
            closing[2].append(row[_COL["answered_at"]] or ended_at)
    if to_task:
        linked = {
            r["id"]
            for r in await conn.fetch(_ALREADY_LINKED_SQL, [row[_COL["id"]] for row, _ in to_task])
        }
        for row, source in to_task:
            if row[_COL["id"]] not in linked:
                await _task_for(conn, row, source)
    if closing[0]:
        await conn.execute(_CLOSE_MANY_SQL, *closing)


async def _task_for(conn: asyncpg.Connection, row: tuple[Any, ...], source: str) -> None:
    call_id: uuid.UUID = row[_COL["id"]]
    if await conn.fetchval(_LINKED_SQL, call_id) is not None:
        return  # already linked: this is a replay or a later version of the same call
    number: str | None = row[_COL["caller_number"]]
    ended_at: datetime = row[_COL["ended_at"]]
    due_at: datetime = row[_COL["callback_due"]] or ended_at
    task_id = None
    if number:
        task_id = await conn.fetchval(_OPEN_TASK_SQL, number)
    if task_id is None:
        task_id = await conn.fetchval(
            _NEW_TASK_SQL,
            uuid.uuid4(),
            number or None,
            not number,
            row[_COL["caller_name"]],
            row[_COL["did"]],
            row[_COL["line_label"]],
            due_at,
            ended_at,
        )
        if task_id is None:  # another daemon opened it a moment ago
            task_id = await conn.fetchval(_OPEN_TASK_SQL, number)
    await conn.execute(
        _ADD_CALL_SQL,
        task_id,
        source,
        row[_COL["voicemail"]],
        due_at,
        ended_at,
        row[_COL["caller_name"]],
    )
    await conn.execute(_LINK_SQL, call_id, task_id)

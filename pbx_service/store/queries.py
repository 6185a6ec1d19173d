"""Read side of the call log, for the CLI and the ops web: JSON-ready dicts."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pbx_service.store.connect import connect
from pbx_service.store.errors import StoreError
from pbx_service.store.models import Call, CallEvent
from pbx_service.store.records import Outcome
from pbx_service.store.rows import utc

# Outcomes where the caller reached a person or a robot: nothing to follow up.
SERVED_OUTCOMES: tuple[str, ...] = (
    Outcome.ANSWERED.value,
    Outcome.SELF_SERVICE.value,
    Outcome.TRANSFERRED.value,
    Outcome.OVERFLOW.value,
)


def lost_call_condition() -> ColumnElement[bool]:
    """The one definition of a lost call, as a SQL condition on ``calls``.

    A call is lost when it has ended without reaching a person or a robot and without a
    callback task to follow it up (a voicemail makes one too). The product's promise is that
    this counts zero.
    """
    return (
        Call.ended_at.is_not(None)
        & or_(Call.outcome.is_(None), Call.outcome.not_in(SERVED_OUTCOMES))
        & Call.callback_task.is_(None)
    )


def _connect(database_url: str) -> AbstractAsyncContextManager[AsyncConnection]:
    return connect(database_url, "call-log query")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


_SelectT = TypeVar("_SelectT", bound=Select[*tuple[Any, ...]])


def _since(stmt: _SelectT, since: datetime | None) -> _SelectT:
    return stmt if since is None else stmt.where(Call.started_at >= utc(since))


async def list_calls(
    database_url: str, *, since: datetime | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Calls started at or after ``since``, oldest first, each with its ordered events.

    With ``limit``, the most recent ``limit`` of them (still oldest first), like ``tail``.
    Times are ISO 8601 strings in UTC with their offset; ids are strings.
    """
    if limit is not None and limit < 0:
        raise StoreError(f"limit must be >= 0, got {limit}")
    table = Call.__table__
    stmt = _since(select(table), since)
    if limit is not None:
        latest = stmt.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).subquery()
        stmt = select(latest).order_by(latest.c.started_at, latest.c.id)
    else:
        stmt = stmt.order_by(Call.started_at, Call.id)
    async with _connect(database_url) as conn:
        calls = (await conn.execute(stmt)).mappings().all()
        events: dict[uuid.UUID, list[dict[str, Any]]] = {c["id"]: [] for c in calls}
        if calls:
            result = await conn.execute(
                select(CallEvent.__table__)
                .where(CallEvent.call_id.in_(list(events)))
                .order_by(CallEvent.call_id, CallEvent.seq)
            )
            for ev in result.mappings():
                item: dict[str, Any] = {"seq": ev["seq"], "at": _iso(ev["at"]), "kind": ev["kind"]}
                for key, value in (ev["detail"] or {}).items():
                    item.setdefault(key, value)  # detail never hides seq/at/kind
                events[ev["call_id"]].append(item)
    return [
        {
            "id": str(c["id"]),
            "channel_id": c["channel_id"],
            "linkedid": c["linkedid"],
            "node": c["node"],
            "started_at": _iso(c["started_at"]),
            "answered_at": _iso(c["answered_at"]),
            "ended_at": _iso(c["ended_at"]),
            "caller": c["caller_number"],
            "caller_name": c["caller_name"],
            "did": c["did"],
            "line_label": c["line_label"],
            "listed": c["listed"],
            "outcome": c["outcome"],
            "answered_by": c["answered_by"],
            "wait_seconds": c["wait_seconds"],
            "talk_seconds": c["talk_seconds"],
            "recording": c["recording"],
            "voicemail": c["voicemail"],
            "category": c["category"],
            "menu_path": list(c["menu_path"] or []),
            "callback_task": None if c["callback_task"] is None else str(c["callback_task"]),
            "callback_due": _iso(c["callback_due"]),
            "updated_at": _iso(c["updated_at"]),
            "events": events[c["id"]],
        }
        for c in calls
    ]


async def call_summary(database_url: str, since: datetime | None = None) -> dict[str, Any]:
    """Counts over the calls started at or after ``since``.

    Keys: ``since``, ``total``, ``in_progress`` (not ended), ``answered`` (outcome answered),
    ``lost`` (see `lost_call_condition`), ``ended_without_outcome``, ``average_wait_seconds``
    (None without data), ``by_outcome`` (every Outcome value, zeros included) and ``by_line``
    (line label, ``null`` labels under ``""``).
    """
    totals = _since(
        select(
            func.count().label("total"),
            func.count().filter(Call.ended_at.is_(None)).label("in_progress"),
            func.count().filter(Call.outcome == Outcome.ANSWERED.value).label("answered"),
            func.count().filter(lost_call_condition()).label("lost"),
            func.count()
            .filter(Call.ended_at.is_not(None) & Call.outcome.is_(None))
            .label("ended_without_outcome"),
            func.avg(Call.wait_seconds).label("average_wait_seconds"),
        ),
        since,
    )
    by_outcome = _since(
        select(Call.outcome, func.count()).where(Call.outcome.is_not(None)), since
    ).group_by(Call.outcome)
    by_line = _since(select(Call.line_label, func.count()), since).group_by(Call.line_label)
    async with _connect(database_url) as conn:
        row = (await conn.execute(totals)).mappings().one()
        outcomes = {o.value: 0 for o in Outcome}
        outcomes.update({str(k): int(v) for k, v in (await conn.execute(by_outcome)).all()})
        lines = {(k or ""): int(v) for k, v in (await conn.execute(by_line)).all()}
    average = row["average_wait_seconds"]
    return {
        "since": _iso(since),
        "total": int(row["total"]),
        "in_progress": int(row["in_progress"]),
        "answered": int(row["answered"]),
        "lost": int(row["lost"]),
        "ended_without_outcome": int(row["ended_without_outcome"]),
        "average_wait_seconds": None if average is None else float(average),
        "by_outcome": outcomes,
        "by_line": dict(sorted(lines.items())),
    }

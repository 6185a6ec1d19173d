"""Builders and readers shared by the storage tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.records import CallRecord, Outcome

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
UNREACHABLE_URL = "postgresql+asyncpg://postgres@/postgres?host=/nonexistent/pbx-test-socket"


def make_call(n: int = 0, **overrides: Any) -> CallRecord:
    """A call that has just started, ``n`` minutes after T0."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "channel_id": f"chan-{n}",
        "started_at": T0 + timedelta(minutes=n),
        "did": "+33170000000",
        "line_label": "Sales",
        "listed": True,
        "caller_number": f"+3361234{n:04d}",
        "caller_name": f"Caller {n}",
    }
    fields.update(overrides)
    return CallRecord(**fields)


def progress(call: CallRecord, step: int) -> None:
    """Advance ``call`` by one step: a new event and some changed fields."""
    at = call.started_at + timedelta(seconds=10 * step)
    call.add_event(at, f"step-{step}", step=step, note=f"step {step}")
    call.menu_path.append(str(step))
    call.wait_seconds = float(step)
    if step == 2:
        call.answered_at = at
        call.answered_by = "agent-1"
    if step >= 3:
        call.ended_at = at
        call.outcome = Outcome.ANSWERED
        call.talk_seconds = 5.0 * step


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()

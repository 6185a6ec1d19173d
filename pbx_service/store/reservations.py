"""Agent reservations in PostgreSQL: the one place that knows, across every daemon sharing the
database (one per Asterisk node), which agent is held by which call.

A reservation lives until ``expires_at``: a short lease while ringing, a long one while
talking, the wrap-up after the call. A daemon that dies leaves leases that simply expire, so
no agent is locked out for good. Taking an agent is one atomic statement per attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg  # type: ignore[import-untyped,unused-ignore]

from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.errors import DatabaseUnavailableError

T = TypeVar("T")

_RESERVE_SQL = """
INSERT INTO agent_reservations AS r (agent_id, call_id, node, reserved_at, expires_at)
SELECT a, $2, $3, $4, $5 FROM unnest($1::text[]) AS a
ON CONFLICT (agent_id) DO UPDATE
    SET call_id = EXCLUDED.call_id, node = EXCLUDED.node,
        reserved_at = EXCLUDED.reserved_at, expires_at = EXCLUDED.expires_at
    WHERE r.expires_at <= EXCLUDED.reserved_at OR r.call_id = EXCLUDED.call_id
RETURNING agent_id
"""
_EXTEND_SQL = "UPDATE agent_reservations SET expires_at = $3 WHERE agent_id = $1 AND call_id = $2"
_RELEASE_SQL = "DELETE FROM agent_reservations WHERE agent_id = ANY($1::text[]) AND call_id = $2"
_HELD_SQL = "SELECT agent_id FROM agent_reservations WHERE expires_at > $1"

# How long a call may hold an agent without renewing: far longer than any call, short enough
# that a crashed daemon's agents come back the same day.
TALK_LEASE = timedelta(hours=4)
# A reservation is on the ringing path of a live call: never let a hung database hold it up.
DEADLINE_SECONDS = 2.0


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: these statements leave no session state (no SET, LISTEN, cursors or
    advisory locks). asyncpg's default reset is a round trip per statement, ~5 % of the
    daemon's CPU in the load profile (benchmarks/soak.py)."""


class AgentReservations:
    def __init__(self, database_url: str, node: str | None) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self.node = node
        self._pool: asyncpg.Pool | None = None

    async def _conn_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=4,
                command_timeout=DEADLINE_SECONDS,
                reset=_keep_session,
            )
        return self._pool

    async def _run(self, work: Awaitable[T]) -> T:
        """`work` within the deadline, database trouble as `DatabaseUnavailableError`."""
        try:
            return await asyncio.wait_for(work, DEADLINE_SECONDS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailableError(f"agent reservations: {exc!r}") from exc

    async def reserve(self, agents: Sequence[str], call_id: str, lease: timedelta) -> list[str]:
        """Take the agents nobody else holds; returns those this call now holds."""
        now = datetime.now(UTC)
        rows = await self._run(
            self._fetch(_RESERVE_SQL, list(agents), call_id, self.node, now, now + lease)
        )
        taken = {r["agent_id"] for r in rows}
        return [a for a in agents if a in taken]

    async def hold(self, agent: str, call_id: str, lease: timedelta = TALK_LEASE) -> None:
        """The agent answered: keep them for the call."""
        await self._run(self._execute(_EXTEND_SQL, agent, call_id, datetime.now(UTC) + lease))

    async def release(self, agents: Sequence[str], call_id: str, *, wrap_up: float = 0.0) -> None:
        """Free the agents (after `wrap_up` seconds: the lease then runs out by itself)."""
        if wrap_up > 0:
            until = datetime.now(UTC) + timedelta(seconds=wrap_up)
            for agent in agents:
                await self._run(self._execute(_EXTEND_SQL, agent, call_id, until))
        else:
            await self._run(self._execute(_RELEASE_SQL, list(agents), call_id))

    async def held(self) -> set[str]:
        """Agents some call holds right now (this daemon's or another's)."""
        rows = await self._run(self._fetch(_HELD_SQL, datetime.now(UTC)))
        return {r["agent_id"] for r in rows}

    async def _fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        pool = await self._conn_pool()
        return list(await pool.fetch(sql, *args))

    async def _execute(self, sql: str, *args: object) -> None:
        pool = await self._conn_pool()
        await pool.execute(sql, *args)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

"""Find the known customer behind a caller number: one index probe, and a small cache.

`lookup` is the one-shot query (CLI, ops). `ContactDirectory` is what the daemon keeps: a
pooled connection, a per-number cache with a TTL (unknown numbers cached too: most callers
are not in the directory), and a lookup that never holds a call up: on a database failure or
timeout it answers from a stale cache entry or None ("unknown caller") and logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import Select, func, pool, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.orm import aliased

from pbx_service.calls.numbers import to_e164
from pbx_service.calls.queueing import Tier
from pbx_service.contacts.model import Contact
from pbx_service.store.contacts_models import Contact as ContactTable
from pbx_service.store.contacts_models import ContactNumber as ContactNumberTable
from pbx_service.store.embedded import normalize_database_url
from pbx_service.store.errors import DatabaseUnavailableError, StoreError

log = logging.getLogger(__name__)


def _translate(exc: BaseException) -> StoreError:
    if isinstance(exc, OSError):
        return DatabaseUnavailableError(f"cannot reach the contacts database: {exc}")
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            return DatabaseUnavailableError(f"cannot reach the contacts database: {exc}")
        return StoreError(f"contacts query failed: {exc.orig or exc}")
    return StoreError(f"contacts query failed: {exc}")


@asynccontextmanager
async def _translated(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.connect() as conn:
            yield conn
    except (OSError, SQLAlchemyError) as exc:
        raise _translate(exc) from exc


@asynccontextmanager
async def connect(database_url: str) -> AsyncIterator[AsyncConnection]:
    """One connection to the directory's database for a one-off job; database errors come
    out as `StoreError` (`DatabaseUnavailableError` when it cannot be reached)."""
    engine = create_async_engine(normalize_database_url(database_url), poolclass=pool.NullPool)
    try:
        async with _translated(engine) as conn:
            yield conn
    finally:
        await engine.dispose()


def _lookup_query(number: str) -> Select[*tuple[Any, ...]]:
    c = ContactTable
    probe = aliased(ContactNumberTable)
    every = aliased(ContactNumberTable)
    return (
        select(
            c.id,
            c.name,
            c.company,
            c.tier,
            c.account_manager,
            c.external_id,
            c.notes,
            func.array_agg(every.number).label("numbers"),
        )
        .select_from(probe)
        .join(c, c.id == probe.contact_id)
        .join(every, every.contact_id == c.id)
        .where(probe.number == number)
        .group_by(c.id)
    )


async def _fetch(conn: AsyncConnection, number: str) -> Contact | None:
    row = (await conn.execute(_lookup_query(number))).one_or_none()
    if row is None:
        return None
    return Contact(
        id=row.id,
        name=row.name,
        company=row.company,
        tier=Tier(row.tier),
        account_manager=row.account_manager,
        numbers=tuple(sorted(row.numbers)),
        external_id=row.external_id,
        notes=row.notes,
    )


def normalise_caller(number: str | None, default_region: str = "RU") -> str | None:
    """The key a caller number is looked up by: its E.164 form, None when it cannot be one
    (anonymous, empty, not a phone number): such callers are never in the directory."""
    e164 = to_e164(number, default_region)
    return e164 if e164 is not None and e164.startswith("+") else None


async def lookup(database_url: str, number: str, default_region: str = "RU") -> Contact | None:
    """The contact owning ``number`` ("8 (495) 123-45-67", "+7 495 1234567" and
    "74951234567" are the same number), or None. One unique-index probe.

    Raises `StoreError` (`DatabaseUnavailableError`) when the database fails.
    """
    key = normalise_caller(number, default_region)
    if key is None:
        return None
    async with connect(database_url) as conn:
        return await _fetch(conn, key)


class ContactDirectory:
    """Cached lookups for the daemon: ``await directory.get(caller_number)``.

    Answers (unknown numbers included) are kept ``ttl_seconds``; at most ``max_entries``
    numbers, the oldest dropped first. A query that fails or takes longer than
    ``timeout_seconds`` is logged and answered with the expired cache entry if there is one,
    else None; for ``retry_after_seconds`` after a failure the database is not asked again,
    so an outage costs one timeout, not one per call. Call `invalidate` after an import and
    `aclose` at shutdown (or use ``async with``).
    """

    def __init__(
        self,
        database_url: str,
        ttl_seconds: float = 60.0,
        *,
        default_region: str = "RU",
        timeout_seconds: float = 1.0,
        retry_after_seconds: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0 or timeout_seconds <= 0 or max_entries < 1:
            raise ValueError("ttl_seconds >= 0, timeout_seconds > 0 and max_entries >= 1")
        self._url = normalize_database_url(database_url)
        self._ttl = ttl_seconds
        self._region = default_region
        self._timeout = timeout_seconds
        self._retry_after = retry_after_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._engine: AsyncEngine | None = None
        # number → (expires at, answer); insertion order is age order.
        self._cache: dict[str, tuple[float, Contact | None]] = {}
        self._down_until = float("-inf")
        self.queries = 0  # database round trips made, for tests and metrics

    def _engine_for_use(self) -> AsyncEngine:
        if self._engine is None:
            # Pre-ping: after a PostgreSQL restart the first call still finds its customer.
            self._engine = create_async_engine(
                self._url, pool_size=2, max_overflow=2, pool_pre_ping=True
            )
        return self._engine

    async def get(self, number: str | None) -> Contact | None:
        """The contact owning ``number`` (any spelling), None for unknown or anonymous
        callers. Never raises for database trouble (see the class docstring)."""
        key = normalise_caller(number, self._region)
        if key is None:
            return None
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        stale = None if cached is None else cached[1]
        if now < self._down_until:
            return stale
        try:
            self.queries += 1
            async with asyncio.timeout(self._timeout):
                async with _translated(self._engine_for_use()) as conn:
                    contact = await _fetch(conn, key)
        except (StoreError, TimeoutError) as exc:
            self._down_until = self._clock() + self._retry_after
            log.warning(
                "contacts lookup of %s failed, treating the caller as %s: %s",
                key,
                "last known" if stale is not None else "unknown",
                exc or "timed out",
            )
            return stale
        self._remember(key, contact)
        return contact

    def _remember(self, key: str, contact: Contact | None) -> None:
        self._cache.pop(key, None)
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = (self._clock() + self._ttl, contact)

    def invalidate(self, number: str | None = None) -> None:
        """Forget the cached answer for ``number``, or every answer (after an import)."""
        if number is None:
            self._cache.clear()
        else:
            key = normalise_caller(number, self._region)
            if key is not None:
                self._cache.pop(key, None)
        self._down_until = float("-inf")

    async def aclose(self) -> None:
        """Close the pooled connections."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> ContactDirectory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["ContactDirectory", "connect", "lookup", "normalise_caller"]

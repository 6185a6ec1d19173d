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
from collections.abc import Callable
from types import TracebackType

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from pbx_service.calls.numbers import to_e164
from pbx_service.calls.queueing import Tier
from pbx_service.contacts.errors import DirectorySettingsError
from pbx_service.contacts.model import Contact
from pbx_service.store.embedded import asyncpg_dsn, normalize_database_url
from pbx_service.store.errors import DatabaseUnavailableError, StoreError

log = logging.getLogger(__name__)


# One probe of the unique index on contact_numbers.number, then the contact's other numbers.
LOOKUP_SQL = """
SELECT c.id, c.name, c.company, c.tier, c.account_manager, c.external_id, c.notes,
       array(SELECT a.number FROM contact_numbers a WHERE a.contact_id = c.id
             ORDER BY a.number) AS numbers
FROM contact_numbers n JOIN contacts c ON c.id = n.contact_id
WHERE n.number = $1
"""


def _contact(row: asyncpg.Record | None) -> Contact | None:
    if row is None:
        return None
    return Contact(
        id=row["id"],
        name=row["name"],
        company=row["company"],
        tier=Tier(row["tier"]),
        account_manager=row["account_manager"],
        numbers=tuple(row["numbers"]),
        external_id=row["external_id"],
        notes=row["notes"],
    )


def _translate_asyncpg(exc: BaseException) -> StoreError:
    if isinstance(exc, OSError | asyncpg.InterfaceError) or type(exc).__name__ in _GONE:
        return DatabaseUnavailableError(f"cannot reach the contacts database: {exc}")
    return StoreError(f"contacts lookup failed: {exc}")


# asyncpg errors that mean "the server or the connection went away", by class name.
_GONE = frozenset(
    {
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "InvalidCatalogNameError",
    }
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
    try:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _translate_asyncpg(exc) from exc
    try:
        return _contact(await conn.fetchrow(LOOKUP_SQL, key))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _translate_asyncpg(exc) from exc
    finally:
        await conn.close()


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
            raise DirectorySettingsError(
                f"contacts directory needs ttl_seconds >= 0 (got {ttl_seconds}), "
                f"timeout_seconds > 0 (got {timeout_seconds}) and max_entries >= 1 "
                f"(got {max_entries})"
            )
        self._url = normalize_database_url(database_url)
        self._ttl = ttl_seconds
        self._region = default_region
        self._timeout = timeout_seconds
        self._retry_after = retry_after_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        # number → (expires at, answer); insertion order is age order.
        self._cache: dict[str, tuple[float, Contact | None]] = {}
        self._down_until = float("-inf")
        self.queries = 0  # database round trips made, for tests and metrics

    async def _query(self, key: str) -> Contact | None:
        # asyncpg directly: this runs at the start of every inbound call, and SQLAlchemy's
        # checkout/reset round trips made it ~30x slower than the query itself.
        try:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        asyncpg_dsn(self._url), min_size=0, max_size=4
                    )
            pool = self._pool
            return _contact(await pool.fetchrow(LOOKUP_SQL, key))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            error = _translate_asyncpg(exc)
            if not isinstance(error, DatabaseUnavailableError):
                raise error from exc
        # A pooled connection the server dropped (PostgreSQL restarted): the pool has
        # discarded it; one retry on a fresh connection finds the customer.
        try:
            return _contact(await pool.fetchrow(LOOKUP_SQL, key))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate_asyncpg(exc) from exc

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
                contact = await self._query(key)
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
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> ContactDirectory:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["LOOKUP_SQL", "ContactDirectory", "lookup", "normalise_caller"]

"""ContactDirectory: cached lookups that never hold a call up, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from pbx_service.calls.queueing import Tier
from pbx_service.contacts import ContactDirectory, import_contacts
from pbx_service.contacts.errors import DirectorySettingsError
from tests.fixtures.database import PostgresServer, RestartablePostgres
from tests.store.helpers import UNREACHABLE_URL
from tests.store.test_contacts_import import CUSTOMERS, write_csv


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def filled(database_url: str, tmp_path: Path) -> str:
    await import_contacts(database_url, write_csv(tmp_path / "crm.csv", CUSTOMERS), None)
    return database_url


async def test_repeat_calls_are_answered_from_the_cache(filled: str) -> None:
    clock = FakeClock()
    async with ContactDirectory(filled, ttl_seconds=60, clock=clock) as directory:
        first = await directory.get("8 (495) 123-45-67")
        assert first is not None and first.tier is Tier.A
        # Every spelling is one cache key.
        assert await directory.get("+7 495 1234567") == first
        assert await directory.get("74951234567") == first
        assert directory.queries == 1
        # Unknown callers are cached too: most callers are not in the directory.
        assert await directory.get("+74950000000") is None
        assert await directory.get("84950000000") is None
        assert directory.queries == 2
        # Anonymous callers never reach the database.
        assert await directory.get(None) is None
        assert await directory.get("anonymous") is None
        assert directory.queries == 2


async def test_entries_expire_after_the_ttl(filled: str, tmp_path: Path) -> None:
    clock = FakeClock()
    async with ContactDirectory(filled, ttl_seconds=60, clock=clock) as directory:
        assert await directory.get("+74950000001") is None
        newcomer = [["900", "Новиков", "", "B", "", "+7 495 000-00-01", "", ""]]
        await import_contacts(filled, write_csv(tmp_path / "new.csv", newcomer), None)
        clock.now += 59
        assert await directory.get("+74950000001") is None  # still cached
        clock.now += 2
        found = await directory.get("+74950000001")
        assert found is not None and found.name == "Новиков"
        assert directory.queries == 2


async def test_invalidate_forgets_one_number_or_all(filled: str, tmp_path: Path) -> None:
    async with ContactDirectory(filled, clock=FakeClock()) as directory:
        assert await directory.get("+74950000001") is None
        assert await directory.get("+74950000002") is None
        rows = [
            ["901", "Первый", "", "", "", "+74950000001", "", ""],
            ["902", "Второй", "", "", "", "+74950000002", "", ""],
        ]
        await import_contacts(filled, write_csv(tmp_path / "new.csv", rows), None)
        directory.invalidate("8 495 000-00-01")
        first = await directory.get("+74950000001")
        assert first is not None and first.name == "Первый"
        assert await directory.get("+74950000002") is None
        directory.invalidate()
        second = await directory.get("+74950000002")
        assert second is not None and second.name == "Второй"


async def test_the_cache_is_bounded(filled: str) -> None:
    async with ContactDirectory(filled, max_entries=2, clock=FakeClock()) as directory:
        for n in range(3):
            await directory.get(f"+7495000000{n}")
        assert directory.queries == 3
        await directory.get("+74950000002")  # newest: still cached
        assert directory.queries == 3
        await directory.get("+74950000000")  # oldest: dropped
        assert directory.queries == 4


async def test_database_outage_never_raises_and_serves_stale_answers(
    postgres_server: PostgresServer, filled: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    directory = ContactDirectory(
        filled, ttl_seconds=60, timeout_seconds=2, retry_after_seconds=5, clock=clock
    )
    try:
        known = await directory.get("84951234567")
        assert known is not None
        assert await directory.get("+74950000000") is None
        postgres_server.drop_database(filled)  # terminates the pooled connections too
        clock.now += 61
        with caplog.at_level(logging.WARNING, logger="pbx_service.contacts.directory"):
            assert await directory.get("84951234567") == known  # stale, not lost
        assert "treating the caller as last known" in caplog.text
        assert directory.queries == 3
        # Within the back-off the database is not asked again.
        assert await directory.get("84957654321") is None
        assert directory.queries == 3
        clock.now += 6
        assert await directory.get("84957654321") is None
        assert directory.queries == 4
    finally:
        await directory.aclose()


async def test_unreachable_database_means_unknown_callers() -> None:
    async with ContactDirectory(UNREACHABLE_URL, timeout_seconds=2) as directory:
        assert await directory.get("84951234567") is None


def test_bad_settings_are_refused() -> None:
    with pytest.raises(DirectorySettingsError, match=r"max_entries >= 1 \(got 0\)"):
        ContactDirectory(UNREACHABLE_URL, max_entries=0)


async def test_a_hanging_database_costs_one_timeout_then_nothing() -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    try:
        async with ContactDirectory(url, timeout_seconds=0.2) as directory:
            started = time.monotonic()
            assert await directory.get("84951234567") is None
            assert await directory.get("84957654321") is None  # back-off: no second wait
            elapsed = time.monotonic() - started
        assert held, "the directory never connected"
        assert 0.2 <= elapsed < 1.0
        assert directory.queries == 1
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


async def test_the_first_call_after_a_postgres_restart_still_finds_its_customer(
    restartable_postgres: RestartablePostgres, tmp_path: Path
) -> None:
    url = restartable_postgres.url
    await import_contacts(url, write_csv(tmp_path / "crm.csv", CUSTOMERS), None)
    clock = FakeClock()
    async with ContactDirectory(url, ttl_seconds=1, timeout_seconds=5, clock=clock) as directory:
        assert await directory.get("84951234567") is not None
        await asyncio.to_thread(restartable_postgres.stop)
        await asyncio.to_thread(restartable_postgres.start)
        clock.now += 2
        again = await directory.get("84957654321")  # the pooled connection is dead
        assert again is not None and again.name == "Петрова Анна"

"""The embedded PostgreSQL and database URL handling."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest

from pbx_service.store.embedded import (
    asyncpg_dsn,
    normalize_database_url,
    resolve_database_url,
)
from pbx_service.store.errors import DatabaseUrlError, EmbeddedPostgresError


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5433/calls", "postgresql+asyncpg://u:p@db:5433/calls"),
        ("postgres://u@db/calls", "postgresql+asyncpg://u@db/calls"),
        ("postgresql+asyncpg://u@db/calls", "postgresql+asyncpg://u@db/calls"),
        ("postgresql://u@/calls?host=/run/pg", "postgresql+asyncpg://u@/calls?host=%2Frun%2Fpg"),
    ],
)
def test_urls_are_normalised_to_asyncpg(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected
    assert resolve_database_url(f"  {given} ", Path("/nonexistent")) == (expected, None)


@pytest.mark.parametrize("bad", ["mysql://u@db/calls", "postgresql+psycopg://u@db/x", "::"])
def test_unusable_urls_are_clear_errors(bad: str) -> None:
    with pytest.raises(DatabaseUrlError) as info:
        normalize_database_url(bad)
    assert "postgresql://" in str(info.value)
    assert info.value.error_id == "store-bad-database-url"


def test_password_is_not_echoed_in_errors() -> None:
    with pytest.raises(DatabaseUrlError) as info:
        normalize_database_url("mysql://u:s3cret@db/calls")
    assert "s3cret" not in str(info.value)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Outside pytest's basetemp: the server runs as another user and needs to traverse it.
    path = Path(tempfile.mkdtemp(prefix="pbx-test-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_empty_url_starts_embedded_server_that_keeps_its_data(data_dir: Path) -> None:
    url, server = resolve_database_url(None, data_dir)
    assert server is not None and url.startswith("postgresql+asyncpg://")
    try:
        with pytest.raises(EmbeddedPostgresError, match="already running"):
            server.start(data_dir / "postgres")
        assert (data_dir / "postgres" / "PG_VERSION").is_file()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('yes')")
        await conn.close()
    finally:
        server.stop()
    server.stop()  # idempotent
    assert not server.running

    url2, again = resolve_database_url("", data_dir)
    assert again is not None
    try:
        assert url2 == url
        conn = await asyncpg.connect(asyncpg_dsn(url2))
        assert await conn.fetchval("SELECT v FROM kept") == "yes"
        await conn.close()
    finally:
        again.stop()
    with pytest.raises(OSError):
        await asyncpg.connect(asyncpg_dsn(url2), timeout=2)

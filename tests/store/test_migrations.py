"""Migrations and models describe the same schema."""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pbx_service.store.embedded import asyncpg_dsn
from pbx_service.store.migrate import alembic_config, head_revision, upgrade
from pbx_service.store.models import metadata
from tests.fixtures.database import PostgresServer, execute_admin, run_async

CATALOG_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = 'public'
          AND table_name <> 'alembic_version' ORDER BY table_name, column_name""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> 'alembic_version'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version' ORDER BY 1, 2""",
}


async def catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {k: [tuple(r) for r in await conn.fetch(q)] for k, q in CATALOG_QUERIES.items()}
    finally:
        await conn.close()


def _diffs(connection: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(ctx, metadata))


async def test_migrated_database_matches_models_by_autogenerate(database_url: str) -> None:
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(_diffs)
    finally:
        await engine.dispose()
    assert diffs == []


async def test_migrated_catalog_equals_create_all_catalog(
    database_url: str, postgres_server: PostgresServer
) -> None:
    """Stricter than autogenerate: CHECK constraints, index methods and defaults included."""
    name = "pbx_create_all_" + database_url.rsplit("/", 1)[-1].split("?")[0][-12:]
    await execute_admin(postgres_server.admin_url, f'CREATE DATABASE "{name}"')
    other = postgres_server.url_for(name)
    try:
        engine = create_async_engine(other, poolclass=pool.NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
        finally:
            await engine.dispose()
        migrated, created = await catalog(database_url), await catalog(other)
    finally:
        await execute_admin(postgres_server.admin_url, f'DROP DATABASE "{name}" WITH (FORCE)')
    assert migrated["columns"], "migrated database has no tables"
    assert migrated == created


async def test_upgrade_is_idempotent_and_at_head(database_url: str) -> None:
    await upgrade(database_url)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        version = await conn.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    assert version == head_revision()


def test_downgrade_to_base_removes_everything(database_url: str) -> None:
    def downgrade(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")

    async def run() -> dict[str, list[tuple[Any, ...]]]:
        engine = create_async_engine(database_url, poolclass=pool.NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(downgrade)
        finally:
            await engine.dispose()
        return await catalog(database_url)

    after = run_async(run)
    assert after == {"columns": [], "constraints": [], "indexes": []}


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_upgrade_accepts_plain_postgresql_urls(database_url: str, scheme: str) -> None:
    await upgrade(database_url.replace("postgresql+asyncpg", scheme, 1))

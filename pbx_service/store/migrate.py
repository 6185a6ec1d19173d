"""Run the Alembic migrations programmatically (daemon start, `pbx-service db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from pbx_service.store.embedded import normalize_database_url
from pbx_service.store.errors import DatabaseUnavailableError, MigrationError

# The repository root holds alembic.ini and migrations/ (the package is installed editable;
# a wheel build must ship migrations/ alongside).
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"

# Arbitrary constant: serialises concurrent upgrades (two daemons starting together).
_ADVISORY_LOCK_KEY = 0x7062785F6D6967  # "pbx_mig"


def alembic_config() -> Config:
    """An Alembic config pointing at migrations/, independent of the working directory."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise MigrationError(f"migrations not found in {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    """The newest revision in migrations/."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade_sync(connection: Connection, cfg: Config) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")


async def upgrade(database_url: str) -> None:
    """Bring the database at ``database_url`` to the newest schema, in one transaction."""
    cfg = alembic_config()
    engine = create_async_engine(normalize_database_url(database_url), poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_sync, cfg)
    except (OSError, DBAPIError) as exc:
        if isinstance(exc, OSError) or exc.connection_invalidated or _is_connect_error(exc):
            raise DatabaseUnavailableError(f"cannot reach the database to migrate: {exc}") from exc
        raise MigrationError(f"schema migration failed: {exc}") from exc
    except SQLAlchemyError as exc:
        raise MigrationError(f"schema migration failed: {exc}") from exc
    finally:
        await engine.dispose()


def _is_connect_error(exc: DBAPIError) -> bool:
    orig = exc.orig
    return isinstance(orig, OSError) or type(orig).__name__ in {
        "InvalidCatalogNameError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
    }

"""One short-lived SQLAlchemy connection for the CLI and reports, with database errors
translated into the store's error tree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import pool
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from pbx_service.store.embedded import normalize_database_url
from pbx_service.store.errors import DatabaseUnavailableError, StoreError


@asynccontextmanager
async def connect(database_url: str, purpose: str) -> AsyncIterator[AsyncConnection]:
    """A connection for one piece of work; ``purpose`` names it in errors ("call-log query")."""
    engine = create_async_engine(normalize_database_url(database_url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            yield conn
    except OSError as exc:
        raise DatabaseUnavailableError(f"{purpose}: cannot reach the database: {exc}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc.orig, OSError):
            raise DatabaseUnavailableError(f"{purpose}: cannot reach the database: {exc}") from exc
        raise StoreError(f"{purpose} failed: {exc.orig or exc}") from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"{purpose} failed: {exc}") from exc
    finally:
        await engine.dispose()

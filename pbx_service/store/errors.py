"""Errors of the storage layer, rooted at `StoreError`.

asyncpg, SQLAlchemy, Alembic and pgserver exceptions are translated here, at the package edge.
"""

from __future__ import annotations

from pbx_service.errors import PbxError


class StoreError(PbxError):
    """Anything that went wrong in storage."""

    error_id = "store-error"


class DatabaseUrlError(StoreError):
    """A database URL we cannot use (wrong scheme, unparsable)."""

    error_id = "store-bad-database-url"


class DatabaseUnavailableError(StoreError):
    """PostgreSQL could not be reached or dropped the connection."""

    error_id = "store-database-unavailable"


class MigrationError(StoreError):
    """Running the schema migrations failed."""

    error_id = "store-migration-failed"


class EmbeddedPostgresError(StoreError):
    """The embedded PostgreSQL server (pgserver) could not be started or stopped."""

    error_id = "store-embedded-postgres"


class WriterStateError(StoreError):
    """The call-log writer was used in a state that does not allow it (not started, failed)."""

    error_id = "store-writer-state"

"""Call-log storage on PostgreSQL.

- `records`: the plain dataclasses the call flow hands over (no SQLAlchemy).
- `models`: the SQLAlchemy schema; `migrate.upgrade()` brings a database to it (Alembic).
- `embedded`: pgserver when no database URL is configured; `resolve_database_url()`.
- `writer.CallLogWriter`: non-blocking, batched writes with a disk spool for outages.
- `queries`: `list_calls()`, `call_summary()` and the one definition of a lost call.
- `errors`: `StoreError` and its subclasses.
"""

"""The embedded PostgreSQL 16 (pgserver wheel) used when no database URL is configured.

pgserver talks over a Unix socket in (or next to) the data directory; as root it runs the
server as a dedicated ``pgserver`` system user, which it creates. Starting and stopping are
blocking subprocess calls: the daemon runs them in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from pbx_service.store.errors import DatabaseUrlError, EmbeddedPostgresError

log = logging.getLogger(__name__)

ASYNC_DRIVER = "postgresql+asyncpg"
_ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def _import_pgserver() -> Any:
    # platformdirs warns (RuntimeDirWarning, a UserWarning) at pgserver's import when
    # XDG_RUNTIME_DIR is unset, as in containers and CI; it then falls back to /tmp, which is fine.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"platformdirs")
        import pgserver

    return pgserver


class EmbeddedPostgres:
    """One embedded PostgreSQL server over a data directory we choose."""

    def __init__(self) -> None:
        self._server: Any = None
        self._data_dir: Path | None = None

    @property
    def data_dir(self) -> Path | None:
        """The data directory of the running server, or None when stopped."""
        return self._data_dir

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self, data_dir: Path) -> str:
        """Start (or attach to) the server over ``data_dir``, creating it on first use.

        Returns a SQLAlchemy URL ``postgresql+asyncpg://postgres@/postgres?host=<socket dir>``.
        """
        if self._server is not None:
            raise EmbeddedPostgresError(f"embedded PostgreSQL already running in {self._data_dir}")
        data_dir = Path(data_dir).expanduser().resolve()
        try:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            pgserver = _import_pgserver()
            server = pgserver.get_server(data_dir, cleanup_mode="stop")
            uri = str(server.get_uri())
        except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
            raise EmbeddedPostgresError(
                f"could not start the embedded PostgreSQL in {data_dir}: {exc}; see "
                f"{data_dir / 'log'} for the server's own log, or set database.url"
            ) from exc
        self._server = server
        self._data_dir = data_dir
        log.info("embedded PostgreSQL running in %s", data_dir)
        return normalize_database_url(uri)

    def stop(self, mode: Literal["fast", "immediate"] = "fast") -> None:
        """Stop the server. Idempotent.

        ``fast``: open sessions are ended and a checkpoint is written. ``immediate``: no
        checkpoint, crash recovery at the next start (for throwaway servers, or tests).
        """
        server, data_dir = self._server, self._data_dir
        if server is None or data_dir is None:
            return
        pgserver = _import_pgserver()
        pid = _postmaster_pid(data_dir)
        try:
            pgserver.pg_ctl(
                ["-w", "-m", mode, "stop"], pgdata=data_dir, user=server.system_user, timeout=30
            )
        except (OSError, subprocess.SubprocessError) as exc:
            # Already down, or pg_ctl could not reach the data dir (permissions changed under
            # us): the postmaster pid below settles it.
            log.warning("pg_ctl stop in %s failed: %s", data_dir, exc)
        finally:
            # Forget this server in pgserver's process-wide registry and its handle list, so its
            # atexit hook does nothing and a later start() runs pg_ctl start again.
            pgserver.PostgresServer._instances.pop(data_dir, None)
            with contextlib.suppress(OSError):
                server.global_process_id_list.get_and_remove(os.getpid())
            self._server = None
            self._data_dir = None
        if pid is not None and not _signal_until_gone(pid):
            raise EmbeddedPostgresError(f"PostgreSQL (pid {pid}) in {data_dir} does not stop")
        log.info("embedded PostgreSQL in %s stopped", data_dir)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A stopped postmaster can linger as a zombie until init reaps it: that is gone too.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _signal_until_gone(pid: int) -> bool:
    """Make sure the postmaster ``pid`` is gone: SIGINT (fast shutdown), then SIGQUIT."""
    for sig, wait in ((None, 0.0), (signal.SIGINT, 10.0), (signal.SIGQUIT, 5.0)):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while True:
            if not _alive(pid):
                return True
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    return not _alive(pid)


def normalize_database_url(url: str) -> str:
    """Return ``url`` with the asyncpg driver; accepts ``postgresql://``, ``postgres://`` and
    ``postgresql+asyncpg://``. Raises `DatabaseUrlError` for anything else."""
    parsed = _parse(url)
    return parsed.set(drivername=ASYNC_DRIVER).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain ``postgresql://`` DSN, for asyncpg.connect()."""
    parsed = _parse(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(
            f"cannot parse database URL {_redact(url)!r}: expected "
            "postgresql://user:password@host:port/dbname"
        ) from exc
    if parsed.drivername not in _ACCEPTED_SCHEMES:
        raise DatabaseUrlError(
            f"unsupported database URL scheme {parsed.drivername!r}: use postgresql:// "
            "(or postgresql+asyncpg://)"
        )
    return parsed


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable>"


def resolve_database_url(url: str | None, data_dir: Path) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL to use, and the embedded server to stop at shutdown if one was started.

    A non-empty ``url`` is normalised to the asyncpg driver and no server is started; None or
    empty starts (or attaches to) the embedded PostgreSQL under ``data_dir / "postgres"``.
    Blocking: call it in a thread from async code.
    """
    if url is not None and url.strip():
        return normalize_database_url(url.strip()), None
    embedded = EmbeddedPostgres()
    return embedded.start(Path(data_dir) / "postgres"), embedded

"""The writer's disk spool: one fsync'd JSON-lines file per batch that could not reach
PostgreSQL, replayed oldest first; and the ``rejected/`` folder for rows PostgreSQL refused.

Files are written to a ``.tmp`` name, fsync'd and renamed, so a crash never leaves half a batch
under a ``.jsonl`` name. Blocking I/O: the writer calls these methods in a thread, except on its
overflow path.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from pbx_service.store.rows import CallSnapshot, from_json, to_json

log = logging.getLogger(__name__)

_NAME = re.compile(r"^batch-(\d{12})\.jsonl$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Batches waiting for the database, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.rejected_dir = self.directory / "rejected"
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for stale in self.directory.glob("*.tmp"):
            stale.unlink(missing_ok=True)  # an interrupted write: its batch was never acked
        existing = self.files()
        self._next = int(_NAME.match(existing[-1].name).group(1)) + 1 if existing else 1  # type: ignore[union-attr]
        self._count = len(existing)

    @property
    def count(self) -> int:
        """Batches on disk."""
        return self._count

    def files(self) -> list[Path]:
        """Spooled batch files, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def write(self, snapshots: Iterable[CallSnapshot]) -> Path:
        """Persist one batch durably; returns its file."""
        data = b"".join(to_json(s) + b"\n" for s in snapshots)
        with self._lock:
            path = self.directory / f"batch-{self._next:012d}.jsonl"
            self._next += 1
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.directory)
            self._count += 1
        return path

    def read(self, path: Path) -> list[CallSnapshot]:
        """The batch in ``path``; a damaged line is logged and moved to rejected/."""
        snapshots: list[CallSnapshot] = []
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                snapshots.append(from_json(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("spool %s line %d is damaged (%s); moved to rejected/", path, number, exc)
                self._append_rejected(
                    {
                        "source": str(path),
                        "line": number,
                        "error": str(exc),
                        "raw": line.decode("utf-8", "replace"),
                    }
                )
        return snapshots

    def remove(self, path: Path) -> None:
        """Delete a replayed batch."""
        with self._lock:
            path.unlink(missing_ok=True)
            _fsync_dir(self.directory)
            self._count = max(0, self._count - 1)

    def reject(self, snap: CallSnapshot, error: str) -> None:
        """Keep a row PostgreSQL refused, with the reason, for a person to look at."""
        entry = orjson.loads(to_json(snap))
        self._append_rejected({"call_id": str(snap.call_id), "error": error, **entry})

    def reject_record(self, text: str, error: str) -> None:
        """Keep a record that could not even be converted (its repr), with the reason."""
        self._append_rejected({"error": error, "record": text})

    def _append_rejected(self, entry: dict[str, object]) -> None:
        entry = {"rejected_at": datetime.now(UTC).isoformat(), **entry}
        day = datetime.now(UTC).strftime("%Y%m%d")
        with self._lock, open(self.rejected_dir / f"rejected-{day}.jsonl", "ab") as fh:
            fh.write(orjson.dumps(entry, default=str) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

"""The events side of ARI: the listener interface and the pure frame parser.

`parse_event` turns one WebSocket text frame into an `AriEvent` or raises `AriFrameError`;
`BadFrameLog` logs each kind of bad frame once and counts the rest, so a misbehaving peer
cannot flood the log. The socket itself (liveness, reconnect) lives in `client.AriClient`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Protocol

import orjson

from .errors import AriFrameError
from .models import AriEvent

log = logging.getLogger(__name__)


class AriListener(Protocol):
    """What `AriClient.run` feeds. All three are awaited on the socket's reader task."""

    async def on_connected(self, reconnected: bool) -> None:
        """After each successful socket connect; must return quickly (spawn work).

        ``reconnected`` is True from the second connect on: events of the gap are lost and
        Asterisk replays nothing, so the listener should resynchronise (list channels).
        """
        ...

    async def on_event(self, event: AriEvent) -> None:
        """Every event, in socket order. Awaiting here holds back the reader (backpressure)."""
        ...

    async def on_disconnected(self) -> None:
        """The socket is gone (closed, failed, or declared dead); a reconnect will follow."""
        ...


def parse_event(data: str | bytes) -> AriEvent:
    """Parse one text frame. Raises `AriFrameError` with ``kind`` ``not-json``,
    ``not-object`` or ``no-type``."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise AriFrameError("not-json", f"{len(data)} characters: {exc}") from None
    if raw.__class__ is not dict:
        raise AriFrameError("not-object", f"a JSON {type(raw).__name__}, not an object")
    event = AriEvent(raw)
    if not event.type:
        raise AriFrameError("no-type", "a JSON object without a string 'type'")
    return event


class BadFrameLog:
    """Logs the first bad frame of each kind as a warning; later ones are only counted."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self._log = logger
        self._counts: Counter[str] = Counter()

    @property
    def counts(self) -> Mapping[str, int]:
        """Bad frames seen so far, by kind (``not-json``, ``no-type``, ``binary``, ...)."""
        return self._counts

    def report(self, error: AriFrameError) -> None:
        """Count one bad frame; log it if it is the first of its kind."""
        self._counts[error.kind] += 1
        if self._counts[error.kind] == 1:
            self._log.warning(
                "skipping a WebSocket frame that is not an ARI event (%s); further frames of "
                "this kind are counted, not logged",
                error,
            )

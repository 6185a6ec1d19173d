"""Routing of ARI events to per-call queues.

One bounded `asyncio.Queue` per call keeps that call's events (DTMF digits above all) in socket
order and gives backpressure: when a call's consumer falls behind, `dispatch` waits, which holds
back the socket reader instead of growing memory without bound. A task per event would lose
both properties.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .errors import AriUsageError
from .models import AriEvent

# Event fields whose object names the call: a channel/bridge id, or a target_uri.
_ROUTED = ("channel", "peer", "caller", "bridge", "playback", "recording")
_TARGETED = frozenset({"playback", "recording"})


def _target_key(obj: Any) -> str | None:
    if obj.__class__ is not dict:
        return None
    uri = obj.get("target_uri")
    if uri.__class__ is not str:
        return None
    _, sep, ident = uri.partition(":")
    return ident if sep and ident else None


class EventDispatcher:
    """Routes events to per-call bounded ordered queues.

    The order per queue is the socket order (keeps DTMF in order); a full queue makes
    `dispatch` wait (backpressure).
    """

    def __init__(self, on_unrouted: Callable[[AriEvent], None], *, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise AriUsageError(f"queue_size must be >= 1, got {queue_size}")
        self._on_unrouted = on_unrouted
        self._routes: dict[str, asyncio.Queue[AriEvent]] = {}
        self.queue_size = queue_size

    def new_queue(self) -> asyncio.Queue[AriEvent]:
        """A queue of this dispatcher's size, ready for `route`."""
        return asyncio.Queue(maxsize=self.queue_size)

    def route(self, key: str, queue: asyncio.Queue[AriEvent]) -> None:
        """Send events carrying ``key`` (a channel or bridge id) to ``queue`` from now on."""
        self._routes[key] = queue

    def unroute(self, key: str) -> None:
        """Stop routing ``key``; unknown keys are ignored."""
        self._routes.pop(key, None)

    def queue_for(self, key: str) -> asyncio.Queue[AriEvent] | None:
        """The queue routed for ``key``, if any."""
        return self._routes.get(key)

    def __len__(self) -> int:
        return len(self._routes)

    async def dispatch(self, event: AriEvent) -> None:
        """Put ``event`` into every distinct queue routed for any of its keys, in order.

        Without a routed key the event goes to ``on_unrouted`` (synchronously, so it can
        `route` the new call before the next event is dispatched).
        """
        # Hot path (every event): the key extraction of `keys` inlined, no tuple built.
        raw = event.raw
        routes = self._routes
        first: asyncio.Queue[AriEvent] | None = None
        more: list[asyncio.Queue[AriEvent]] | None = None
        for name in _ROUTED:
            obj = raw.get(name)
            if obj.__class__ is not dict:
                continue
            if name in _TARGETED:
                ident = _target_key(obj)
                q = routes.get(ident) if ident is not None else None
            else:
                q = routes.get(obj.get("id", ""))
            if q is None or q is first:
                continue
            if first is None:
                first = q
            elif more is None:
                more = [q]
            elif q not in more:
                more.append(q)
        if first is None:
            self._on_unrouted(event)
            return
        try:
            first.put_nowait(event)
        except asyncio.QueueFull:
            await first.put(event)
        if more is not None:
            for q in more:
                try:
                    q.put_nowait(event)
                except asyncio.QueueFull:
                    await q.put(event)

    @staticmethod
    def keys(event: AriEvent) -> tuple[str, ...]:
        """Routing keys of an event: ids of ``channel``, ``peer``, ``caller`` (Dial),
        ``bridge``, and the target id of a ``playback`` / ``recording``."""
        raw = event.raw
        out: list[str] = []
        for field in ("channel", "peer", "caller", "bridge"):
            obj = raw.get(field)
            # ``caller`` is a Channel in Dial but a string in CallBroadcast.
            if obj.__class__ is dict:
                ident = obj.get("id")
                if ident.__class__ is str and ident and ident not in out:
                    out.append(ident)
        for field in ("playback", "recording"):
            ident = _target_key(raw.get(field))
            if ident is not None and ident not in out:
                out.append(ident)
        return tuple(out)

"""Event → command latency, measured inside the process (benchmarks, diagnostics).

A call's task calls `mark(event.received)` as it takes an event off its queue; the next REST
request that task sends hands the time since that event was read off the socket to
`AriRest.observer` and clears the mark. A wait that times out calls `clear()`, so a command a
timer sends is not counted against an old event. Costs one ContextVar set per event; nothing
is measured while no observer is installed."""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Protocol

_since: ContextVar[float | None] = ContextVar("pbx_ari_handling_since", default=None)


class RequestObserver(Protocol):
    """Called as each REST request is sent: ``lag`` is seconds since the event that caused it
    was read from the socket, or None when no event of this task is waiting for a command."""

    def __call__(self, method: str, path: str, lag: float | None) -> None: ...


def mark(received: float) -> None:
    """Mark the event received at ``received`` (its `AriEvent.received`) as the one the
    current task now reacts to."""
    _since.set(received)


def clear() -> None:
    """The current task now reacts to no event (a timer fired instead)."""
    _since.set(None)


def take_lag() -> float | None:
    """Seconds since the marked event was received, clearing the mark; None when unmarked."""
    since = _since.get()
    if since is None:
        return None
    _since.set(None)
    return time.monotonic() - since

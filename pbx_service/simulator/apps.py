"""Stasis applications: WebSocket connections, subscriptions and event delivery.

An application exists while it has a WebSocket or subscribed channels; events produced
while it has no socket are dropped (behaviour 11), never queued for a later socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import web

from pbx_service.simulator.events import envelope

log = logging.getLogger(__name__)


class EventSocket:
    """One events WebSocket; a writer task keeps per-socket order without blocking emitters."""

    def __init__(self, ws: web.WebSocketResponse, apps: list[str]) -> None:
        self.ws = ws
        self.apps = apps
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        self.replaced: set[str] = set()

    def send(self, event: dict[str, Any]) -> None:
        if not self.closed:
            self.queue.put_nowait(orjson.dumps(event))

    async def run_writer(self) -> None:
        while True:
            data = await self.queue.get()
            if data is None:
                return
            try:
                await self.ws.send_str(data.decode())
            except (ConnectionError, RuntimeError):
                self.closed = True
                return

    def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


class Application:
    """A Stasis app as ARI lists it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.socket: EventSocket | None = None
        self.subscribe_all = False
        self.bridge_ids: set[str] = set()
        self.endpoint_ids: set[str] = set()
        self.device_names: list[str] = []
        self.events_allowed: list[dict[str, Any]] = []
        self.events_disallowed: list[dict[str, Any]] = []

    @property
    def active(self) -> bool:
        return self.socket is not None and not self.socket.closed

    def allows(self, event_type: str) -> bool:
        if self.events_allowed and not any(
            f.get("type") == event_type for f in self.events_allowed
        ):
            return False
        return not any(f.get("type") == event_type for f in self.events_disallowed)

    def deliver(self, event: dict[str, Any]) -> None:
        if self.socket is None or self.socket.closed:
            log.debug("inactive Stasis app %r missed message %s", self.name, event["type"])
            return
        if not self.allows(event["type"]):
            return
        self.socket.send({**event, "application": self.name})

    def wants_device(self, device: str) -> bool:
        return "__AST_DEVICE_STATE_ALL_TOPIC" in self.device_names or device in self.device_names


class AppRegistry:
    """All applications known to the simulated Asterisk."""

    def __init__(self) -> None:
        self.apps: dict[str, Application] = {}

    def get(self, name: str) -> Application | None:
        return self.apps.get(name)

    def ensure(self, name: str) -> Application:
        app = self.apps.get(name)
        if app is None:
            app = self.apps[name] = Application(name)
        return app

    def attach(self, socket: EventSocket, subscribe_all: bool) -> None:
        """Register a new socket; the older socket of each app gets ApplicationReplaced."""
        for name in socket.apps:
            app = self.ensure(name)
            old = app.socket
            if old is not None and not old.closed:
                old.send({**envelope("ApplicationReplaced", {}), "application": name})
                old.replaced.add(name)
            app.socket = socket
            app.subscribe_all = subscribe_all

    def detach(self, socket: EventSocket) -> None:
        for name in socket.apps:
            app = self.apps.get(name)
            if app is not None and app.socket is socket:
                app.socket = None

    def active(self, name: str) -> bool:
        app = self.apps.get(name)
        return app is not None and app.active

    def all_subscribers(self) -> list[Application]:
        return [app for app in self.apps.values() if app.subscribe_all]

    async def close_all(self) -> None:
        for app in self.apps.values():
            if app.socket is not None:
                with contextlib.suppress(Exception):
                    await app.socket.ws.close()

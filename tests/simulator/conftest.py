"""Fixtures: a started Simulator, an authenticated client session, event sockets."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from pbx_service.simulator import Simulator

TIME_SCALE = 0.05
AUTH_HEADERS = {"Authorization": aiohttp.encode_basic_auth("pbx-service", "secret")}


class EventSocket:
    """An events WebSocket that collects every event it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.events.append(orjson.loads(message.data))
                self._new.set()

    async def wait_for(self, event_type: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """The first event of a type (matching fields, dotted keys allowed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events:
                if event["type"] == event_type and all(
                    _dig(event, key) == value for key, value in match.items()
                ):
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                types = [e["type"] for e in self.events]
                raise AssertionError(f"no {event_type} {match}; got {types}")
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), remaining)
            except TimeoutError:
                pass

    def types(self, channel_id: str | None = None) -> list[str]:
        return [
            e["type"]
            for e in self.events
            if channel_id is None
            or _dig(e, "channel.id") == channel_id
            or _dig(e, "peer.id") == channel_id
        ]

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()


def _dig(event: dict[str, Any], key: str) -> Any:
    value: Any = event
    for part in key.replace("__", ".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@pytest.fixture
async def sim(tmp_path: pathlib.Path) -> AsyncIterator[Simulator]:
    prompts = tmp_path / "prompts"
    simulator = Simulator(
        sound_dirs=[("pbx", prompts)], recordings_dir=tmp_path / "recording", time_scale=TIME_SCALE
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH_HEADERS) as session:
        yield session


class Connect:
    def __init__(self, sim: Simulator, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.session = session
        self.sockets: list[EventSocket] = []

    async def __call__(self, app: str, *, subscribe_all: bool = False) -> EventSocket:
        url = f"{self.sim.base_url}/events?app={app}&api_key=pbx-service:secret"
        if subscribe_all:
            url += "&subscribeAll=true"
        ws = await self.session.ws_connect(url)
        socket = EventSocket(ws)
        self.sockets.append(socket)
        return socket


@pytest.fixture
async def connect(sim: Simulator, http: aiohttp.ClientSession) -> AsyncIterator[Connect]:
    helper = Connect(sim, http)
    yield helper
    for socket in helper.sockets:
        await socket.close()

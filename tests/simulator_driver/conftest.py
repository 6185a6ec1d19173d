"""Fixtures for the caller driver tests: an ARI server, a ``caller-sim`` driver and a tiny
stand-in for the service (app ``pbx-service``) that tests script per call.

The ARI server is a fresh simulator, or a real Asterisk configured with the traces' dialplan
when ``PBX_TEST_ARI_URL`` (plus ``PBX_TEST_ARI_USER``/``PBX_TEST_ARI_PASSWORD``) is set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from pbx_service.ari.client import AriClient
from pbx_service.ari.models import AriEvent
from pbx_service.simulator.driver import CallerDriver
from tests.contract.reference import reference_available
from tests.contract.schema import validate_logged_requests

USER = "ari"
PASSWORD = "ari-secret"


def _simulator_class() -> Any:
    for module in ("pbx_service.simulator.server", "pbx_service.simulator"):
        try:
            found = getattr(importlib.import_module(module), "Simulator", None)
        except ImportError:
            continue
        if found is not None:
            return found
    pytest.skip("pbx_service.simulator has no Simulator yet; the driver needs one to talk to")


@dataclasses.dataclass(frozen=True)
class AriTarget:
    """Where the tests talk ARI."""

    url: str
    username: str
    password: str
    real_asterisk: bool
    # The simulator's request log (empty against a real Asterisk).
    requests: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@pytest.fixture
async def ari(tmp_path: pathlib.Path) -> AsyncIterator[AriTarget]:
    url = os.environ.get("PBX_TEST_ARI_URL")
    if url:
        yield AriTarget(
            url,
            os.environ.get("PBX_TEST_ARI_USER", USER),
            os.environ.get("PBX_TEST_ARI_PASSWORD", PASSWORD),
            real_asterisk=True,
        )
        return
    cls = _simulator_class()
    params = inspect.signature(cls).parameters
    wanted: dict[str, Any] = {
        "username": USER,
        "password": PASSWORD,
        "time_scale": 1.0,
        "recordings_dir": tmp_path / "recordings",
    }
    sim = cls(**{k: v for k, v in wanted.items() if k in params})
    await sim.start("127.0.0.1", port=0)
    try:
        yield AriTarget(sim.base_url, USER, PASSWORD, real_asterisk=False, requests=sim.requests)
    finally:
        await sim.stop()
    # Every request the driver and the stand-in sent must fit the official ARI schema.
    if not reference_available():
        return
    problems = validate_logged_requests(sim.requests)
    assert not problems, "requests outside the ARI schema:\n" + "\n".join(problems)


class ServiceApp:
    """Plays ``pbx-service``: records its events; ``on_start`` runs per StasisStart."""

    def __init__(self, client: AriClient) -> None:
        self.client = client
        self.events: list[AriEvent] = []
        self.on_start: Callable[[AriEvent], Awaitable[None]] | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[BaseException] = []

    async def on_connected(self, reconnected: bool) -> None:
        pass

    async def on_disconnected(self) -> None:
        pass

    async def on_event(self, event: AriEvent) -> None:
        self.events.append(event)
        self._changed.set()
        if event.type == "StasisStart" and self.on_start is not None:
            task = asyncio.create_task(self._guard(self.on_start(event)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guard(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:  # surfaced by the tests through .errors
            self.errors.append(exc)

    async def wait_event(
        self, predicate: Callable[[AriEvent], bool], timeout: float = 5.0
    ) -> AriEvent:
        """The first recorded event matching ``predicate`` (waiting for it if needed)."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def of(self, channel_id: str, *types: str) -> list[AriEvent]:
        return [
            e for e in self.events if e.channel_id == channel_id and (not types or e.type in types)
        ]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def service(ari: AriTarget) -> AsyncIterator[ServiceApp]:
    async with AriClient(ari.url, ari.username, ari.password, "pbx-service") as client:
        app = ServiceApp(client)
        runner = asyncio.create_task(client.run(app))
        await client.wait_connected(5)
        try:
            yield app
        finally:
            await app.stop()
            await client.close()
            await runner


@pytest.fixture
async def driver(ari: AriTarget, service: ServiceApp) -> AsyncIterator[CallerDriver]:
    async with AriClient(ari.url, ari.username, ari.password, "caller-sim") as client:
        drv = CallerDriver(client)
        await drv.start()
        try:
            yield drv
        finally:
            await drv.stop()

"""A tiny ARI-shaped HTTP + WebSocket server on 127.0.0.1:0 for the client's integration tests.

It checks the Basic ``Authorization`` header like Asterisk, records every request with its raw
path, answers with configured ARI-shaped bodies, and can misbehave on purpose: close the events
socket at once, or play a dead peer (stop reading and answering PINGs while keeping TCP open).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from pbx_service.ari import AriClient, AriEvent

USER = "pbx-service"
PASSWORD = "s3cr3t-Pa55w0rd!"
APP = "pbx-service"
GOOD_AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@dataclass
class SeenRequest:
    method: str
    raw_path: str  # without the query string, exactly as sent (percent-encoding kept)
    query: dict[str, str]
    body: bytes
    authorization: str | None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, bytes, or None for an empty body
    content_type: str = "application/json"
    hang: bool = False  # never answer (until the server stops)


@dataclass
class FakeAri:
    url: str = ""
    requests: list[SeenRequest] = field(default_factory=list)
    replies: dict[tuple[str, str], Reply] = field(default_factory=dict)
    # Per connection, consumed in order: "normal", "close" (close right after the greeting
    # frames), "abort" (drop TCP without a CLOSE frame) or "dead" (never read, never answer
    # PINGs, keep TCP open).
    ws_modes: list[str] = field(default_factory=list)
    greeting: list[str | bytes] = field(default_factory=list)  # frames sent on every connect
    ping_reply: Reply = field(default_factory=lambda: Reply(200, {"ping": "pong"}))
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    connect_times: list[float] = field(default_factory=list)
    ws_queries: list[dict[str, str]] = field(default_factory=list)
    ws_auth: list[str | None] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def reply(self, method: str, raw_path: str, status: int = 200, body: Any = None) -> None:
        """Answer ``method raw_path`` (``/ari/...``, encoded) with ``status`` and ``body``."""
        self.replies[(method, raw_path)] = Reply(status, body)

    def last(self, method: str | None = None) -> SeenRequest:
        for r in reversed(self.requests):
            if method is None or r.method == method:
                return r
        raise AssertionError(f"no {method} request seen")

    async def send(self, frame: str | bytes) -> None:
        """Send a frame on the newest events socket."""
        ws = self.sockets[-1]
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)

    @web.middleware
    async def auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != GOOD_AUTH:
            return web.json_response({"message": "Authentication required"}, status=401)
        return await handler(request)

    async def events(self, request: web.Request) -> web.StreamResponse:
        if not request.query.get("app"):
            return web.json_response({"message": "Missing app"}, status=400)
        mode = self.ws_modes.pop(0) if self.ws_modes else "normal"
        ws = web.WebSocketResponse(autoping=mode != "dead", timeout=0.3)
        await ws.prepare(request)
        self.sockets.append(ws)
        self.connect_times.append(asyncio.get_running_loop().time())
        self.ws_queries.append(dict(request.query))
        self.ws_auth.append(request.headers.get("Authorization"))
        for frame in self.greeting:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        if mode == "close":
            await ws.close()
        elif mode == "abort":
            # No CLOSE frame: the TCP connection just dies, as when Asterisk crashes.
            assert request.transport is not None
            request.transport.abort()
        elif mode == "dead":
            await self.stop.wait()
        else:
            async for _ in ws:
                pass
        return ws

    async def rest(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        body = await request.read()
        self.requests.append(
            SeenRequest(
                request.method,
                raw_path,
                dict(request.query),
                body,
                request.headers.get("Authorization"),
            )
        )
        if raw_path == "/ari/asterisk/ping":
            reply = self.ping_reply
        else:
            default = Reply(204) if request.method != "GET" else Reply(404, {"message": "nope"})
            reply = self.replies.get((request.method, raw_path), default)
        if reply.hang:
            await self.stop.wait()
        if reply.body is None:
            return web.Response(status=reply.status)
        if isinstance(reply.body, bytes):
            return web.Response(status=reply.status, body=reply.body, content_type="audio/wav")
        return web.Response(
            status=reply.status, body=orjson.dumps(reply.body), content_type=reply.content_type
        )


@contextlib.asynccontextmanager
async def serve_fake_ari() -> AsyncIterator[FakeAri]:
    """Run a `FakeAri` on 127.0.0.1:0 for the block."""
    fake = FakeAri()
    app = web.Application(middlewares=[fake.auth])
    app.router.add_get("/ari/events", fake.events)
    app.router.add_route("*", "/ari/{tail:.*}", fake.rest)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}/ari"
    try:
        yield fake
    finally:
        fake.stop.set()
        for ws in fake.sockets:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(0.5):
                    await ws.close()
        await runner.cleanup()


def make_client(fake: FakeAri, password: str = PASSWORD, **kwargs: Any) -> AriClient:
    """A client with short timers so liveness and backoff show within a second."""
    options: dict[str, Any] = {
        "ping_interval": 0.2,
        "ping_timeout": 0.2,
        "reconnect_initial_delay": 0.05,
        "reconnect_max_delay": 0.4,
        "request_timeout": 2.0,
    }
    options.update(kwargs)
    return AriClient(fake.url, USER, password, APP, **options)


class RecordingListener:
    """An `AriListener` that keeps everything it is told."""

    def __init__(self) -> None:
        self.events: list[AriEvent] = []
        self.connects: list[bool] = []
        self.disconnects = 0
        self.hold_seconds = 0.0  # how long on_event blocks (a slow consumer)

    async def on_connected(self, reconnected: bool) -> None:
        self.connects.append(reconnected)

    async def on_event(self, event: AriEvent) -> None:
        self.events.append(event)
        if self.hold_seconds:
            await asyncio.sleep(self.hold_seconds)

    async def on_disconnected(self) -> None:
        self.disconnects += 1


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        # Polling keeps the tests free of hooks into the code under test.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(client: AriClient, listener: RecordingListener) -> AsyncIterator[AriClient]:
    """Open ``client``, run its socket supervisor, and close both on exit."""
    async with client:
        task = asyncio.create_task(client.run(listener), name="test-ari-run")
        try:
            yield client
        finally:
            await client.close()
            await asyncio.wait_for(task, 3)

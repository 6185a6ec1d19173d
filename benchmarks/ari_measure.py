"""Measures one ARI client in this process; run by `benchmarks/ari_client.py` as a subprocess,
in /work/venv for our client and the bare aiohttp loop, in a throwaway virtualenv for a peer.

Only the standard library is imported at module level, so the file runs in any of those
environments; each client's library is imported by its adapter. The last line on stdout is
``RESULT <json>``; everything else goes to stderr.

Timing: wall clock (``perf_counter``) and this process's CPU time (``process_time``, all
threads) over exactly the measured window: from asking the server to push N events until the
listener has seen the N-th, or from the first to the last REST call.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import importlib.metadata
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Every type the fake server sends (for libraries that register per type).
EVENT_TYPES = (
    "StasisStart",
    "ChannelStateChange",
    "PlaybackStarted",
    "ChannelDtmfReceived",
    "PlaybackFinished",
    "ChannelVarset",
    "ChannelHangupRequest",
    "StasisEnd",
    "ChannelDestroyed",
)
WARMUP_EVENTS = 2000
WARMUP_CALLS = 20


@dataclass(frozen=True)
class Settings:
    events_url: str  # http://127.0.0.1:port of the fake server (events + control)
    rest_url: str  # http://host:port of the server answering REST (fake or a real Asterisk)
    user: str
    password: str
    rest_user: str
    rest_password: str
    app: str
    events: int
    rest_calls: int
    runs: int


class Counter:
    """Counts handled events; resolves ``done`` at the target."""

    def __init__(self) -> None:
        self.n = 0
        self.target = -1
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def arm(self, target: int) -> None:
        self.n = 0
        self.target = target
        self.done = asyncio.get_running_loop().create_future()

    def hit(self, *_: Any) -> None:
        self.n += 1
        if self.n == self.target:
            self.done.set_result(None)


async def control_post(base: str, path: str) -> tuple[int, dict[str, Any]]:
    """A bare HTTP/1.1 POST to the fake server (stdlib only, one connection, tiny cost)."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else {}


async def push(cfg: Settings, n: int, seed: int) -> None:
    """Ask the fake server to write ``n`` events to our one socket (waits for it to be the
    only one: the previous run's socket may still be closing)."""
    deadline = time.monotonic() + 10
    while True:
        path = f"/_bench/push?n={n}&seed={seed}&expect=1"
        status, body = await control_post(cfg.events_url, path)
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"fake server has {body.get('sockets')} event sockets, not 1")
        await asyncio.sleep(0.02)


# -- adapters: each yields (counter, answer) with a connected client -------------------------

Answer = Callable[[str], Awaitable[Any]]


class Adapter:
    name = ""
    package = ""

    def events_client(self, cfg: Settings) -> contextlib.AbstractAsyncContextManager[Counter]:
        raise NotImplementedError

    def rest_client(self, cfg: Settings) -> contextlib.AbstractAsyncContextManager[Answer]:
        raise NotImplementedError

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return "?"


class Ours(Adapter):
    """`pbx_service.ari.AriClient`; ``dispatch`` feeds `EventDispatcher` queues like the daemon."""

    package = "pbx-service"

    def __init__(self, dispatch: bool) -> None:
        self.dispatch = dispatch
        self.name = "ours-dispatch" if dispatch else "ours"

    @contextlib.asynccontextmanager
    async def _client(
        self, url: str, user: str, password: str, app: str, listener: Any
    ) -> AsyncIterator[Any]:
        from pbx_service.ari import AriClient

        client = AriClient(url + "/ari", user, password, app)
        async with client:
            task = asyncio.create_task(client.run(listener)) if listener is not None else None
            try:
                if task is not None:
                    await client.wait_connected(10)
                yield client
            finally:
                await client.close()
                if task is not None:
                    await task

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        counter = Counter()
        listener = DispatchListener(counter) if self.dispatch else NoopListener(counter)
        async with self._client(cfg.events_url, cfg.user, cfg.password, cfg.app, listener):
            yield counter

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        from pbx_service.ari import AriNotFound

        async with self._client(cfg.rest_url, cfg.rest_user, cfg.rest_password, cfg.app, None) as c:
            rest = c.rest

            async def answer(cid: str) -> None:
                with contextlib.suppress(AriNotFound):  # a real Asterisk: no such channel
                    await rest.answer(cid)

            yield answer


class NoopListener:
    def __init__(self, counter: Counter) -> None:
        self.counter = counter

    async def on_connected(self, reconnected: bool) -> None:
        pass

    async def on_event(self, event: Any) -> None:
        self.counter.hit()

    async def on_disconnected(self) -> None:
        pass


class DispatchListener:
    """As the daemon's `CallApplication`: a StasisStart nobody owns starts a call task with its
    own queue (routed by channel id; playbacks reach it through their target); the task counts
    its events and unroutes at StasisEnd."""

    def __init__(self, counter: Counter) -> None:
        from pbx_service.ari import EventDispatcher

        self.counter = counter
        self.dispatcher = EventDispatcher(self._unrouted)
        self.tasks: set[asyncio.Task[None]] = set()

    async def on_connected(self, reconnected: bool) -> None:
        pass

    async def on_event(self, event: Any) -> None:
        await self.dispatcher.dispatch(event)

    async def on_disconnected(self) -> None:
        for t in self.tasks:
            t.cancel()

    def _unrouted(self, event: Any) -> None:
        if event.type == "StasisStart":
            channel_id = event.raw["channel"]["id"]
            queue = self.dispatcher.new_queue()
            self.dispatcher.route(channel_id, queue)
            queue.put_nowait(event)
            task = asyncio.create_task(self._call(channel_id, queue))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.counter.hit()  # ChannelDestroyed after StasisEnd: nobody owns it any more

    async def _call(self, channel_id: str, queue: asyncio.Queue[Any]) -> None:
        hit = self.counter.hit
        while True:
            event = await queue.get()
            hit()
            if event.type == "StasisEnd":
                self.dispatcher.unroute(channel_id)
                # Events queued behind StasisEnd (ChannelDestroyed) end with the call.
                while not queue.empty():
                    queue.get_nowait()
                    hit()
                return


class Bare(Adapter):
    """The transport's limit: aiohttp ws_connect + orjson + a dict of handlers, and one shared
    aiohttp session for REST."""

    name = "bare"
    package = "aiohttp"

    def _session(self, user: str, password: str) -> Any:
        import aiohttp

        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"})

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        import aiohttp
        import orjson

        counter = Counter()
        handlers: dict[str, Callable[[dict[str, Any]], None]] = dict.fromkeys(
            EVENT_TYPES, counter.hit
        )
        text = aiohttp.WSMsgType.TEXT

        async def read(ws: Any) -> None:
            async for msg in ws:
                if msg.type is text:
                    event = orjson.loads(msg.data)
                    handler = handlers.get(event["type"])
                    if handler is not None:
                        handler(event)

        async with self._session(cfg.user, cfg.password) as session:
            ws = await session.ws_connect(cfg.events_url + "/ari/events", params={"app": cfg.app})
            reader = asyncio.create_task(read(ws))
            try:
                yield counter
            finally:
                await ws.close()
                await reader

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        from yarl import URL

        async with self._session(cfg.rest_user, cfg.rest_password) as session:
            base = cfg.rest_url + "/ari/channels/"

            async def answer(cid: str) -> int:
                # encoded=True: the id is already URL-safe, so yarl skips re-quoting it.
                url = URL(base + cid + "/answer", encoded=True)
                async with session.post(url) as resp:
                    await resp.read()
                    status: int = resp.status
                    return status

            yield answer


class CallQueues:
    """The daemon's design on plain dicts: each event routed by its channel id (or its
    playback's target) into one `asyncio.Queue` per call, consumed by the call's own task."""

    def __init__(self, counter: Counter) -> None:
        self.hit = counter.hit
        self.routes: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    async def _call(self, key: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        hit = self.hit
        while True:
            event = await queue.get()
            hit()
            if event["type"] == "StasisEnd":
                del self.routes[key]
                while not queue.empty():
                    queue.get_nowait()
                    hit()
                return

    def route(self, event: dict[str, Any]) -> None:
        channel = event.get("channel")
        if channel is not None:
            key = channel["id"]
        else:
            key = event["playback"]["target_uri"].partition(":")[2]
        queue = self.routes.get(key)
        if queue is None:
            if event["type"] != "StasisStart":
                self.hit()
                return
            queue = self.routes[key] = asyncio.Queue(1000)
            task = asyncio.create_task(self._call(key, queue))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        queue.put_nowait(event)

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


class BareQueues(Bare):
    """`CallQueues` on the bare loop: the floor of the daemon's design. What `EventDispatcher`
    costs beyond asyncio's own queue and task switch shows against it."""

    name = "bare-queues"

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        import aiohttp
        import orjson

        counter = Counter()
        calls = CallQueues(counter)
        route = calls.route
        text = aiohttp.WSMsgType.TEXT

        async def read(ws: Any) -> None:
            async for msg in ws:
                if msg.type is text:
                    route(orjson.loads(msg.data))

        async with self._session(cfg.user, cfg.password) as session:
            ws = await session.ws_connect(cfg.events_url + "/ari/events", params={"app": cfg.app})
            reader = asyncio.create_task(read(ws))
            try:
                yield counter
            finally:
                await ws.close()
                await reader
                calls.close()

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        raise NotImplementedError("bare-queues measures events only")
        yield  # pragma: no cover


class AioAri(Adapter):
    name = "aioari"
    package = "aioari"

    @contextlib.asynccontextmanager
    async def _client(self, url: str, user: str, password: str) -> AsyncIterator[Any]:
        aioari = importlib.import_module("aioari")
        client = await aioari.connect(url + "/", user, password)
        try:
            yield client
        finally:
            await client.close()

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        counter = Counter()

        async def on_any(event: Any) -> None:
            counter.hit()

        async with self._client(cfg.events_url, cfg.user, cfg.password) as client:
            client.on_event("*", on_any)
            task = asyncio.create_task(client.run(apps=cfg.app))
            try:
                yield counter
            finally:
                for ws in list(client.websockets):
                    await ws.close()
                await task

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        async with self._client(cfg.rest_url, cfg.rest_user, cfg.rest_password) as client:
            channels = client.channels

            async def answer(cid: str) -> None:
                try:
                    await channels.answer(channelId=cid)
                except Exception as exc:  # a real Asterisk: 404, no such channel
                    if getattr(exc, "status", None) != 404:
                        raise

            yield answer


class AioAriQueues(AioAri):
    """aioari feeding the same per-call queues: compares with ours + `EventDispatcher`."""

    name = "aioari-queues"

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        counter = Counter()
        calls = CallQueues(counter)

        async def on_any(event: Any) -> None:
            calls.route(event)

        async with self._client(cfg.events_url, cfg.user, cfg.password) as client:
            client.on_event("*", on_any)
            task = asyncio.create_task(client.run(apps=cfg.app))
            try:
                yield counter
            finally:
                for ws in list(client.websockets):
                    await ws.close()
                await task
                calls.close()

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        raise NotImplementedError("aioari-queues measures events only")
        yield  # pragma: no cover


class AriClientPeer(Adapter):
    """PyPI ``ari-client``: httpx + websockets + pydantic; a task per event."""

    name = "ari-client"
    package = "ari-client"

    @contextlib.asynccontextmanager
    async def _client(self, url: str, user: str, password: str, app: str) -> AsyncIterator[Any]:
        import logging

        AriClient = importlib.import_module("ari_client").AriClient
        logging.getLogger().setLevel(logging.WARNING)  # it calls basicConfig(INFO) on import
        parts = urlsplit(url)
        client = AriClient(parts.hostname, parts.port, user, password)
        await client.connect(app)
        try:
            yield client
        finally:
            await client.disconnect()
            with contextlib.suppress(Exception):
                await client.ari.client.aclose()

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        counter = Counter()

        async def on_any(event: Any) -> None:
            counter.hit()

        async with self._client(cfg.events_url, cfg.user, cfg.password, cfg.app) as client:
            for event_type in EVENT_TYPES:
                client.on_event(event_type)(on_any)
            yield counter

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        async with self._client(cfg.rest_url, cfg.rest_user, cfg.rest_password, cfg.app) as c:
            ari = c.ari

            async def answer(cid: str) -> None:
                try:
                    await ari.answer_channel(cid)
                except Exception as exc:  # it raises a bare Exception naming the status
                    if " 404 " not in str(exc):
                        raise

            yield answer


class AsyncAri(Adapter):
    """asyncari (anyio + httpx); events read with its documented ``async for``."""

    name = "asyncari"
    package = "asyncari"

    @contextlib.asynccontextmanager
    async def events_client(self, cfg: Settings) -> AsyncIterator[Counter]:
        asyncari = importlib.import_module("asyncari")
        counter = Counter()
        async with asyncari.connect(cfg.events_url + "/", cfg.app, cfg.user, cfg.password) as c:
            events = c.__aiter__()

            async def read() -> None:
                async for _ in events:
                    counter.hit()

            reader = asyncio.create_task(read())
            try:
                yield counter
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    @contextlib.asynccontextmanager
    async def rest_client(self, cfg: Settings) -> AsyncIterator[Answer]:
        asyncari = importlib.import_module("asyncari")
        async with asyncari.connect(
            cfg.rest_url + "/", cfg.app, cfg.rest_user, cfg.rest_password
        ) as client:
            channels = client.channels

            async def answer(cid: str) -> None:
                try:
                    await channels.answer(channelId=cid)
                except Exception as exc:  # a real Asterisk: 404, no such channel
                    if "404" not in repr(exc) and "not found" not in str(exc).lower():
                        raise

            yield answer


ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "ours": lambda: Ours(dispatch=False),
    "ours-dispatch": lambda: Ours(dispatch=True),
    "bare": Bare,
    "bare-queues": BareQueues,
    "aioari": AioAri,
    "aioari-queues": AioAriQueues,
    "ari-client": AriClientPeer,
    "asyncari": AsyncAri,
}


# -- measurement ------------------------------------------------------------------------------


def seeds(run: int) -> tuple[int, int]:
    """Event seeds of run ``run``: (warm-up, timed). Every push has channels of its own
    (asyncari, for one, refuses a channel id another client instance has seen)."""
    return 2 * run + 1, 2 * run + 2


async def measure_events(adapter: Adapter, cfg: Settings, run: int) -> dict[str, float]:
    n = cfg.events
    async with adapter.events_client(cfg) as counter:
        # The first push warms the client up (first-use imports, caches); the second is timed.
        for size, seed in zip((min(WARMUP_EVENTS, n), n), seeds(run), strict=True):
            counter.arm(size)
            t0, c0 = time.perf_counter(), time.process_time()
            await push(cfg, size, seed)
            try:
                await asyncio.wait_for(asyncio.shield(counter.done), timeout=30 + size / 1000)
            except TimeoutError:
                raise RuntimeError(f"only {counter.n} of {size} events arrived") from None
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"events_s": n / wall, "cpu_us_event": cpu / n * 1e6}


async def _worker(ids: Iterator[str], answer: Answer) -> None:
    for cid in ids:  # shared iterator: the workers take the next id in turn
        await answer(cid)


async def measure_rest(adapter: Adapter, cfg: Settings) -> dict[str, float]:
    out: dict[str, float] = {}
    m = cfg.rest_calls
    async with adapter.rest_client(cfg) as answer:
        for inflight in (1, 20):
            ids = [f"1795611999.{i}" for i in range(m)]
            for cid in ids[:WARMUP_CALLS]:
                await answer(cid)
            it = iter(ids)
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(_worker(it, answer) for _ in range(inflight)))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[f"rest{inflight}_s"] = m / wall
            out[f"rest{inflight}_cpu_us"] = cpu / m * 1e6
    return out


AB_BLOCK = 100


async def measure_rest_ab(cfg: Settings) -> dict[str, float]:
    """Our REST against the bare shared session, paired in one process: blocks of
    ``AB_BLOCK`` calls alternate between the two (ABBA...), so load from elsewhere on the
    machine hits both alike. Separate processes minutes apart differ by up to 2x here.

    A second bare session ("bare2") takes its turn too: bare2/bare is an A/A test, the noise
    floor of the method on this machine."""
    out: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        sides = {
            "ours": await stack.enter_async_context(Ours(dispatch=False).rest_client(cfg)),
            "bare": await stack.enter_async_context(Bare().rest_client(cfg)),
            "bare2": await stack.enter_async_context(Bare().rest_client(cfg)),
        }
        for answer in sides.values():
            for i in range(WARMUP_CALLS):
                await answer(f"1795611998.{i}")
        for inflight in (1, 20):
            wall = dict.fromkeys(sides, 0.0)
            cpu = dict.fromkeys(sides, 0.0)
            calls = dict.fromkeys(sides, 0)
            ratios: list[float] = []
            ratios_aa: list[float] = []
            blocks = max(2, cfg.rest_calls // AB_BLOCK)
            for block in range(blocks):
                order = ["ours", "bare", "bare2"]
                # Rotate, then reverse every other round: each side runs in every position.
                order = order[block % 3 :] + order[: block % 3]
                if block % 2:
                    order.reverse()
                took = {}
                for side in order:
                    it = iter([f"1795611999.{block}{i}" for i in range(AB_BLOCK)])
                    t0, c0 = time.perf_counter(), time.process_time()
                    await asyncio.gather(*(_worker(it, sides[side]) for _ in range(inflight)))
                    took[side] = time.perf_counter() - t0
                    wall[side] += took[side]
                    cpu[side] += time.process_time() - c0
                    calls[side] += AB_BLOCK
                ratios.append(took["bare"] / took["ours"])
                ratios_aa.append(took["bare"] / took["bare2"])
            # The median of the pairs' ratios: one disturbed block cannot swing it.
            out[f"ratio_rest{inflight}"] = statistics.median(ratios)
            out[f"aa_ratio_rest{inflight}"] = statistics.median(ratios_aa)
            for side in sides:
                out[f"{side}_rest{inflight}_s"] = calls[side] / wall[side]
                out[f"{side}_rest{inflight}_cpu_us"] = cpu[side] / calls[side] * 1e6
    return out


async def run(kind: str, cfg: Settings, first_run: int = 0) -> dict[str, Any]:
    """``cfg.runs`` runs numbered from ``first_run`` (the number picks the events' seeds)."""
    if kind == "rest-ab":
        runs_ab = [await measure_rest_ab(cfg) for _ in range(cfg.runs)]
        median_ab = {k: statistics.median(r[k] for r in runs_ab) for k in runs_ab[0]}
        return {"kind": kind, "version": "-", "median": median_ab, "runs": runs_ab}
    adapter = ADAPTERS[kind]()
    runs: list[dict[str, float]] = []
    for i in range(first_run, first_run + cfg.runs):
        figures: dict[str, float] = {}
        if cfg.events:
            figures.update(await measure_events(adapter, cfg, i))
        if cfg.rest_calls:
            figures.update(await measure_rest(adapter, cfg))
        runs.append(figures)
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    return {"kind": kind, "version": adapter.version(), "median": median, "runs": runs}


def main() -> None:
    # This folder is on sys.path as the script's; its ari_client.py would shadow the peer
    # package of the same name.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    parser = argparse.ArgumentParser(description="measure one ARI client (internal)")
    parser.add_argument("kind", choices=[*sorted(ADAPTERS), "rest-ab"])
    parser.add_argument("--events-url", required=True)
    parser.add_argument("--rest-url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--rest-user", required=True)
    parser.add_argument("--rest-password", required=True)
    parser.add_argument("--app", default="pbx-service")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rest-calls", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--first-run", type=int, default=0, help="number of the first run")
    a = parser.parse_args()
    cfg = Settings(
        a.events_url.rstrip("/"),
        a.rest_url.rstrip("/"),
        a.user,
        a.password,
        a.rest_user,
        a.rest_password,
        a.app,
        a.events,
        a.rest_calls,
        a.runs,
    )
    try:
        result = asyncio.run(run(a.kind, cfg, a.first_run))
    except Exception as exc:
        traceback.print_exc()
        result = {"kind": a.kind, "error": f"{type(exc).__name__}: {exc}"}
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

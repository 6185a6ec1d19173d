"""A minimal ARI server for the client benchmark (`benchmarks/ari_client.py`), run as its own
process so its CPU never counts against the client under test.

It speaks just enough ARI for our client and the peers (aioari, ari-client, asyncari):

* ``GET /ari/api-docs/{name}.json`` — the official Swagger files, read at request time from the
  ARI reference folder (never copied into the repository), ``basePath`` rewritten to this
  server as Asterisk does;
* ``GET /ari/events`` — the events WebSocket (Basic auth or ``api_key``);
* ``POST /ari/channels/{id}/answer`` → 204, ``GET /ari/asterisk/ping``;
* ``POST /_bench/push?n=N&seed=S`` — writes N generated ARI events to every open events
  socket (``/_bench/prepare`` with the same query builds them ahead of time).

The events are pre-encoded as WebSocket frames and handed to the transport in one write, so
the server costs almost nothing per event and the client's speed is what gets measured.

Run: ``python benchmarks/ari_fake_server.py --api-docs DIR``; it prints ``PORT <n>`` once
listening and serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web

APP = "pbx-service"
_BASE_PATH = re.compile(rb'"basePath"\s*:\s*"[^"]*"')


def ws_frame(payload: bytes) -> bytes:
    """One unmasked server-to-client WebSocket TEXT frame (FIN set)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


# -- event generation -------------------------------------------------------------------------

_NAMES = ("Maria Ivanova", "Ivan Petrov", "Anna", "", "John Smith", "Olga K")
_DIDS = ("74951234567", "78001002030", "200", "100")


def _channel(cid: str, n: int, state: str, did: str, caller: str, number: str) -> dict[str, Any]:
    return {
        "id": cid,
        "name": f"PJSIP/trunk-{n:08x}",
        "state": state,
        "protocol_id": f"{n * 2654435761 % 2**64:016x}@10.0.0.5",
        "caller": {"name": caller, "number": number},
        "connected": {"name": caller, "number": number},
        "accountcode": "",
        "dialplan": {
            "context": "from-trunk",
            "exten": did,
            "priority": 3,
            "app_name": "Stasis",
            "app_data": f"{APP},did={did}",
        },
        "creationtime": "2026-11-25T12:55:34.644+0000",
        "language": "en",
        "channelvars": {"DID": did, "CALLERID(name)": caller},
    }


def _call_events(n: int, seed: int, rng: random.Random) -> list[dict[str, Any]]:
    """The events of one IVR call, shaped like Asterisk 22's (traces/*.jsonl)."""
    cid = f"17956{seed % 100:02d}{n:06d}.{n % 1000}"
    did = rng.choice(_DIDS)
    caller = rng.choice(_NAMES)
    number = f"+7916{rng.randrange(10**7):07d}"
    ts = "2026-11-25T12:55:34.644+0000"
    common = {"asterisk_id": "02:fc:00:00:00:01", "application": APP}

    def chan(state: str) -> dict[str, Any]:
        return _channel(cid, n, state, did, caller, number)

    pb = f"pb-{seed}-{n}"
    playback = {
        "id": pb,
        "media_uri": "sound:ivr/welcome",
        "target_uri": f"channel:{cid}",
        "language": "en",
        "state": "playing",
    }
    events: list[dict[str, Any]] = [
        {"type": "StasisStart", "timestamp": ts, "args": [f"did={did}"], "channel": chan("Ring")},
        {"type": "ChannelStateChange", "timestamp": ts, "channel": chan("Up")},
        {"type": "PlaybackStarted", "timestamp": ts, "playback": playback},
    ]
    for digit in rng.choice(("1", "12", "201")):
        events.append(
            {
                "type": "ChannelDtmfReceived",
                "timestamp": ts,
                "digit": digit,
                "duration_ms": 100,
                "channel": chan("Up"),
            }
        )
    events += [
        {"type": "PlaybackFinished", "timestamp": ts, "playback": {**playback, "state": "done"}},
        {
            "type": "ChannelVarset",
            "timestamp": ts,
            "variable": "PBX_MENU",
            "value": "sales",
            "channel": chan("Up"),
        },
        {"type": "ChannelHangupRequest", "timestamp": ts, "cause": 16, "channel": chan("Up")},
        {"type": "StasisEnd", "timestamp": ts, "channel": chan("Up")},
        {
            "type": "ChannelDestroyed",
            "timestamp": ts,
            "cause": 16,
            "cause_txt": "Normal Clearing",
            "channel": chan("Up"),
        },
    ]
    for ev in events:
        ev.update(common)
    return events


def generate_events(count: int, concurrent_calls: int = 200, seed: int = 1) -> list[bytes]:
    """``count`` compact JSON events from ``concurrent_calls`` interleaved calls.

    Each call runs StasisStart ... StasisEnd, ChannelDestroyed; a new call starts when one ends.
    The tail is cut at ``count``, so the last calls may be unfinished. Channel ids depend on
    ``seed``: pushes with different seeds never share a channel.
    """
    rng = random.Random(seed)
    calls: list[list[dict[str, Any]]] = []
    next_call = 0
    out: list[bytes] = []
    while len(out) < count:
        while len(calls) < concurrent_calls:
            calls.append(_call_events(next_call, seed, rng))
            next_call += 1
        i = rng.randrange(len(calls))
        out.append(orjson.dumps(calls[i].pop(0)))
        if not calls[i]:
            calls.pop(i)
    return out


# -- the server ---------------------------------------------------------------------------------


@dataclass
class BenchServer:
    api_docs: Path
    user: str
    password: str
    sockets: set[tuple[web.WebSocketResponse, asyncio.Transport]] = field(default_factory=set)
    blobs: dict[tuple[int, int], tuple[bytes, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        self._basic = f"Basic {token}"
        self._api_key = f"{self.user}:{self.password}"

    def authorised(self, request: web.Request) -> bool:
        return (
            request.headers.get("Authorization") == self._basic
            or request.query.get("api_key") == self._api_key
        )

    def blob(self, n: int, seed: int) -> tuple[bytes, int]:
        """N events as one buffer of WebSocket frames, and the JSON bytes they carry."""
        key = (n, seed)
        if key not in self.blobs:
            events = generate_events(n, seed=seed)
            self.blobs[key] = (b"".join(ws_frame(e) for e in events), sum(map(len, events)))
        return self.blobs[key]

    @web.middleware
    async def auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/ari/") and not request.path.startswith("/ari/api-docs/"):
            if not self.authorised(request):
                return web.json_response({"message": "Authentication required"}, status=401)
        result: web.StreamResponse = await handler(request)
        return result

    async def api_docs_file(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        path = self.api_docs / name
        if "/" in name or not name.endswith(".json") or not path.is_file():
            return web.json_response({"message": "Not found"}, status=404)
        # Asterisk rewrites basePath to the address the client used; the peers build every
        # URL from it.
        base = f'"basePath":"http://{request.host}/ari"'.encode()
        body = _BASE_PATH.sub(base, path.read_bytes())
        return web.Response(body=body, content_type="application/json")

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        entry = (ws, transport)
        self.sockets.add(entry)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.sockets.discard(entry)
        return ws

    async def answer(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"asterisk_id": "02:fc:00:00:00:01", "ping": "pong", "timestamp": "x"}
        )

    async def push(self, request: web.Request) -> web.Response:
        n = int(request.query["n"])
        expect = int(request.query.get("expect", "0"))
        if expect and len(self.sockets) != expect:
            # A socket of the previous run still closing, or the new one not registered yet.
            return web.json_response({"sockets": len(self.sockets)}, status=409)
        blob, payload = self.blob(n, int(request.query.get("seed", "1")))
        for _, transport in list(self.sockets):
            # The transport buffers what the socket cannot take yet: one write, no per-frame cost.
            transport.write(blob)
        return web.json_response({"sockets": len(self.sockets), "events": n, "json_bytes": payload})

    async def prepare(self, request: web.Request) -> web.Response:
        self.blob(int(request.query["n"]), int(request.query.get("seed", "1")))
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.auth])
        app.router.add_get("/ari/api-docs/{name}", self.api_docs_file)
        app.router.add_get("/ari/events", self.events)
        app.router.add_post("/ari/channels/{id}/answer", self.answer)
        app.router.add_get("/ari/asterisk/ping", self.ping)
        app.router.add_post("/_bench/push", self.push)
        app.router.add_post("/_bench/prepare", self.prepare)
        return app


async def serve(api_docs: Path, user: str, password: str, port: int) -> None:
    server = BenchServer(api_docs, user, password)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-docs", type=Path, required=True, help="ARI api-docs folder")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-secret")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if not (args.api_docs / "resources.json").is_file():
        sys.exit(f"{args.api_docs} has no resources.json")
    try:
        asyncio.run(serve(args.api_docs, args.user, args.password, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""The replay harness itself, against an "echo" server that plays a trace back.

The echo server answers each REST request with the response recorded in the trace and sends
the trace's events on the right sockets at (scaled) trace time, never before the requests that
preceded them in the trace. Replaying a trace against its own echo must give no difference;
a server that deviates (drops an event, changes a status, renames a field) must be caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import pathlib
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from tests.contract import harness
from tests.contract.reference import require_reference

SCALE = 0.05
Mutator = Callable[[harness.TraceLine], harness.TraceLine | None]


_CHANNEL = re.compile(r"(?<![\w.-])(\d{9,11})\.(\d+)(?![\w.-])")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def shift_ids(text: str) -> str:
    """Make the generated ids differ from the trace's, as a real second run would."""
    text = _CHANNEL.sub(lambda m: f"{int(m.group(1)) + 7}.{int(m.group(2)) + 1000}", text)
    return _UUID.sub(lambda m: m.group(0)[::-1], text)


class EchoServer:
    """Serves one trace's recorded REST responses and events.

    With ``shift`` the generated ids it sends differ from the trace's (see `shift_ids`), and
    each request's path and query must use the shifted ids: mismatches go to ``wrong_requests``.
    """

    def __init__(
        self, trace: harness.Trace, mutate: Mutator | None = None, shift: bool = False
    ) -> None:
        self.shift = shift
        self.wrong_requests: list[str] = []
        lines: list[harness.TraceLine] = []
        for line in trace.lines:
            if harness._segment_skipped(trace.prefix, line.seq):
                continue
            if mutate is not None:
                changed = mutate(copy.deepcopy(line))
                if changed is None:
                    continue
                line = changed
            lines.append(line)
        self.rest = [x for x in lines if x.kind == "rest"]
        self.connects = [x for x in lines if x.kind == "ws_connect"]
        self.events = sorted((x for x in lines if x.kind == "ws_event"), key=lambda x: x.seq)
        first_close: dict[str, int] = {}
        for x in lines:
            if x.kind in ("ws_closed", "ws_close_requested"):
                first_close.setdefault(str(x.data["ws"]), x.seq)
        self.close_seq = first_close
        self.done: set[int] = set()
        self.action_seqs = sorted(
            [x.seq for x in self.rest] + [x.seq for x in self.connects] + list(first_close.values())
        )
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.progress = asyncio.Event()
        self.t0 = time.monotonic()
        self.runner: web.AppRunner | None = None
        self.pump: asyncio.Task[None] | None = None
        self.origin = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/ari/events", self._events)
        app.router.add_route("*", "/ari/{tail:.*}", self._rest)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.origin = f"http://127.0.0.1:{port}"
        self.t0 = time.monotonic()
        self.pump = asyncio.create_task(self._pump())

    async def stop(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pump
        for ws in self.sockets.values():
            await ws.close()
        if self.runner is not None:
            await self.runner.cleanup()

    def _mark(self, seq: int) -> None:
        self.done.add(seq)
        self.progress.set()

    async def _pump(self) -> None:
        for line in self.events:
            due = self.t0 + SCALE * line.t_rel
            while any(s < line.seq and s not in self.done for s in self.action_seqs):
                self.progress.clear()
                await self.progress.wait()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ws = self.sockets.get(str(line.data["ws"]))
            if ws is not None and not ws.closed:
                await ws.send_str(self._out(json.dumps(line.data["event"])))

    def _out(self, text: str) -> str:
        return shift_ids(text) if self.shift else text

    async def _events(self, request: web.Request) -> web.StreamResponse:
        line = self.connects.pop(0)
        self._mark(line.seq)
        if not line.data.get("ok", True):
            return web.json_response({"message": "refused"}, status=int(line.data["status"]))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        label = str(line.data["ws"])
        self.sockets[label] = ws
        async for _ in ws:
            pass
        if label in self.close_seq:
            self._mark(self.close_seq[label])
        return ws

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        line = self.rest.pop(0)
        d = line.data
        self._mark(line.seq)
        want = self._out(str(d["path"]))
        if request.raw_path.split("?")[0] != want:
            self.wrong_requests.append(f"seq {line.seq}: {request.raw_path} != {want}")
        want_query = {k: self._out(str(v)) for k, v in (d.get("query") or {}).items()}
        if dict(request.query) != want_query:
            self.wrong_requests.append(f"seq {line.seq}: {dict(request.query)} != {want_query}")
        status = int(d["status"])
        if "response_binary" in d:
            return web.Response(status=status, body=b"RIFF", content_type=d["content_type"])
        if "response_text" in d:
            ct = str(d.get("content_type") or "text/plain").split(";")[0]
            return web.Response(status=status, text=str(d["response_text"]), content_type=ct)
        if d.get("response") is None:
            return web.Response(status=status)
        return web.Response(
            status=status,
            text=self._out(json.dumps(d["response"])),
            content_type="application/json",
        )


@contextlib.asynccontextmanager
async def echo(
    trace: harness.Trace, mutate: Mutator | None = None, shift: bool = False
) -> AsyncIterator[EchoServer]:
    server = EchoServer(trace, mutate, shift)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _trace(prefix: str) -> harness.Trace:
    ref = require_reference()
    path = next(p for p in harness.trace_files(ref / "traces") if p.name.startswith(prefix))
    return harness.Trace.load(path)


async def _replay(
    trace: harness.Trace, mutate: Mutator | None = None, shift: bool = False
) -> harness.Replay:
    async with echo(trace, mutate, shift) as server:
        replay = harness.Replay(trace, server.origin, time_scale=SCALE, grace=0.5)
        await replay.run()
    assert server.wrong_requests == []
    return replay


@pytest.mark.parametrize("prefix", ["01", "02", "06", "10"])
async def test_trace_replayed_against_itself_has_no_difference(prefix: str) -> None:
    trace = _trace(prefix)
    replay = await _replay(trace)
    assert replay.differences == [], harness.render(replay.differences, replay.info)


@pytest.mark.parametrize("prefix", ["01", "03", "07", "16"])
async def test_generated_ids_are_mapped(prefix: str) -> None:
    """Ids the server makes up differ per run; later requests must use the server's ids."""
    trace = _trace(prefix)
    replay = await _replay(trace, shift=True)
    assert replay.differences == [], harness.render(replay.differences, replay.info)
    assert replay.ids.forward, "no generated id was learned"
    assert all(k != v for k, v in replay.ids.forward.items())


def _drop_event(seq: int) -> Mutator:
    return lambda line: None if line.seq == seq else line


def _change_status(seq: int, status: int, response: Any) -> Mutator:
    def mutate(line: harness.TraceLine) -> harness.TraceLine:
        if line.seq == seq:
            line.data["status"] = status
            line.data["response"] = response
        return line

    return mutate


def _rename_field(seq: int, old: str, new: str) -> Mutator:
    def mutate(line: harness.TraceLine) -> harness.TraceLine:
        if line.seq == seq:
            event = line.data["event"]
            event[new] = event.pop(old)
        return line

    return mutate


def _change_value(seq: int, key: str, value: Any) -> Mutator:
    def mutate(line: harness.TraceLine) -> harness.TraceLine:
        if line.seq == seq:
            line.data["event"][key] = value
        return line

    return mutate


async def test_missing_event_is_reported() -> None:
    # 01 seq 75: pbx-service's StasisEnd after the app hangup.
    replay = await _replay(_trace("01"), _drop_event(75))
    text = harness.render(replay.differences)
    assert any("StasisEnd" in d.expected and d.seq == 75 for d in replay.differences), text


async def test_wrong_status_and_error_body_are_reported() -> None:
    # 01 seq 23: GET unset variable -> 404 "Provided variable was not found".
    replay = await _replay(_trace("01"), _change_status(23, 500, {"message": "boom"}))
    assert [d.seq for d in replay.differences] == [23], harness.render(replay.differences)
    assert "HTTP 404" in replay.differences[0].expected
    assert "HTTP 500" in replay.differences[0].got


async def test_renamed_field_and_changed_cause_are_reported() -> None:
    # 01 seq 74: pbx-service ChannelHangupRequest {cause: 32, soft: true}.
    replay = await _replay(_trace("01"), _rename_field(74, "soft", "gentle"))
    assert any(d.seq == 74 and "soft" in d.expected for d in replay.differences), harness.render(
        replay.differences
    )
    replay = await _replay(_trace("01"), _change_value(74, "cause", 16))
    assert any(d.seq == 74 and d.where.endswith("cause") for d in replay.differences), (
        harness.render(replay.differences)
    )


def test_id_map_rewrites_only_whole_generated_ids() -> None:
    ids = harness.IdMap()
    ids.learn("1795611322.117", "1800000000.5")
    ids.learn("pb-fixed", "other")  # client-chosen ids are never mapped
    assert ids.rewrite("/ari/channels/1795611322.117/play") == "/ari/channels/1800000000.5/play"
    assert ids.rewrite("channel:1795611322.1170") == "channel:1795611322.1170"
    assert ids.rewrite("pb-fixed") == "pb-fixed"
    assert ids.unmapped("/ari/channels/1795611322.118") == ["1795611322.118"]
    assert not ids.compatible("1795611322.117", "1800000000.6")
    assert ids.compatible("c16-01", "C16-01")


def test_channel_names_lose_their_counter() -> None:
    assert harness.normalize_channel_name("Local/100@from-trunk-0000003b;2") == (
        "Local/100@from-trunk-<n>;2"
    )
    assert harness.normalize_channel_name("Announcer/ARI_MOH-000000a4;2") == (
        "Announcer/ARI_MOH-<n>;2"
    )


def test_compare_json_reports_shape_and_behaviour_values() -> None:
    ids = harness.IdMap()
    expected = {"state": "Up", "caller": {"name": "A", "number": "1"}, "n": 1}
    assert harness.compare_json(expected, copy.deepcopy(expected), ids) == []
    got = {"state": "Ring", "caller": {"name": "B"}, "n": "1", "x": 0}
    found = {path for path, _, _ in harness.compare_json(expected, got, ids)}
    assert found == {"state", "caller", "n", "(top)"}


def test_trace_prefixes(tmp_path: pathlib.Path) -> None:
    assert harness.trace_prefix(pathlib.Path("01_basic_call_playback.jsonl")) == "01"
    assert harness.trace_prefix(pathlib.Path("extra_native_cdr_records.jsonl")) == (
        "extra_native_cdr_records"
    )


def _swap(first: int, second: int) -> Mutator:
    def mutate(line: harness.TraceLine) -> harness.TraceLine:
        if line.seq in (first, second):
            line.seq = second if line.seq == first else first
        return line

    return mutate


async def test_events_out_of_order_are_reported() -> None:
    # 01 seq 74/75: pbx-service ChannelHangupRequest then StasisEnd of the same channel.
    replay = await _replay(_trace("01"), _swap(74, 75))
    assert [(d.seq, d.where) for d in replay.differences] == [
        (75, "events on pbx-service: order")
    ], harness.render(replay.differences)

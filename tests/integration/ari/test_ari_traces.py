"""The client's parsing against everything a real Asterisk 22 sent while the traces were recorded.

Reads ../shared/ari-reference/traces at test time (never copied into the project) and skips
when that folder is absent.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pbx_service.ari import (
    AriEvent,
    Bridge,
    Channel,
    EventDispatcher,
    LiveRecording,
    Playback,
    parse_event,
)
from pbx_service.ari.errors import http_error
from pbx_service.ari.rest import _error_message

TRACES = pathlib.Path(__file__).resolve().parents[3].parent / "shared" / "ari-reference" / "traces"

pytestmark = pytest.mark.skipif(
    not TRACES.is_dir(),
    reason=f"ARI reference traces not found at {TRACES} (checkout ../shared/ari-reference)",
)


def trace_lines(kind: str) -> Iterator[dict[str, Any]]:
    for path in sorted(TRACES.glob("*.jsonl")):
        with path.open("rb") as f:
            for line in f:
                rec = orjson.loads(line)
                if rec.get("kind") == kind:
                    yield rec


def touch_everything(ev: AriEvent) -> None:
    for name in (
        "application",
        "timestamp",
        "digit",
        "duration_ms",
        "args",
        "cause",
        "cause_txt",
        "dialstatus",
        "soft",
        "variable",
        "value",
        "eventname",
        "userevent",
        "channel",
        "peer",
        "caller",
        "bridge",
        "playback",
        "recording",
        "device_state",
        "endpoint",
    ):
        getattr(ev, name)


def test_every_recorded_event_parses_and_routes() -> None:
    types: set[str] = set()
    count = 0
    for rec in trace_lines("ws_event"):
        raw = rec["event"]
        ev = parse_event(orjson.dumps(raw))
        touch_everything(ev)
        count += 1
        types.add(ev.type)
        assert ev.type == raw["type"]
        keys = EventDispatcher.keys(ev)
        if isinstance(raw.get("channel"), dict):
            ch = ev.channel
            assert ch is not None and ch.id == raw["channel"]["id"]
            assert ch.caller.number == raw["channel"]["caller"]["number"]
            assert dict(ch.channelvars) == raw["channel"].get("channelvars", {})
            assert keys[0] == ch.id
        if isinstance(raw.get("peer"), dict):
            assert ev.peer is not None and ev.peer.id in keys
        if isinstance(raw.get("bridge"), dict):
            assert ev.bridge is not None and ev.bridge.channels == tuple(raw["bridge"]["channels"])
            assert ev.bridge.id in keys
        for field in ("playback", "recording"):
            obj = raw.get(field)
            if isinstance(obj, dict):
                assert obj["target_uri"].split(":", 1)[1] in keys
        if ev.type == "ChannelDtmfReceived":
            assert ev.digit and ev.duration_ms
        if ev.type == "StasisStart":
            assert ev.args == tuple(raw.get("args", []))
        if ev.type == "DeviceStateChanged":
            assert ev.device_state is not None and ev.device_state.state
    assert count > 1000
    assert {
        "StasisStart",
        "StasisEnd",
        "Dial",
        "ChannelDtmfReceived",
        "PlaybackFinished",
        "RecordingFinished",
        "RecordingFailed",
        "ApplicationReplaced",
        "DeviceStateChanged",
    } <= types


def test_recorded_rest_bodies_build_models() -> None:
    built = {"channel": 0, "bridge": 0, "playback": 0, "recording": 0}
    for rec in trace_lines("rest"):
        body = rec.get("response")
        status = rec["status"]
        path: str = rec["path"]
        if not isinstance(body, dict) or status >= 300:
            continue
        if rec["method"] == "POST" and path in ("/ari/channels", "/ari/channels/create"):
            ch = Channel.from_json(body)
            assert ch.id == body["id"] and ch.dialplan.context == body["dialplan"]["context"]
            built["channel"] += 1
        elif rec["method"] == "POST" and path == "/ari/bridges":
            br = Bridge.from_json(body)
            assert br.id == body["id"] and br.bridge_class == "stasis"
            built["bridge"] += 1
        elif rec["method"] == "POST" and "/play" in path and status == 201:
            pb = Playback.from_json(body)
            assert pb.id == body["id"] and pb.state == body["state"]
            built["playback"] += 1
        elif rec["method"] == "POST" and path.endswith("/record") and status == 201:
            lr = LiveRecording.from_json(body)
            assert lr.name == body["name"] and lr.state == body["state"]
            built["recording"] += 1
    assert all(n > 0 for n in built.values()), built


def test_recorded_error_bodies_give_a_message_and_the_channel_gone_race() -> None:
    gone: list[tuple[int, str]] = []
    for rec in trace_lines("rest"):
        status = rec["status"]
        if status < 400:
            continue
        body = orjson.dumps(rec["response"]) if rec.get("response") is not None else b""
        message = _error_message(body, rec.get("reason"))
        assert message, rec
        err = http_error(status, message, rec["method"], rec["path"])
        assert err.status == status
        if err.means_channel_gone:
            gone.append((status, message))
    assert {(404, "Channel not found"), (409, "Channel not in Stasis application")} <= set(gone)
    assert all(m in ("Channel not found", "Channel not in Stasis application") for _, m in gone)

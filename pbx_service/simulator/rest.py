"""ARI REST resources: one function per (method, path), Asterisk's status codes and bodies."""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pbx_service.simulator import origination
from pbx_service.simulator.bridges import BRIDGE_TYPES, Bridge
from pbx_service.simulator.channels import (
    Channel,
    ChannelGone,
    Party,
    parse_callerid,
    suppress_gone,
)
from pbx_service.simulator.engine import AriError, Engine
from pbx_service.simulator.events import ASTERISK_ID, REASON_CAUSE, envelope, timestamp
from pbx_service.simulator.media import (
    CONTENT_TYPES,
    RECORDING_FORMATS,
    LiveRecording,
    Playback,
    find_stored,
    inside,
    list_stored,
    recording_path,
)
from pbx_service.simulator.recorder import (
    check_new_recording,
    finish_recording,
    mark,
    start_recording,
)

Result = tuple[int, Any] | web.StreamResponse


@dataclasses.dataclass
class Call:
    """One REST request as the handlers see it."""

    engine: Engine
    params: dict[str, str]
    body: Any
    args: dict[str, str]

    def param(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        if value is None:
            return default
        return value.lower() in ("true", "yes", "1")

    def int_param(self, name: str, default: int) -> int:
        value = self.params.get(name, "")
        try:
            return int(value)
        except ValueError:
            return default


Handler = Callable[[Call], Awaitable[Result]]
ROUTES: list[tuple[str, str, Handler]] = []


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES.append((method, path, handler))
        return handler

    return register


async def _blocking(channel: Channel, action: Callable[[], None]) -> None:
    """Run through the channel's control queue and wait (behaviour 7)."""

    async def run() -> None:
        action()

    try:
        await channel.control.enqueue(run)
    except ChannelGone as exc:
        raise AriError(404, "Channel not found") from exc


def _queued(channel: Channel, run: Callable[[], Awaitable[None]]) -> None:
    """Queue behind a playback without waiting (dtmf, record, play, continue)."""
    suppress_gone(channel.control.enqueue(run))


# -- asterisk -----------------------------------------------------------------------------
@route("GET", "asterisk/info")
async def asterisk_info(call: Call) -> Result:
    engine = call.engine
    info = {
        "build": {
            "os": "Linux",
            "kernel": "6.1.0-sim",
            "machine": "x86_64",
            "options": "OPTIONAL_API",
            "date": timestamp(engine.started)[:10],
            "user": "root",
        },
        "system": {"version": "22.10.1", "entity_id": ASTERISK_ID},
        "config": {"name": "", "default_language": "en", "setid": {"user": "", "group": ""}},
        "status": {
            "startup_time": timestamp(engine.started),
            "last_reload_time": timestamp(engine.started),
        },
    }
    only = [part for part in call.param("only").split(",") if part]
    if only:
        info = {key: value for key, value in info.items() if key in only}
    return 200, info


@route("GET", "asterisk/ping")
async def asterisk_ping(call: Call) -> Result:
    return 200, {"ping": "pong", "timestamp": timestamp(), "asterisk_id": ASTERISK_ID}


@route("GET", "asterisk/variable")
async def asterisk_get_variable(call: Call) -> Result:
    name = call.param("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    return 200, {"value": call.engine.global_vars.get(name, "")}


@route("POST", "asterisk/variable")
async def asterisk_set_variable(call: Call) -> Result:
    name = call.param("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    call.engine.global_vars[name] = call.param("value")
    return 204, None


# -- applications --------------------------------------------------------------------------
def _app_json(engine: Engine, name: str) -> dict[str, Any]:
    app = engine.apps.get(name)
    assert app is not None
    channel_ids = [c.id for c in engine.channels if name in c.subscribers]
    bridge_ids = [b.id for b in engine.bridges.values() if name in b.apps]
    endpoint_ids = sorted(app.endpoint_ids)
    device_names = sorted(app.device_names)
    if app.subscribe_all:
        # The all-topics replace the individual subscriptions in the listing (trace 10).
        channel_ids = ["__AST_CHANNEL_ALL_TOPIC"]
        bridge_ids = ["__AST_BRIDGE_ALL_TOPIC"]
        endpoint_ids = ["__AST_ENDPOINT_ALL_TOPIC"]
        device_names = ["__AST_DEVICE_STATE_ALL_TOPIC"]
    return {
        "name": name,
        "channel_ids": channel_ids,
        "bridge_ids": bridge_ids,
        "endpoint_ids": endpoint_ids,
        "device_names": device_names,
        "events_allowed": app.events_allowed,
        "events_disallowed": app.events_disallowed,
    }


@route("GET", "applications")
async def applications_list(call: Call) -> Result:
    return 200, [_app_json(call.engine, name) for name in sorted(call.engine.apps.apps)]


def _app_or_404(call: Call) -> str:
    name = call.args["applicationName"]
    if call.engine.apps.get(name) is None:
        raise AriError(404, "Application not found")
    return name


@route("GET", "applications/{applicationName}")
async def applications_get(call: Call) -> Result:
    return 200, _app_json(call.engine, _app_or_404(call))


def _event_sources(call: Call) -> list[tuple[str, str]]:
    raw = call.params.get("eventSource")
    if raw is None or raw == "":
        raise AriError(400, "Missing parameter eventSource")
    sources = []
    for source in raw.split(","):
        scheme, sep, rest = source.partition(":")
        if not sep or scheme not in ("channel", "bridge", "endpoint", "deviceState"):
            raise AriError(400, "Invalid event source URI scheme")
        sources.append((scheme, rest))
    return sources


@route("POST", "applications/{applicationName}/subscription")
async def applications_subscribe(call: Call) -> Result:
    name = _app_or_404(call)
    engine = call.engine
    app = engine.apps.ensure(name)
    for scheme, rest in _event_sources(call):
        if scheme == "channel":
            channel = engine.channels.get(rest)
            if channel is None:
                raise AriError(422, "Event source does not exist")
            engine.subscribe(channel, name, persistent=True)
        elif scheme == "bridge":
            bridge = engine.bridges.get(rest)
            if bridge is None:
                raise AriError(422, "Event source does not exist")
            bridge.subscribe(name)
        elif scheme == "endpoint":
            app.endpoint_ids.add(rest)
        else:
            device = rest or "__AST_DEVICE_STATE_ALL_TOPIC"
            if device not in app.device_names:
                app.device_names.append(device)
    return 200, _app_json(engine, name)


@route("DELETE", "applications/{applicationName}/subscription")
async def applications_unsubscribe(call: Call) -> Result:
    name = _app_or_404(call)
    engine = call.engine
    app = engine.apps.ensure(name)
    for scheme, rest in _event_sources(call):
        if scheme == "channel":
            channel = engine.channels.get(rest)
            if channel is None or name not in channel.subscribers:
                raise AriError(422, "Event source was not subscribed to")
            del channel.subscribers[name]
        elif scheme == "bridge":
            bridge = engine.bridges.get(rest)
            if bridge is None or name not in bridge.apps:
                raise AriError(422, "Event source was not subscribed to")
            bridge.unsubscribe(name, everything=True)
        elif scheme == "endpoint":
            if rest not in app.endpoint_ids:
                raise AriError(422, "Event source was not subscribed to")
            app.endpoint_ids.discard(rest)
        else:
            device = rest or "__AST_DEVICE_STATE_ALL_TOPIC"
            if device not in app.device_names:
                raise AriError(422, "Event source was not subscribed to")
            app.device_names.remove(device)
    return 200, _app_json(engine, name)


@route("PUT", "applications/{applicationName}/eventFilter")
async def applications_filter(call: Call) -> Result:
    name = _app_or_404(call)
    app = call.engine.apps.ensure(name)
    body = call.body if isinstance(call.body, dict) else {}
    app.events_allowed = list(body.get("allowed") or [])
    app.events_disallowed = list(body.get("disallowed") or [])
    return 200, _app_json(call.engine, name)


# -- channels ------------------------------------------------------------------------------
def _variables(call: Call) -> dict[str, str]:
    body = call.body
    if isinstance(body, dict) and isinstance(body.get("variables"), dict):
        return {str(k): str(v) for k, v in body["variables"].items()}
    return {}


@route("GET", "channels")
async def channels_list(call: Call) -> Result:
    return 200, [channel.to_json() for channel in call.engine.channels]


@route("POST", "channels")
async def channels_originate(call: Call) -> Result:
    channel = origination.originate(call.engine, call.params, _variables(call))
    return 200, channel.to_json()


@route("POST", "channels/create")
async def channels_create(call: Call) -> Result:
    channel = origination.create(call.engine, call.params, _variables(call))
    return 200, channel.to_json()


@route("POST", "channels/{channelId}")
async def channels_originate_with_id(call: Call) -> Result:
    params = dict(call.params)
    params["channelId"] = call.args["channelId"]
    channel = origination.originate(call.engine, params, _variables(call))
    return 200, channel.to_json()


@route("GET", "channels/{channelId}")
async def channels_get(call: Call) -> Result:
    return 200, call.engine.find_channel(call.args["channelId"]).to_json()


@route("DELETE", "channels/{channelId}")
async def channels_hangup(call: Call) -> Result:
    engine = call.engine
    channel = engine.find_channel(call.args["channelId"])
    reason = call.param("reason")
    code = call.param("reason_code")
    if reason and code:
        raise AriError(400, "The reason and reason_code can't both be specified")
    if code:
        if not code.isdigit():
            raise AriError(400, "Invalid reason for hangup provided")
        cause = int(code)
    elif reason:
        if reason not in REASON_CAUSE:
            raise AriError(400, "Invalid reason for hangup provided")
        cause = REASON_CAUSE[reason]
    else:
        cause = 16
    if channel.hanging_up:
        return 204, None
    engine.hangup(channel, cause, request=(32, True), by="app")
    return 204, None


@route("POST", "channels/{channelId}/continue")
async def channels_continue(call: Call) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    context = call.param("context") or channel.context
    exten = call.param("extension") or channel.exten
    label = call.param("label")
    explicit = bool(call.param("context") or call.param("extension"))
    if label:
        priority = engine.dialplan.label_priority(context, exten, label)
        if priority is None:
            raise AriError(404, "Requested label can not be found")
    elif call.param("priority"):
        priority = call.int_param("priority", 1)
    else:
        priority = 1 if explicit else channel.priority + 1

    async def run() -> None:
        if channel.hanging_up:
            return
        had_runner = channel.runs_dialplan
        channel.continue_target = (context, exten, priority)
        engine.leave_stasis(channel, continue_to=(context, exten, priority))
        if not had_runner:
            engine.dialplan.start(channel, context, exten, priority)

    _queued(channel, run)
    return 204, None


@route("POST", "channels/{channelId}/move")
async def channels_move(call: Call) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    app = call.param("app")
    if not app:
        raise AriError(400, "Missing parameter app")
    args = call.param("appArgs")
    old = channel.stasis_app
    assert old is not None
    engine.emit_stasis("StasisEnd", channel, old)
    if not channel.subscribers.get(old, True):
        del channel.subscribers[old]
    channel.stasis_app = None
    if not engine.enter_stasis(channel, app, args.split(",") if args else []):
        raise AriError(404, "Application not found")
    return 204, None


@route("POST", "channels/{channelId}/redirect")
async def channels_redirect(call: Call) -> Result:
    channel = call.engine.find_channel(call.args["channelId"])
    endpoint = call.param("endpoint")
    if not endpoint:
        raise AriError(400, "Required parameter 'endpoint' not provided.")
    if channel.stasis_app is None:
        raise AriError(409, "Channel not in Stasis application")
    tech, sep, _ = endpoint.partition("/")
    if not sep:
        raise AriError(422, f"Endpoint parameter '{endpoint}' does not contain tech/resource")
    if tech.lower() != channel.tech.lower():
        raise AriError(
            422, f"Endpoint technology '{tech}' does not match channel technology '{channel.tech}'"
        )
    return 204, None


@route("POST", "channels/{channelId}/answer")
async def channels_answer(call: Call) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    await _blocking(channel, lambda: engine.answer(channel))
    return 204, None


@route("POST", "channels/{channelId}/ring")
async def channels_ring(call: Call) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    engine.ring(channel)
    return 204, None


@route("DELETE", "channels/{channelId}/ring")
async def channels_ring_stop(call: Call) -> Result:
    call.engine.stasis_channel(call.args["channelId"])
    return 204, None


_DTMF_RE = re.compile(r"^[0-9A-Da-d*#,w]+$")


@route("POST", "channels/{channelId}/dtmf")
async def channels_dtmf(call: Call) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    digits = call.param("dtmf")
    if not digits:
        raise AriError(400, "DTMF is required")
    if not _DTMF_RE.match(digits):
        raise AriError(400, "DTMF contains invalid characters")

    async def run() -> None:
        await engine.send_dtmf(
            channel,
            digits.upper(),
            before_ms=call.int_param("before", 0),
            between_ms=call.int_param("between", 100),
            duration_ms=call.int_param("duration", 100),
            after_ms=call.int_param("after", 0),
        )

    _queued(channel, run)
    return 204, None


@route("POST", "channels/{channelId}/mute")
async def channels_mute(call: Call) -> Result:
    call.engine.stasis_channel(call.args["channelId"])
    return 204, None


@route("DELETE", "channels/{channelId}/mute")
async def channels_unmute(call: Call) -> Result:
    call.engine.stasis_channel(call.args["channelId"])
    return 204, None


def _side_effect(call: Call, attr: str, value: bool) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    setattr(channel, attr, value)
    for party in (channel, channel.peer):
        if party is not None and party.transcript is not None and attr in ("moh", "hold"):
            party.transcript.moh.append(
                {"what": attr, "on": value, "at": engine.now(), "channel_id": channel.id}
            )
    return 204, None


@route("POST", "channels/{channelId}/hold")
async def channels_hold(call: Call) -> Result:
    return _side_effect(call, "hold", True)


@route("DELETE", "channels/{channelId}/hold")
async def channels_unhold(call: Call) -> Result:
    return _side_effect(call, "hold", False)


@route("POST", "channels/{channelId}/moh")
async def channels_moh(call: Call) -> Result:
    return _side_effect(call, "moh", True)


@route("DELETE", "channels/{channelId}/moh")
async def channels_moh_stop(call: Call) -> Result:
    return _side_effect(call, "moh", False)


@route("POST", "channels/{channelId}/silence")
async def channels_silence(call: Call) -> Result:
    return _side_effect(call, "silence", True)


@route("DELETE", "channels/{channelId}/silence")
async def channels_silence_stop(call: Call) -> Result:
    return _side_effect(call, "silence", False)


def _new_playback(call: Call, target_uri: str, language: str, playback_id: str) -> Playback:
    media = call.param("media")
    if not media:
        raise AriError(400, "Missing parameter media")
    skipms = call.int_param("skipms", 3000)
    return Playback(
        id=playback_id or str(uuid.uuid4()),
        media=media.split(","),
        target_uri=target_uri,
        language=call.param("lang") or language,
        skipms=skipms,
    )


def _play_on_channel(call: Call, playback_id: str) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    playback = _new_playback(call, f"channel:{channel.id}", channel.language, playback_id)
    engine.playbacks[playback.id] = playback
    engine.playback_owner[playback.id] = channel
    channel.pending_playbacks.append(playback)
    body = playback.to_json()

    async def run() -> None:
        await engine.run_playback(playback, channel)

    _queued(channel, run)
    return 201, body


@route("POST", "channels/{channelId}/play")
async def channels_play(call: Call) -> Result:
    return _play_on_channel(call, call.param("playbackId"))


@route("POST", "channels/{channelId}/play/{playbackId}")
async def channels_play_with_id(call: Call) -> Result:
    return _play_on_channel(call, call.args["playbackId"])


def _recording_params(call: Call, target_uri: str) -> LiveRecording:
    name = call.params.get("name")
    if name is None or name == "":
        raise AriError(500, "Error parsing request")
    if name.startswith("../") or name.startswith("/"):
        raise AriError(500, "Error parsing request")
    fmt = call.param("format")
    if not fmt:
        raise AriError(400, "Missing parameter format")
    if fmt not in RECORDING_FORMATS:
        raise AriError(422, "specified format is unknown on this system")
    terminate = call.param("terminateOn", "none")
    if terminate not in ("none", "any", "*", "#") and not re.fullmatch(r"[0-9A-D*#]+", terminate):
        raise AriError(400, "terminateOn invalid")
    if_exists = call.param("ifExists", "fail")
    if if_exists not in ("fail", "overwrite", "append"):
        raise AriError(400, "ifExists invalid")
    max_duration = call.int_param("maxDurationSeconds", 0)
    max_silence = call.int_param("maxSilenceSeconds", 0)
    if max_duration < 0:
        raise AriError(400, "maxDurationSeconds cannot be negative")
    if max_silence < 0:
        raise AriError(400, "maxSilenceSeconds cannot be negative")
    check_new_recording(call.engine, name, RECORDING_FORMATS[fmt], if_exists)
    recording = LiveRecording(
        name=name,
        format=RECORDING_FORMATS[fmt],
        target_uri=target_uri,
        max_duration=float(max_duration),
        max_silence=float(max_silence),
        terminate_on=terminate,
        if_exists=if_exists,
        beep=call.flag("beep"),
    )
    path = recording_path(call.engine.config.recordings_dir, name, recording.format)
    if not inside(call.engine.config.recordings_dir, path):
        recording.write_failed = True
    if any(len(part.encode()) > 250 for part in name.split("/")):
        # The file cannot even be opened: Started then Finished at once (trace 17).
        recording.write_failed = True
        recording.fail_at_once = True
    return recording


@route("POST", "channels/{channelId}/record")
async def channels_record(call: Call) -> Result:
    engine = call.engine
    channel = engine.stasis_channel(call.args["channelId"])
    recording = _recording_params(call, f"channel:{channel.id}")
    if channel.bridge is not None:
        recording.state = "failed"
        recording.cause = "Cannot record channel while in bridge"
        engine.emit_to(list(channel.subscribers), "RecordingFailed", recording=recording.to_json())
        return 201, {
            "name": recording.name,
            "format": recording.format,
            "state": "queued",
            "target_uri": recording.target_uri,
        }
    engine.recordings[recording.name] = recording
    engine.recording_owner[recording.name] = channel
    body = recording.to_json()

    async def run() -> None:
        if recording.state != "queued" or channel.hanging_up:
            return
        channel.recording = recording
        start_recording(engine, recording, channel)
        if recording.fail_at_once:
            finish_recording(engine, recording, "done")
            return
        assert recording.finish is not None
        await recording.finish

    _queued(channel, run)
    return 201, body


@route("GET", "channels/{channelId}/variable")
async def channels_get_variable(call: Call) -> Result:
    channel = call.engine.find_channel(call.args["channelId"])
    name = call.param("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    return 200, {"value": _read_var(channel, name)}


def _read_var(channel: Channel, name: str) -> str:
    try:
        value = channel.read_variable(name)
    except ValueError as exc:
        raise AriError(500, "Unable to read provided function") from exc
    if value is None:
        value = channel.pseudo_variable(name)
    if value is None:
        raise AriError(404, "Provided variable was not found")
    if name.upper().startswith("CALLERID(") and len(value.encode()) > 255:
        cut = value.encode()[:255]
        try:
            return cut.decode()
        except UnicodeDecodeError as exc:
            raise AriError(500, "Allocation failed", key="error") from exc
    return value


@route("GET", "channels/{channelId}/variables")
async def channels_get_variables(call: Call) -> Result:
    channel = call.engine.find_channel(call.args["channelId"])
    names = [n for n in call.param("variables").split(",") if n]
    if not names:
        raise AriError(400, "At least one variable name is required")
    return 200, {"variables": {name: _read_var(channel, name) for name in names}}


def _set_var(engine: Engine, channel: Channel, name: str, value: str | None, report: bool) -> None:
    upper = name.upper()
    func = re.fullmatch(r"([A-Z_]+)\((.*)\)", upper)
    if func is not None:
        fname, arg = func.groups()
        text = value or ""
        if fname == "CALLERID" and arg in ("NAME", "NUM", "NUMBER", "ALL"):
            if arg == "NAME":
                engine.set_caller(channel, name=text.rstrip())
            elif arg == "ALL":
                parsed = parse_callerid(text)
                engine.set_caller(channel, name=parsed[0], number=parsed[1])
            else:
                engine.set_caller(channel, number=text)
        elif fname == "CONNECTEDLINE" and arg in ("NAME", "NUM", "NUMBER", "ALL"):
            if arg == "NAME":
                engine.set_connected(channel, name=text)
            elif arg == "ALL":
                parsed = parse_callerid(text)
                engine.set_connected(channel, name=parsed[0], number=parsed[1])
            else:
                engine.set_connected(channel, number=text)
            peer = channel.peer
            if peer is not None and channel.half == 1 and not peer.destroyed:
                # The phone half's caller follows silently; reported later (trace 13, G).
                peer.pending_caller = Party(channel.connected.name, channel.connected.number)
        elif fname == "CHANNEL" and arg == "LANGUAGE":
            channel.language = text
            if channel.peer is not None:
                channel.peer.language = text
        return
    bare = name.lstrip("_")
    if value is None:
        channel.variables.pop(bare, None)
        return
    else:
        channel.variables[bare] = value
        if name.startswith("_"):
            channel.inheritable.add(bare)
    if report and bare not in channel.channelvar_names:
        channel.channelvar_names.append(bare)
    engine.varset(channel, name, value or "")


@route("POST", "channels/{channelId}/variable")
async def channels_set_variable(call: Call) -> Result:
    engine = call.engine
    channel = engine.find_channel(call.args["channelId"])
    name = call.param("variable")
    if not name:
        raise AriError(400, "Variable name is required")
    value = call.params.get("value")
    report = call.flag("report_events")
    if channel.stasis_app is None:
        _set_var(engine, channel, name, value, report)
        return 204, None
    await _blocking(channel, lambda: _set_var(engine, channel, name, value, report))
    return 204, None


@route("POST", "channels/{channelId}/variables")
async def channels_set_variables(call: Call) -> Result:
    engine = call.engine
    channel = engine.find_channel(call.args["channelId"])
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("variables"), dict):
        raise AriError(400, "The 'variables' field is required")
    items: list[tuple[str, str | None, bool]] = []
    for name, spec in body["variables"].items():
        if isinstance(spec, dict):
            items.append(
                (
                    str(name),
                    None if spec.get("value") is None else str(spec["value"]),
                    bool(spec.get("report_events")),
                )
            )
        else:
            items.append((str(name), None if spec is None else str(spec), False))

    def apply() -> None:
        for name, value, report in items:
            _set_var(engine, channel, name, value, report)

    if channel.stasis_app is None:
        apply()
    else:
        await _blocking(channel, apply)
    return 204, None


@route("POST", "channels/{channelId}/snoop")
async def channels_snoop(call: Call) -> Result:
    channel = call.engine.find_channel(call.args["channelId"])
    return 200, origination.snoop(call.engine, channel, call.params).to_json()


@route("POST", "channels/{channelId}/snoop/{snoopId}")
async def channels_snoop_with_id(call: Call) -> Result:
    channel = call.engine.find_channel(call.args["channelId"])
    params = dict(call.params)
    params["snoopId"] = call.args["snoopId"]
    return 200, origination.snoop(call.engine, channel, params).to_json()


@route("POST", "channels/{channelId}/dial")
async def channels_dial(call: Call) -> Result:
    channel = call.engine.stasis_channel(call.args["channelId"])
    origination.dial_created(call.engine, channel, call.params)
    return 204, None


# -- bridges -------------------------------------------------------------------------------
def _bridge(call: Call) -> Bridge:
    bridge = call.engine.bridges.get(call.args["bridgeId"])
    if bridge is None:
        raise AriError(404, "Bridge not found")
    return bridge


def _create_bridge(call: Call, bridge_id: str) -> Result:
    engine = call.engine
    kinds = [k for k in call.param("type", "mixing").split(",") if k]
    for kind in kinds:
        if kind not in BRIDGE_TYPES:
            raise AriError(400, f"Invalid bridge type '{kind}'")
    if bridge_id in engine.bridges:
        existing = engine.bridges[bridge_id]
        if call.args.get("bridgeId"):
            return 200, existing.to_json()
        raise AriError(409, f"Bridge with id '{bridge_id}' already exists")
    bridge = Bridge(bridge_id, ",".join(kinds) or "mixing", call.param("name"), "")
    engine.bridges[bridge.id] = bridge
    return 200, bridge.to_json()


@route("GET", "bridges")
async def bridges_list(call: Call) -> Result:
    return 200, [bridge.to_json() for bridge in call.engine.bridges.values()]


@route("POST", "bridges")
async def bridges_create(call: Call) -> Result:
    return _create_bridge(call, call.param("bridgeId") or str(uuid.uuid4()))


@route("POST", "bridges/{bridgeId}")
async def bridges_create_with_id(call: Call) -> Result:
    return _create_bridge(call, call.args["bridgeId"])


@route("GET", "bridges/{bridgeId}")
async def bridges_get(call: Call) -> Result:
    return 200, _bridge(call).to_json()


@route("DELETE", "bridges/{bridgeId}")
async def bridges_destroy(call: Call) -> Result:
    call.engine.destroy_bridge(_bridge(call))
    return 204, None


def _bridge_channels(call: Call) -> list[Channel]:
    ids = [i for i in call.param("channel").split(",") if i]
    if not ids:
        raise AriError(400, "Missing parameter channel")
    channels = []
    for channel_id in ids:
        channel = call.engine.channels.get(channel_id)
        if channel is None:
            raise AriError(400, "Channel not found")
        channels.append(channel)
    return channels


@route("POST", "bridges/{bridgeId}/addChannel")
async def bridges_add(call: Call) -> Result:
    engine = call.engine
    bridge = _bridge(call)
    channels = _bridge_channels(call)
    for channel in channels:
        if channel.stasis_app is None:
            raise AriError(422, "Channel not in Stasis application")
        if channel.recording is not None:
            raise AriError(409, f"Channel {channel.id} currently recording")
    role = call.param("role")
    inhibit = call.flag("inhibitConnectedLineUpdates")
    for channel in channels:
        if channel.bridge is not bridge:
            bridge.subscribe(channel.stasis_app or "")
        joiner = _joiner(engine, bridge, channel, role, inhibit)
        await _blocking(channel, joiner)
    return 204, None


def _joiner(
    engine: Engine, bridge: Bridge, channel: Channel, role: str, inhibit: bool
) -> Callable[[], None]:
    return lambda: engine.join_bridge(bridge, channel, role, inhibit)


@route("POST", "bridges/{bridgeId}/removeChannel")
async def bridges_remove(call: Call) -> Result:
    engine = call.engine
    bridge = _bridge(call)
    channels = _bridge_channels(call)
    for channel in channels:
        if channel.stasis_app is None:
            raise AriError(422, "Channel not in Stasis application")
        if channel.bridge is not bridge:
            raise AriError(422, "Channel not in this bridge")
    for channel in channels:
        engine.leave_bridge(channel, hangup=False)
        bridge.unsubscribe(channel.stasis_app or "")
    return 204, None


@route("POST", "bridges/{bridgeId}/moh")
async def bridges_moh(call: Call) -> Result:
    engine = call.engine
    bridge = _bridge(call)
    has_announcer = any(c.bridge_role == "announcer" for c in bridge.channels)
    if bridge.bridge_type == "holding" and has_announcer:
        # A holding bridge takes one announcer; the MOH one is refused silently (trace 12).
        return 204, None
    if bridge.moh_class is None:
        bridge.moh_class = call.param("mohClass") or "default"
        bridge.announcer_name = f"Announcer/ARI_MOH-{engine.channels.name_suffix()};2"
        engine.update_bridge_peers(bridge)
        if bridge.bridge_type == "mixing" and len(bridge.channels) == 1:
            for member in bridge.channels:
                engine.emit_channel("ChannelConnectedLine", member)
    return 204, None


@route("DELETE", "bridges/{bridgeId}/moh")
async def bridges_moh_stop(call: Call) -> Result:
    engine = call.engine
    bridge = _bridge(call)
    if bridge.moh_class is None:
        raise AriError(409, "Bridge isn't playing music")
    bridge.moh_class = None
    engine.update_bridge_peers(bridge)
    return 204, None


def _play_on_bridge(call: Call, playback_id: str) -> Result:
    engine = call.engine
    bridge = _bridge(call)
    playback = _new_playback(call, f"bridge:{bridge.id}", "en", playback_id)
    engine.playbacks[playback.id] = playback
    engine.playback_owner[playback.id] = bridge
    bridge.playbacks.append(playback)
    body = playback.to_json()

    async def run() -> None:
        if bridge.destroyed or playback.stopped:
            engine.playbacks.pop(playback.id, None)
            return
        await engine.run_playback(playback, bridge)

    suppress_gone(bridge.control.enqueue(run))
    return 201, body


@route("POST", "bridges/{bridgeId}/play")
async def bridges_play(call: Call) -> Result:
    return _play_on_bridge(call, call.param("playbackId"))


@route("POST", "bridges/{bridgeId}/play/{playbackId}")
async def bridges_play_with_id(call: Call) -> Result:
    return _play_on_bridge(call, call.args["playbackId"])


@route("POST", "bridges/{bridgeId}/record")
async def bridges_record(call: Call) -> Result:
    engine = call.engine
    bridge = _bridge(call)
    try:
        recording = _recording_params(call, f"bridge:{bridge.id}")
    except AriError as exc:
        if exc.status == 409 or (exc.status == 500 and call.param("name")):
            # Asterisk adds a Recorder channel before refusing the name (traces 03, 17).
            _recorder_blip(engine, bridge)
        raise
    engine.recordings[recording.name] = recording
    engine.recording_owner[recording.name] = bridge
    bridge.recording = recording
    bridge.recorder_name = f"Recorder/ARI-{engine.channels.name_suffix()};2"
    engine.update_bridge_peers(bridge)
    body = recording.to_json()
    start_recording(engine, recording, bridge)
    if recording.fail_at_once:
        finish_recording(engine, recording, "done")
    return 201, body


def _recorder_blip(engine: Engine, bridge: Bridge) -> None:
    if bridge.bridge_type != "mixing":
        return
    refused = f"Recorder/ARI-{engine.channels.name_suffix()};2"
    for member in bridge.channels:
        peers = engine.bridge_peer_names(bridge, member)
        # Observed orders: after a live Recorder, or first when none is live (03, 17).
        value = f"{peers},{refused}" if bridge.recording is not None else f"{refused},{peers}"
        engine.varset(member, "BRIDGEPEER", value)
    for member in bridge.channels:
        value = engine.bridge_peer_names(bridge, member)
        member.variables["BRIDGEPEER"] = value
        engine.varset(member, "BRIDGEPEER", value)


# -- playbacks -----------------------------------------------------------------------------
@route("GET", "playbacks/{playbackId}")
async def playbacks_get(call: Call) -> Result:
    playback = call.engine.playbacks.get(call.args["playbackId"])
    if playback is None:
        raise AriError(404, "Playback not found")
    return 200, playback.to_json()


@route("DELETE", "playbacks/{playbackId}")
async def playbacks_stop(call: Call) -> Result:
    call.engine.stop_playback(call.args["playbackId"])
    return 204, None


@route("POST", "playbacks/{playbackId}/control")
async def playbacks_control(call: Call) -> Result:
    engine = call.engine
    playback = engine.playbacks.get(call.args["playbackId"])
    operation = call.param("operation")
    if not operation:
        raise AriError(400, "Missing operation")
    if operation not in ("pause", "unpause", "restart", "reverse", "forward"):
        raise AriError(400, f"Invalid operation {operation}")
    if playback is None:
        raise AriError(404, "Playback not found")
    if playback.state not in ("playing", "paused", "continuing"):
        raise AriError(409, "Playback not started")
    owner = engine.playback_owner.get(playback.id)
    if operation == "pause" and not playback.paused:
        playback.paused = True
        playback.state = "paused"
    elif operation == "unpause" and playback.paused:
        playback.paused = False
        playback.state = "playing"
        if owner is not None:
            engine.emit_to(
                engine.target_apps(owner), "PlaybackStarted", playback=playback.to_json()
            )
    elif operation == "restart":
        playback.restart = True
    elif operation == "forward":
        playback.pending_jump += playback.skipms / 1000
    elif operation == "reverse":
        playback.pending_jump -= playback.skipms / 1000
    playback.poke()
    return 204, None


# -- recordings ----------------------------------------------------------------------------
def _live(call: Call) -> LiveRecording:
    recording = call.engine.recordings.get(call.args["recordingName"])
    if recording is None:
        raise AriError(404, "Recording not found")
    return recording


@route("GET", "recordings/live/{recordingName}")
async def live_get(call: Call) -> Result:
    return 200, _live(call).to_json()


@route("DELETE", "recordings/live/{recordingName}")
async def live_cancel(call: Call) -> Result:
    finish_recording(call.engine, _live(call), "cancel")
    return 204, None


@route("POST", "recordings/live/{recordingName}/stop")
async def live_stop(call: Call) -> Result:
    finish_recording(call.engine, _live(call), "done")
    return 204, None


@route("POST", "recordings/live/{recordingName}/pause")
async def live_pause(call: Call) -> Result:
    recording = _live(call)
    if recording.state == "recording":
        owner = call.engine.recording_owner.get(recording.name)
        if owner is not None:
            mark(call.engine, recording, owner)
        recording.paused = True
        recording.state = "paused"
        recording.paused_since = time.monotonic()
    return 204, None


@route("DELETE", "recordings/live/{recordingName}/pause")
async def live_unpause(call: Call) -> Result:
    recording = _live(call)
    if recording.paused and recording.paused_since is not None:
        recording.paused_total += time.monotonic() - recording.paused_since
        recording.paused_since = None
        recording.paused = False
        recording.state = "recording"
    return 204, None


@route("POST", "recordings/live/{recordingName}/mute")
async def live_mute(call: Call) -> Result:
    _live(call).muted = True
    return 204, None


@route("DELETE", "recordings/live/{recordingName}/mute")
async def live_unmute(call: Call) -> Result:
    _live(call).muted = False
    return 204, None


@route("GET", "recordings/stored")
async def stored_list(call: Call) -> Result:
    return 200, list_stored(call.engine.config.recordings_dir)


def _stored(call: Call) -> tuple[str, Any]:
    name = call.args["recordingName"]
    path = find_stored(call.engine.config.recordings_dir, name)
    if path is None:
        raise AriError(404, "Recording not found")
    return name, path


@route("GET", "recordings/stored/{recordingName}")
async def stored_get(call: Call) -> Result:
    name, path = _stored(call)
    return 200, {"name": name, "format": path.suffix.lstrip(".")}


@route("DELETE", "recordings/stored/{recordingName}")
async def stored_delete(call: Call) -> Result:
    _, path = _stored(call)
    path.unlink()
    return 204, None


@route("GET", "recordings/stored/{recordingName}/file")
async def stored_file(call: Call) -> Result:
    _, path = _stored(call)
    fmt = path.suffix.lstrip(".")
    return web.Response(
        body=path.read_bytes(), content_type=CONTENT_TYPES.get(fmt, "application/octet-stream")
    )


@route("POST", "recordings/stored/{recordingName}/copy")
async def stored_copy(call: Call) -> Result:
    _, path = _stored(call)
    destination = call.param("destinationRecordingName")
    if not destination:
        raise AriError(400, "Missing parameter destinationRecordingName")
    base = call.engine.config.recordings_dir
    target = recording_path(base, destination, path.suffix.lstrip("."))
    if not inside(base, target):
        raise AriError(400, "Destination file is outside the recording directory")
    if find_stored(base, destination) is not None:
        raise AriError(409, "A recording with the same name already exists on the system")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return 200, {"name": destination, "format": path.suffix.lstrip(".")}


# -- sounds --------------------------------------------------------------------------------
@route("GET", "sounds")
async def sounds_list(call: Call) -> Result:
    lang = call.param("lang") or None
    sounds = call.engine.sounds.all_sounds(lang)
    if not sounds:
        raise AriError(404, "No sounds found that matched the query")
    return 200, sounds


@route("GET", "sounds/{soundId}")
async def sounds_get(call: Call) -> Result:
    name = call.args["soundId"]
    formats = call.engine.sounds.sound_languages(name)
    if not formats:
        raise AriError(404, "Sound not found")
    return 200, {"id": name, "formats": [{"language": lg, "format": f} for lg, f in formats]}


# -- device states -------------------------------------------------------------------------
_DEVICE_STATES = (
    "NOT_INUSE",
    "INUSE",
    "BUSY",
    "INVALID",
    "UNAVAILABLE",
    "RINGING",
    "RINGINUSE",
    "ONHOLD",
)


@route("GET", "deviceStates")
async def device_list(call: Call) -> Result:
    return 200, [{"name": n, "state": s} for n, s in call.engine.device_states.items()]


def _device_name(call: Call) -> str:
    name = call.args["deviceName"]
    return name


@route("GET", "deviceStates/{deviceName}")
async def device_get(call: Call) -> Result:
    name = _device_name(call)
    return 200, {"name": name, "state": call.engine.device_state(name)}


def _controlled(name: str) -> str:
    if not name.startswith("Stasis:"):
        raise AriError(409, "Uncontrolled device specified")
    if name == "Stasis:":
        raise AriError(404, "Device name is missing")
    return name


@route("PUT", "deviceStates/{deviceName}")
async def device_put(call: Call) -> Result:
    name = _controlled(_device_name(call))
    state = call.param("deviceState").upper()
    if state not in _DEVICE_STATES:
        raise AriError(500, "Unknown device")
    call.engine.set_device_state(name, state)
    return 204, None


@route("DELETE", "deviceStates/{deviceName}")
async def device_delete(call: Call) -> Result:
    name = _controlled(_device_name(call))
    call.engine.set_device_state(name, None)
    return 204, None


# -- endpoints -----------------------------------------------------------------------------
@route("GET", "endpoints")
async def endpoints_list(call: Call) -> Result:
    engine = call.engine
    return 200, [engine.endpoint_json(phone) for phone in engine.phones.values()]


@route("GET", "endpoints/{tech}")
async def endpoints_by_tech(call: Call) -> Result:
    engine = call.engine
    tech = call.args["tech"]
    found = [engine.endpoint_json(p) for p in engine.phones.values() if p.tech == tech]
    if not found:
        raise AriError(404, f"No Endpoints found - invalid tech {tech}")
    return 200, found


@route("GET", "endpoints/{tech}/{resource}")
async def endpoints_get(call: Call) -> Result:
    engine = call.engine
    phone = engine.phones.get(f"{call.args['tech']}/{call.args['resource']}")
    if phone is None:
        raise AriError(404, "Endpoint not found")
    return 200, engine.endpoint_json(phone)


# -- user events ---------------------------------------------------------------------------
@route("POST", "events/user/{eventName}")
async def user_event(call: Call) -> Result:
    engine = call.engine
    app = call.param("application")
    if not app:
        raise AriError(400, "Missing parameter application")
    if engine.apps.get(app) is None:
        raise AriError(404, "Application not found")
    fields: dict[str, Any] = {"eventname": call.args["eventName"]}
    body = call.body if isinstance(call.body, dict) else {}
    variables = body.get("variables")
    fields["userevent"] = {
        **(variables if isinstance(variables, dict) else {}),
        "eventname": call.args["eventName"],
    }
    for source in [s for s in call.param("source").split(",") if s]:
        scheme, _, rest = source.partition(":")
        if scheme == "channel":
            channel = engine.channels.get(rest)
            if channel is None:
                raise AriError(422, "Event source does not exist")
            fields["channel"] = channel.to_json()
        elif scheme == "bridge":
            bridge = engine.bridges.get(rest)
            if bridge is None:
                raise AriError(422, "Event source does not exist")
            fields["bridge"] = bridge.to_json()
    target = engine.apps.get(app)
    if target is not None:
        target.deliver(envelope("ChannelUserevent", fields))
    return 204, None

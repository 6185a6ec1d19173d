"""Channels that start calls: originate, create + dial, snoop, phones, scripted callers."""

from __future__ import annotations

import asyncio
from typing import Any

from pbx_service.simulator.channels import Channel, Party, parse_callerid
from pbx_service.simulator.engine import AriError, DialState, Engine, allocation_failed
from pbx_service.simulator.phones import Phone, PhoneBehaviour
from pbx_service.simulator.scripted import (
    CallHandle,
    Hangup,
    SendDtmf,
    Step,
    Talk,
    Transcript,
    Wait,
    WaitAnswered,
    WaitBridged,
    WaitPlayback,
)

KNOWN_FORMATS = {"ulaw", "alaw", "gsm", "slin", "slin16", "g722", "g729", "opus", "h264", "vp8"}
_RING_FOREVER = PhoneBehaviour(answer_after=None)


def _check_common(engine: Engine, params: dict[str, str]) -> tuple[str, str]:
    endpoint = params.get("endpoint", "")
    formats = params.get("formats", "")
    if formats:
        for fmt in formats.split(","):
            if fmt.strip() not in KNOWN_FORMATS:
                raise AriError(400, f"Provided format ({fmt.strip()}) was not found")
    tech, sep, resource = endpoint.partition("/")
    if not sep or not tech or not resource:
        raise AriError(400, "Invalid endpoint specified")
    for key in ("channelId", "otherChannelId"):
        wanted = params.get(key, "")
        if wanted and engine.channels.id_in_use(wanted):
            raise AriError(409, "Channel with given unique ID already exists")
    return tech, resource


def _phone_for(engine: Engine, tech: str, resource: str) -> tuple[Phone | None, str]:
    """The phone answering `tech/resource` and the channel name stem; raises 500."""
    if tech != "PJSIP":
        raise allocation_failed()
    endpoint = f"{tech}/{resource}"
    phone = engine.phones.get(endpoint)
    _user, at, host = resource.partition("@")
    if phone is None and at and host in engine.config.trunks:
        return None, host
    if phone is None or not phone.behaviour.online:
        raise allocation_failed()
    return phone, host if at else resource


def _apply_variables(engine: Engine, channel: Channel, variables: dict[str, str]) -> None:
    """Originate variables on the dialling channel; functions change caller/connected."""
    for name, value in variables.items():
        upper = name.upper()
        if upper in ("CALLERID(NAME)", "CALLERID(NUM)", "CALLERID(NUMBER)", "CALLERID(ALL)"):
            _set_party(channel.caller, upper, value)
        elif upper.startswith("CONNECTEDLINE("):
            _set_party(channel.connected, upper, value)
        elif upper == "CHANNEL(LANGUAGE)":
            channel.language = value
        elif "(" in name:
            continue
        else:
            bare = name.lstrip("_")
            channel.variables[bare] = value
            if name.startswith("_"):
                channel.inheritable.add(bare)


def _set_party(party: Party, function: str, value: str) -> None:
    field = function[function.index("(") + 1 : -1].lower()
    if field == "name":
        party.name = value
    elif field in ("num", "number"):
        party.number = value
    elif field == "all":
        party.name, party.number = parse_callerid(value)


def _timeout(params: dict[str, str]) -> float:
    try:
        value = int(params.get("timeout", "30"))
    except ValueError:
        return 30.0
    return float(value) if value > 0 else 30.0


def _originator(engine: Engine, params: dict[str, str]) -> Channel | None:
    wanted = params.get("originator", "")
    return engine.channels.get(wanted) if wanted else None


def originate(engine: Engine, params: dict[str, str], variables: dict[str, str]) -> Channel:
    """POST /channels: validate like Asterisk, build the legs, start dialling."""
    if not params.get("endpoint"):
        raise AriError(400, "Endpoint must be specified")
    app = params.get("app", "")
    extension = params.get("extension", "")
    if not app and not extension:
        raise AriError(400, "Application or extension must be specified")
    tech, resource = _check_common(engine, params)
    app_args = [a for a in params.get("appArgs", "").split(",")] if params.get("appArgs") else []
    target: tuple[str, str, int] | None = None
    if not app:
        priority = params.get("priority", "1")
        target = (
            params.get("context", "default") or "default",
            extension,
            int(priority) if priority.isdigit() else 1,
        )
    dial = DialState(app=app or None, app_args=app_args, dialstring=resource, extension=target)
    first = _build_legs(engine, tech, resource, params, variables, dial)
    if app:
        engine.apps.ensure(app)
    return first


def create(engine: Engine, params: dict[str, str], variables: dict[str, str]) -> Channel:
    """POST /channels/create: the channel enters Stasis(app) at once, unanswered."""
    if not params.get("endpoint"):
        raise AriError(400, "Endpoint must be specified")
    app = params.get("app", "")
    if not app:
        raise AriError(400, "Application must be specified")
    tech, resource = _check_common(engine, params)
    app_args = [a for a in params.get("appArgs", "").split(",")] if params.get("appArgs") else []
    dial = DialState(
        app=app,
        app_args=app_args,
        dialstring=resource,
        created=True,
        other_id=params.get("otherChannelId", ""),
    )
    if tech == "Local":
        exten, _, context = resource.partition("@")
        channel = _local_first_half(engine, resource, exten, context or "default", params)
    else:
        phone, stem = _phone_for(engine, tech, resource)
        channel = _pjsip_channel(engine, stem, params, phone, resource)
    originator = _originator(engine, params)
    inherited = originator.inheritable_variables() if originator is not None else {}
    for key, value in inherited.items():
        channel.variables[key] = value
        channel.inheritable.add(key)
    if originator is not None:
        channel.linkedid = originator.linkedid
    _apply_variables(engine, channel, variables)
    channel.dialing = dial
    engine.subscribe(channel, app, persistent=True)
    engine.apps.ensure(app)
    dial.inherited = inherited
    engine.spawn(_created_enters_stasis(engine, channel, app, app_args), f"sim-create-{channel.id}")
    return channel


async def _created_enters_stasis(
    engine: Engine, channel: Channel, app: str, args: list[str]
) -> None:
    await asyncio.sleep(0)
    if channel.destroyed:
        return
    channel.app_name = "Stasis"
    channel.app_data = ",".join([app, *args])
    engine.emit_channel(
        "ChannelDialplan", channel, dialplan_app="Stasis", dialplan_app_data=channel.app_data
    )
    if not engine.enter_stasis(channel, app, args):
        engine.hangup(channel, 16, request=None, by="stasis-failed")


def dial_created(engine: Engine, channel: Channel, params: dict[str, str]) -> None:
    """POST /channels/{id}/dial for a channel from /channels/create."""
    dial = channel.dialing
    if not isinstance(dial, DialState) or not dial.created or dial.timer is not None:
        raise AriError(409, "Channel is not in a dialable state")
    for key, value in dial.inherited.items():
        engine.varset(channel, f"__{key}", value)  # reported at dial time (trace 13)
    caller_id = params.get("caller", "")
    if caller_id:
        caller = engine.channels.get(caller_id)
        if caller is None:
            raise AriError(404, "Caller channel not found")
        engine.set_connected(channel, caller.caller.name, caller.caller.number)
        if dial.app:
            # The app keeps seeing the caller to the end (trace 13, cases E/F).
            engine.subscribe(caller, dial.app, persistent=True)
    engine.emit_dial(channel, "", dial.dialstring)
    timeout = _timeout(params) if params.get("timeout") else 0.0
    if channel.tech == "Local":
        exten, _, context = dial.dialstring.partition("@")
        second = _local_second_half(
            engine, channel, dial.other_id, exten, context or "default", None, subscribe=False
        )
        engine.dialplan.start(second, second.context, second.exten)
    else:
        phone = engine.phones.get(channel.phone_endpoint or "")
        channel.spawn(
            _run_phone(engine, channel, phone.behaviour if phone else _RING_FOREVER, phone),
            f"sim-phone-{channel.id}",
        )
    if timeout:
        dial.timer = channel.spawn(
            _dial_timeout(engine, channel, timeout), f"sim-timeout-{channel.id}"
        )


def _build_legs(
    engine: Engine,
    tech: str,
    resource: str,
    params: dict[str, str],
    variables: dict[str, str],
    dial: DialState,
) -> Channel:
    originator = _originator(engine, params)
    caller_id = params.get("callerId", "")
    if tech == "Local":
        exten, _, context = resource.partition("@")
        context = context.split("/")[0] or "default"
        first = _local_first_half(engine, resource, exten, context, params)
        second = _local_second_half(
            engine, first, params.get("otherChannelId", ""), exten, context, None, subscribe=False
        )
    else:
        phone, stem = _phone_for(engine, tech, resource)
        first = _pjsip_channel(engine, stem, params, phone, resource)
    if caller_id:
        name, number = parse_callerid(caller_id)
        first.caller = Party(name, number)
        first.connected = Party(name, number)
    inherited = originator.inheritable_variables() if originator is not None else {}
    for key, value in inherited.items():
        first.variables[key] = value
        first.inheritable.add(key)
    if originator is not None:
        first.linkedid = originator.linkedid
    _apply_variables(engine, first, variables)
    first.dialing = dial
    # Seen only by subscribeAll apps: the originating app subscribes right after (trace 10).
    engine.emit_channel(
        "ChannelDialplan", first, dialplan_app="AppDial2", dialplan_app_data="(Outgoing Line)"
    )
    if caller_id:
        engine.set_caller(first)
        engine.set_connected(first)
    app = dial.app
    if app:
        engine.subscribe(first, app, persistent=True)
        if tech == "Local":
            engine.subscribe(second, app, persistent=True)
    if tech == "Local":
        # ;2 is built from ;1 when dialling: caller and connected swap, variables copy.
        _fill_second_half(engine, first, second)
    if tech == "Local" and not engine.dialplan.exists(context, exten):
        # The Local channel fails at call time: both halves destroyed, no Dial (trace 05).
        engine.spawn(_invalid_local(engine, second), f"sim-invalid-{first.id}")
        return first
    if tech == "Local":
        for key in inherited:
            engine.varset(second, f"__{key}", inherited[key])
        for name, value in variables.items():
            if "(" not in name:
                engine.varset(second, name, value)
        if (
            first.caller.name
            or first.caller.number
            or first.connected.name
            or (first.connected.number)
        ):
            engine.set_caller(second)
            engine.set_connected(second)
        engine.emit_dial(first, "", resource)
        engine.dialplan.start(second, context, exten)
    else:
        engine.emit_dial(first, "", resource)
        phone = engine.phones.get(f"{tech}/{resource}")
        behaviour = phone.behaviour if phone is not None else _RING_FOREVER
        first.spawn(_run_phone(engine, first, behaviour, phone), f"sim-phone-{first.id}")
    dial.timer = first.spawn(
        _dial_timeout(engine, first, _timeout(params)), f"sim-timeout-{first.id}"
    )
    return first


async def _invalid_local(engine: Engine, second: Channel) -> None:
    await asyncio.sleep(0)
    first = second.peer
    for channel in (second, first):
        if channel is not None and not channel.destroyed:
            channel.hanging_up = True
            engine.destroy(channel, 0)


def _local_first_half(
    engine: Engine, resource: str, exten: str, context: str, params: dict[str, str]
) -> Channel:
    suffix = engine.channels.name_suffix()
    base = resource.split("/")[0]
    first = engine.new_channel(
        name=f"Local/{base}-{suffix};1",
        tech="Local",
        state="Down",
        context=context,
        exten=exten,
        channel_id=params.get("channelId") or None,
    )
    first.half = 1
    first.explicit_id = bool(params.get("channelId"))
    first.app_name = "AppDial2"
    first.app_data = "(Outgoing Line)"
    return first


def _local_second_half(
    engine: Engine,
    first: Channel,
    other_id: str,
    exten: str,
    context: str,
    app: str | None,
    *,
    subscribe: bool = True,
) -> Channel:
    if not other_id and first.explicit_id:
        other_id = f"{first.id};2"  # Asterisk's default for the ;2 of a given channelId
    second = engine.new_channel(
        name=first.name[:-2] + ";2",
        tech="Local",
        state="Ring",
        context=context,
        exten=exten,
        channel_id=other_id or None,
    )
    second.half = 2
    second.peer = first
    first.peer = second
    _fill_second_half(engine, first, second)
    if subscribe:
        for app_name, persistent in first.subscribers.items():
            if persistent:
                engine.subscribe(second, app_name, persistent=True)
    del app
    return second


def _fill_second_half(engine: Engine, first: Channel, second: Channel) -> None:
    second.linkedid = first.linkedid
    second.caller = Party(first.connected.name, first.connected.number)
    second.connected = Party(first.caller.name, first.caller.number)
    second.language = first.language
    second.variables.update(first.variables)
    second.inheritable.update(first.inheritable)
    del engine


def _pjsip_channel(
    engine: Engine, stem: str, params: dict[str, str], phone: Phone | None, resource: str
) -> Channel:
    suffix = engine.channels.name_suffix()
    channel = engine.new_channel(
        name=f"PJSIP/{stem}-{suffix}",
        tech="PJSIP",
        state="Down",
        context="default",
        exten="s",
        channel_id=params.get("channelId") or None,
    )
    channel.app_name = "AppDial2"
    channel.app_data = "(Outgoing Line)"
    channel.phone_endpoint = phone.endpoint if phone is not None else f"PJSIP/{resource}"
    return channel


async def _dial_timeout(engine: Engine, channel: Channel, seconds: float) -> None:
    # The client asked for this timeout; by default it runs on the client's (wall) clock so
    # it stays ordered with the client's own timers (see `scale_client_timeouts`).
    if engine.config.scale_client_timeouts:
        await engine.sleep(seconds)
    else:
        await asyncio.sleep(seconds)
    dial = channel.dialing
    if not isinstance(dial, DialState) or dial.answered or channel.hanging_up:
        return
    if dial.created:
        engine.hangup(channel, 19, request=(32, True), by="timeout")
    else:
        engine.hangup(channel, 19, request=None, by="timeout")


async def _run_phone(
    engine: Engine, channel: Channel, behaviour: PhoneBehaviour, phone: Phone | None
) -> None:
    """A simulated phone reacting to a call."""
    record: dict[str, Any] = {
        "channel_id": channel.id,
        "caller": channel.caller.to_json(),
        "started_at": engine.now(),
        "answered_at": None,
        "result": "ringing",
    }
    if phone is not None:
        phone.calls.append(record)
    await engine.sleep(behaviour.ring_after)
    dial = channel.dialing
    if behaviour.busy:
        record["result"] = "busy"
        if isinstance(dial, DialState):
            engine.emit_dial(channel, "BUSY", dial.dialstring)
            dial.answered = True
        engine.hangup(channel, 17, request=(17, False), by="phone")
        return
    engine.far_end_ringing(channel)
    if behaviour.answer_after is None:
        return
    await engine.sleep(max(0.0, behaviour.answer_after - behaviour.ring_after))
    record["answered_at"] = engine.now()
    record["result"] = "answered"
    engine.far_end_answered(channel)
    if behaviour.dtmf:
        channel.spawn(_phone_dtmf(engine, channel, behaviour), f"sim-phone-dtmf-{channel.id}")
    if behaviour.hangup_after is not None:
        await engine.sleep(behaviour.hangup_after)
        record["result"] = "hung up"
        engine.hangup(channel, 16, request=(16, False), by="phone")


async def _phone_dtmf(engine: Engine, channel: Channel, behaviour: PhoneBehaviour) -> None:
    await engine.sleep(behaviour.dtmf_after)
    await engine.send_dtmf(channel, behaviour.dtmf, from_far_end=True)


def snoop(engine: Engine, target: Channel, params: dict[str, str]) -> Channel:
    """POST /channels/{id}/snoop: a Snoop/ channel in Stasis(app), state Up."""
    app = params.get("app", "")
    if not app:
        raise AriError(400, "Missing parameter app")
    for key in ("spy", "whisper"):
        if params.get(key, "none") not in ("none", "both", "out", "in"):
            raise AriError(400, f"Invalid direction specified for {key}")
    wanted = params.get("snoopId", "")
    if wanted and engine.channels.id_in_use(wanted):
        raise AriError(409, "Channel with given unique ID already exists")
    suffix = f"{engine.snoop_counter:08x}"
    engine.snoop_counter += 1
    channel = engine.new_channel(
        name=f"Snoop/{target.id}-{suffix}",
        tech="Snoop",
        state="Up",
        context="default",
        exten="s",
        channel_id=wanted or None,
    )
    args = params.get("appArgs", "")
    # The snoop ends with its target: StasisEnd only (trace 12), hence no lasting subscription.
    engine.snoops.setdefault(target.id, []).append(channel)
    channel.snoop_target = target
    channel.snoop_spy = params.get("spy", "none")
    if not engine.enter_stasis(channel, app, args.split(",") if args else []):
        engine.hangup(channel, 16, request=None, by="stasis-failed")
    return channel


# -- the shipped dialplan's fallback: ring reception phones -------------------------------
async def fallback_ring(
    engine: Engine, caller: Channel, endpoints: list[str], ring_seconds: float, info: dict[str, Any]
) -> str | None:
    """Ring each reception phone; returns the endpoint that answered, None on no answer."""
    legs: list[tuple[Channel, PhoneBehaviour, str]] = []
    for endpoint in endpoints:
        phone = engine.phones.get(endpoint)
        if phone is None or not phone.behaviour.online:
            info["rang"].append({"endpoint": endpoint, "result": "unavailable"})
            continue
        tech, _, resource = endpoint.partition("/")
        suffix = engine.channels.name_suffix()
        leg = engine.new_channel(
            name=f"{tech}/{resource}-{suffix}",
            tech=tech,
            state="Down",
            context="default",
            exten="s",
        )
        leg.phone_endpoint = endpoint
        if phone.behaviour.busy:
            info["rang"].append({"endpoint": endpoint, "result": "busy"})
            engine.hangup(leg, 17, request=None, by="phone")
            continue
        info["rang"].append({"endpoint": endpoint, "result": "ringing"})
        leg.state = "Ringing"
        engine.phone_device_changed(endpoint)
        legs.append((leg, phone.behaviour, endpoint))
    answering = [
        (b.answer_after, leg, b, ep)
        for leg, b, ep in legs
        if b.answer_after is not None and b.answer_after <= ring_seconds
    ]
    winner = min(answering, key=lambda item: item[0]) if answering else None
    try:
        if winner is None:
            await engine.sleep(ring_seconds)
            return None
        await engine.sleep(winner[0])
        _, leg, behaviour, endpoint = winner
        for other, _, _ in legs:
            if other is not leg:
                engine.hangup(other, 26, request=None, by="answered-elsewhere")
        engine.set_state(leg, "Up")
        engine.answer(caller)
        if caller.transcript is not None:
            caller.transcript.bridged.append(
                {
                    "bridge_id": None,
                    "channel_id": leg.id,
                    "channel_name": leg.name,
                    "endpoint": endpoint,
                    "at": engine.now(),
                }
            )
        if behaviour.hangup_after is not None:
            await engine.sleep(behaviour.hangup_after)
            engine.hangup(leg, 16, request=None, by="phone")
            caller.hangup_cause = 16
            caller.hanging_up = False
            engine.hangup(caller, 16, request=(16, False), by="phone")
        else:
            await caller.gone.wait()
        return endpoint
    finally:
        for leg, _, _ in legs:
            if not leg.destroyed:
                engine.hangup(leg, 16, request=None, by="fallback-end")


# -- scripted inbound callers ----------------------------------------------------------------
def place_call(
    engine: Engine,
    caller_number: str,
    did: str,
    caller_name: str | None,
    steps: list[Step],
    trunk: str | None = None,
) -> CallHandle:
    """A caller from the trunk dialling `did`; runs `steps` and records a transcript."""
    trunk_name = trunk or engine.config.trunks[0]
    suffix = engine.channels.name_suffix()
    channel = engine.new_channel(
        name=f"PJSIP/{trunk_name}-{suffix}",
        tech="PJSIP",
        state="Ring",
        context="from-trunk",
        exten=did,
    )
    channel.caller = Party(caller_name or "", caller_number)
    transcript = Transcript(
        channel_id=channel.id,
        channel_name=channel.name,
        caller_number=caller_number,
        caller_name=caller_name or "",
        did=did,
        started_at=engine.now(),
    )
    channel.transcript = transcript
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[Transcript] = loop.create_future()
    engine.call_log.append(
        {
            "kind": "inbound",
            "channel_id": channel.id,
            "did": did,
            "caller_number": caller_number,
            "transcript": transcript,
        }
    )
    engine.dialplan.start(channel, "from-trunk", did)
    engine.spawn(_run_script(engine, channel, steps), f"sim-script-{channel.id}")

    def _ended() -> None:
        if not ended.done():
            ended.set_result(transcript)

    channel.on_destroyed.append(_ended)
    return CallHandle(transcript, ended)


async def _poll(engine: Engine, channel: Channel, check: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout * engine.config.time_scale
    while not check():
        if channel.hanging_up or loop.time() > deadline:
            return bool(check())
        await asyncio.sleep(0.01)
    return True


async def _run_script(engine: Engine, channel: Channel, steps: list[Step]) -> None:
    transcript = channel.transcript
    assert transcript is not None
    for step in steps:
        if channel.hanging_up:
            return
        if isinstance(step, Wait):
            await engine.sleep(step.seconds)
        elif isinstance(step, WaitAnswered):
            ok = await _poll(engine, channel, lambda: channel.state == "Up", step.timeout)
            if not ok:
                return _give_up(engine, channel, "not answered in time")
        elif isinstance(step, WaitBridged):
            ok = await _poll(
                engine,
                channel,
                lambda: bool(
                    (channel.bridge is not None and len(channel.bridge.channels) > 1)
                    or transcript.bridged
                ),
                step.timeout,
            )
            if not ok:
                return _give_up(engine, channel, "not bridged in time")
        elif isinstance(step, WaitPlayback):
            key = "started_at" if step.until == "started" else "finished_at"

            def seen(media: str = step.media, key: str = key) -> bool:
                return any(
                    _media_matches(e["media_uri"], media) and e[key] is not None
                    for e in transcript.media
                )

            ok = await _poll(engine, channel, seen, step.timeout)
            if not ok:
                return _give_up(engine, channel, f"playback {step.media} not {step.until}")
        elif isinstance(step, SendDtmf):
            await engine.send_dtmf(
                channel,
                step.digits,
                between_ms=step.between_ms,
                duration_ms=step.duration_ms,
                from_far_end=True,
            )
        elif isinstance(step, Talk):
            _set_talking(engine, channel, True)
            await engine.sleep(step.seconds)
            _set_talking(engine, channel, False)
        elif isinstance(step, Hangup):
            engine.hangup(channel, 16, request=(16, False), by="caller")
            return
    return None


def _media_matches(uri: str, wanted: str) -> bool:
    """`sound:pbx/greeting` matches "sound:pbx/greeting", "pbx/greeting" and "greeting"."""
    return uri == wanted or uri.endswith((f":{wanted}", f"/{wanted}"))


def _set_talking(engine: Engine, channel: Channel, talking: bool) -> None:
    from pbx_service.simulator.recorder import mark

    channel.talking = talking
    for owner in (channel, channel.bridge):
        if owner is not None and owner.recording is not None:
            mark(engine, owner.recording, owner)


def _give_up(engine: Engine, channel: Channel, why: str) -> None:
    if channel.transcript is not None:
        channel.transcript.script_error = why
    if not channel.hanging_up:
        engine.hangup(channel, 16, request=(16, False), by="caller")

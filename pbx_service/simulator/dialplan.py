"""A mini dialplan: the contexts of the traces README, run priority by priority.

`from-trunk` ends, when Stasis fails, either like the recorded dialplan (Answer,
Playback(ss-noservice), Hangup(34)) or, when `fallback_endpoints` is configured, like our
shipped dialplan: Dial the reception phones for `fallback_ring_seconds`, then VoiceMail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from typing import TYPE_CHECKING, Any

from pbx_service.simulator.channels import Channel
from pbx_service.simulator.media import LiveRecording

if TYPE_CHECKING:
    from pbx_service.simulator.engine import Engine


@dataclasses.dataclass(frozen=True)
class Line:
    app: str
    data: str = ""
    label: str | None = None


Extension = list[Line]

_FROM_TRUNK_HEAD = [
    Line("NoOp", "from-trunk DID=${EXTEN} CID=${CALLERID(all)}"),
    Line("Set", "__DID=${EXTEN}"),
    Line("Stasis", "${STASIS_APP},did=${EXTEN}"),
    Line("NoOp", "after Stasis: STASISSTATUS=${STASISSTATUS}"),
    Line("UserEvent", "StasisReturned,status: ${STASISSTATUS},did: ${EXTEN}"),
    Line("GotoIf", '$["${STASISSTATUS}" = "FAILED"]?fallback'),
    Line("Hangup", ""),
]
_TRACE_FALLBACK = [
    Line("Answer", "", "fallback"),
    Line("Playback", "ss-noservice"),
    Line("Hangup", "34"),
]
_RECEPTION_FALLBACK = [
    Line("Dial", "${FALLBACK_ENDPOINTS},${FALLBACK_RING}", "fallback"),
    Line("VoiceMail", "reception@default,u"),
    Line("Hangup", ""),
]


def _match(pattern: str, exten: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    body = pattern[1:]
    index = 0
    while index < len(body):
        char = body[index]
        if char == "X":
            regex += "[0-9]"
        elif char == "Z":
            regex += "[1-9]"
        elif char == "N":
            regex += "[2-9]"
        elif char == ".":
            regex += ".+"
        elif char == "!":
            regex += ".*"
        elif char == "[":
            end = body.index("]", index)
            regex += "[" + body[index + 1 : end] + "]"
            index = end
        else:
            regex += re.escape(char)
        index += 1
    return re.fullmatch(regex, exten) is not None


class Dialplan:
    """Runs channels through the simulated contexts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        fallback = _RECEPTION_FALLBACK if engine.config.fallback_endpoints else _TRACE_FALLBACK
        self.contexts: dict[str, list[tuple[str, Extension]]] = {
            "from-trunk": [
                ("_X.", _FROM_TRUNK_HEAD + fallback),
                ("_+X.", _FROM_TRUNK_HEAD + fallback),
                (
                    "h",
                    [
                        Line(
                            "NoOp",
                            "from-trunk hangup: STASISSTATUS=${STASISSTATUS} "
                            "HANGUPCAUSE=${HANGUPCAUSE}",
                        )
                    ],
                ),
            ],
            "test-caller": [
                ("s", [Line("Stasis", "caller-sim,role=caller")]),
                ("_[0-9a-z].", [Line("Stasis", "caller-sim,role=${EXTEN}")]),
            ],
            "test-ring": [("_X.", [Line("Ringing"), Line("Wait", "120")])],
            "test-busy": [("_X.", [Line("Busy", "30")])],
            "test-congestion": [("_X.", [Line("Congestion", "30")])],
            "rec-agent-phone": [
                (
                    "_X.",
                    [
                        Line(
                            "NoOp",
                            "agent phone ${EXTEN}: CALLERID(all)=${CALLERID(all)} "
                            "CONNECTEDLINE(all)=${CONNECTEDLINE(all)}",
                        ),
                        Line("Stasis", "caller-sim,role=${EXTEN}"),
                        Line("Hangup"),
                    ],
                ),
            ],
            "rec-devstate": [
                (
                    "s",
                    [
                        Line("NoOp", "rec-devstate: DS=${DEVICE_STATE(Stasis:pbx-callbacks)}"),
                        Line("Set", "DS=${DEVICE_STATE(Stasis:pbx-callbacks)}"),
                        Line("Set", "ES=${EXTENSION_STATE(9999@rec-hints)}"),
                        Line("Set", "DEVICE_STATE(Stasis:pbx-callbacks)=BUSY"),
                        Line("Set", "DEVICE_STATE(Custom:agent101)=INUSE"),
                        Line("NoOp", "DS=${DS} ES=${ES} HINT=${HINT(9999@rec-hints)}"),
                        Line("Stasis", "caller-sim,role=devstate,DS=${DS},ES=${ES}"),
                    ],
                ),
            ],
            "rec-continue": [
                (
                    "s",
                    [
                        Line(
                            "NoOp",
                            "rec-continue reached: EXTEN=${EXTEN} PRIORITY=${PRIORITY} "
                            "CID=${CALLERID(all)} LANG=${CHANNEL(language)}",
                        ),
                        Line("UserEvent", "ContinueReached,exten: ${EXTEN},priority: ${PRIORITY}"),
                        Line("Stasis", "pbx-service,continued,${EXTEN}"),
                        Line(
                            "NoOp", "rec-continue after second Stasis: STASISSTATUS=${STASISSTATUS}"
                        ),
                        Line("Hangup"),
                    ],
                ),
                (
                    "20",
                    [
                        Line("NoOp"),
                        Line("NoOp"),
                        Line("NoOp", "", "lbl"),
                        Line("Stasis", "pbx-service,continued-label,${EXTEN}"),
                        Line("Hangup"),
                    ],
                ),
            ],
        }

    # -- lookup ----------------------------------------------------------------------------
    def extension(self, context: str, exten: str) -> Extension | None:
        for pattern, lines in self.contexts.get(context, []):
            if _match(pattern, exten):
                return lines
        return None

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        lines = self.extension(context, exten)
        return lines is not None and 1 <= priority <= len(lines)

    def label_priority(self, context: str, exten: str, label: str) -> int | None:
        lines = self.extension(context, exten) or []
        for index, line in enumerate(lines, start=1):
            if line.label == label:
                return index
        return None

    def substitute(self, channel: Channel, text: str) -> str:
        engine = self.engine

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "STASIS_APP":
                return engine.config.stasis_app
            if name == "FALLBACK_ENDPOINTS":
                return "&".join(engine.config.fallback_endpoints)
            if name == "FALLBACK_RING":
                return f"{engine.config.fallback_ring_seconds:g}"
            if name == "HANGUPCAUSE":
                return str(channel.hangup_cause)
            builtin = channel.pseudo_variable(name)
            if builtin is not None:
                return builtin
            try:
                read = channel.read_variable(name)
            except ValueError:
                return ""
            return read or ""

        return re.sub(r"\$\{([^}]+)\}", value, text)

    # -- running ---------------------------------------------------------------------------
    def start(self, channel: Channel, context: str, exten: str, priority: int = 1) -> None:
        """Run the dialplan on a channel from a location (in a task)."""
        channel.runs_dialplan = True
        channel.context, channel.exten, channel.priority = context, exten, priority
        channel.dialplan_has_h = self.extension(context, "h") is not None
        channel.spawn(self._run(channel), f"sim-dialplan-{channel.id}")

    def run_h(self, channel: Channel) -> None:
        """The `h` extension at hangup (synchronous: only NoOp lines)."""
        lines = self.extension(channel.context, "h")
        if lines is None:
            return
        channel.exten = "h"
        for index, line in enumerate(lines, start=1):
            channel.priority = index
            self._show(channel, line)
        channel.priority = len(lines) + 1
        channel.app_name = ""
        channel.app_data = ""

    def _show(self, channel: Channel, line: Line) -> str:
        data = self.substitute(channel, line.data)
        channel.app_name = line.app
        channel.app_data = data
        self.engine.emit_channel(
            "ChannelDialplan", channel, dialplan_app=line.app, dialplan_app_data=data
        )
        return data

    def invalid(self, channel: Channel) -> None:
        """No such extension/context: both Local halves destroyed with cause 0."""
        self.engine.hangup(channel, 0, request=(16, True), by="dialplan", dialplan_request=True)

    async def _run(self, channel: Channel) -> None:
        engine = self.engine
        while not channel.hanging_up:
            lines = self.extension(channel.context, channel.exten)
            if lines is None or not 1 <= channel.priority <= len(lines):
                if lines is not None and channel.priority > len(lines):
                    # Falling off the end of an extension hangs up normally.
                    engine.hangup(
                        channel, 16, request=(16, True), by="dialplan", dialplan_request=True
                    )
                    return
                self.invalid(channel)
                return
            line = lines[channel.priority - 1]
            jump = await self._execute(channel, line)
            if channel.hanging_up:
                return
            if jump is None:
                channel.priority += 1
            else:
                channel.context, channel.exten, channel.priority = jump

    async def _execute(self, channel: Channel, line: Line) -> tuple[str, str, int] | None:
        engine = self.engine
        data = self._show(channel, line)
        app = line.app
        if app == "NoOp":
            return None
        if app == "Set":
            name, _, value = data.partition("=")
            function = re.fullmatch(r"DEVICE_STATE\((.*)\)", name)
            if function is not None:
                # Only Custom: devices can be set from the dialplan (trace 11).
                if function.group(1).startswith("Custom:"):
                    engine.set_custom_device_state(function.group(1), value.upper())
                return None
            bare = name.lstrip("_")
            channel.variables[bare] = value
            if name.startswith("_"):
                channel.inheritable.add(bare)
            engine.varset(channel, name, value)
            return None
        if app == "UserEvent":
            parts = data.split(",")
            userevent: dict[str, str] = {"eventname": parts[0]}
            for part in parts[1:]:
                key, _, value = part.partition(":")
                userevent[key.strip()] = value.strip()
            engine.emit_channel(
                "ChannelUserevent", channel, eventname=parts[0], userevent=userevent
            )
            return None
        if app == "GotoIf":
            match = re.fullmatch(r'\$\["(.*)" = "(.*)"\]\?([^:]*)(?::(.*))?', data)
            if match is None:
                return None
            left, right, yes, no = match.groups()
            label = yes if left == right else no
            if not label:
                return None
            priority = self.label_priority(channel.context, channel.exten, label)
            if priority is None:
                return None
            return channel.context, channel.exten, priority
        if app == "Stasis":
            return await self._stasis(channel, data)
        if app == "Answer":
            engine.answer(channel)
            return None
        if app == "Ringing":
            engine.ring(channel, from_dialplan=True)
            return None
        if app == "Wait":
            await engine.sleep(float(data or 0))
            return None
        if app == "Playback":
            await self._playback(channel, data)
            return None
        if app == "Hangup":
            cause = int(data) if data.isdigit() else 16
            engine.hangup(channel, cause, request=(16, True), by="dialplan", dialplan_request=True)
            return None
        if app in ("Busy", "Congestion"):
            self._busy(channel, app)
            return None
        if app == "Dial":
            await self._reception_dial(channel, data)
            return None
        if app == "VoiceMail":
            await self._voicemail(channel, data)
            return None
        return None

    async def _stasis(self, channel: Channel, data: str) -> tuple[str, str, int] | None:
        engine = self.engine
        app, *args = data.split(",")
        channel.variables["STASISSTATUS"] = ""
        if not engine.enter_stasis(channel, app, args):
            channel.variables["STASISSTATUS"] = "FAILED"
            engine.varset(channel, "STASISSTATUS", "FAILED")
            if channel.transcript is not None:
                channel.transcript.stasis_status = "FAILED"
            return None
        await channel.left_stasis.wait()
        target = channel.continue_target
        channel.continue_target = None
        return target

    async def _playback(self, channel: Channel, data: str) -> None:
        engine = self.engine
        name = data.split(",")[0]
        duration = engine.sounds.sound_duration(name, channel.language)
        entry = {
            "playback_id": f"dialplan-{name}",
            "media_uri": f"sound:{name}",
            "target_uri": f"channel:{channel.id}",
            "started_at": engine.now(),
            "finished_at": None,
            "state": "playing",
        }
        if channel.transcript is not None:
            channel.transcript.media.append(entry)
        if duration is not None:
            await engine.sleep(duration)
        entry["finished_at"] = engine.now()
        entry["state"] = "done" if duration is not None else "failed"
        status = "SUCCESS" if duration is not None else "FAILED"
        channel.variables["PLAYBACKSTATUS"] = status
        engine.varset(channel, "PLAYBACKSTATUS", status)

    def _busy(self, channel: Channel, app: str) -> None:
        """Busy()/Congestion() on a Local ;2: Dial BUSY/CONGESTION, ;1 cause 0."""
        engine = self.engine
        cause = 17 if app == "Busy" else 34
        status = "BUSY" if app == "Busy" else "CONGESTION"
        engine.set_state(channel, "Busy")
        peer = channel.peer
        from pbx_service.simulator.engine import DialState

        if peer is not None and isinstance(peer.dialing, DialState):
            engine.emit_dial(peer, status, peer.dialing.dialstring)
            if peer.dialing.created:
                # A created channel stays in Stasis until its dial timeout (trace 05).
                peer.peer = None
                channel.peer = None
                engine.hangup(channel, cause, request=(0, False), by="dialplan")
                return
            peer.dialing.answered = True  # no NOANSWER on the teardown
        channel.hanging_up = True
        engine.emit_channel("ChannelHangupRequest", channel, cause=0)
        if peer is not None and not peer.destroyed:
            peer.hanging_up = True
            engine.teardown(peer, skip_dialplan_request=False)
            engine.destroy(peer, 0)
        channel.peer = None
        channel.hanging_up = False
        channel.runs_dialplan = True
        engine.hangup(channel, cause, request=(16, True), by="dialplan", dialplan_request=True)

    # -- our shipped fallback: ring reception, then voicemail ------------------------------
    async def _reception_dial(self, channel: Channel, data: str) -> None:
        engine = self.engine
        endpoints_text, _, seconds_text = data.rpartition(",")
        endpoints = [e for e in endpoints_text.split("&") if e]
        ring_seconds = float(seconds_text or engine.config.fallback_ring_seconds)
        fallback = {
            "ran": True,
            "rang": [],
            "answered_by": None,
            "voicemail": False,
            "voicemail_recording": None,
            "started_at": engine.now(),
        }
        if channel.transcript is not None:
            channel.transcript.fallback = fallback
        engine.call_log.append(
            {
                "kind": "fallback",
                "channel_id": channel.id,
                "did": channel.variables.get("DID", ""),
                "detail": fallback,
            }
        )
        from pbx_service.simulator.origination import fallback_ring

        answered_by = await fallback_ring(engine, channel, endpoints, ring_seconds, fallback)
        status = "ANSWER" if answered_by else "NOANSWER"
        channel.variables["DIALSTATUS"] = status
        if answered_by:
            fallback["answered_by"] = answered_by
            # The call was connected; when it ends the dialplan ends (no voicemail).
            engine.hangup(
                channel,
                channel.hangup_cause or 16,
                request=(16, True),
                by="dialplan",
                dialplan_request=True,
            )

    async def _voicemail(self, channel: Channel, data: str) -> None:
        engine = self.engine
        fallback = channel.transcript.fallback if channel.transcript is not None else None
        engine.answer(channel)
        for prompt in ("vm-theperson", "vm-isunavail", "beep"):
            await self._playback(channel, prompt)
        did = channel.variables.get("DID", "unknown") or "unknown"
        name = f"voicemail/{did}/msg-{int(time.time())}-{channel.id.replace('.', '-')}"
        recording = LiveRecording(
            name=name,
            format="wav",
            target_uri=f"channel:{channel.id}",
            max_duration=180.0,
            max_silence=0.0,
            if_exists="overwrite",
        )
        from pbx_service.simulator.recorder import finish_recording, start_recording

        engine.recordings[name] = recording
        engine.recording_owner[name] = channel
        channel.recording = recording
        start_recording(engine, recording, channel)
        if fallback is not None:
            fallback["voicemail"] = True
            fallback["voicemail_recording"] = name
        engine.call_log.append(
            {
                "kind": "voicemail",
                "channel_id": channel.id,
                "did": did,
                "recording": name,
                "box": data,
            }
        )
        assert recording.finish is not None
        gone: asyncio.Future[Any] = asyncio.ensure_future(channel.gone.wait())
        finish: asyncio.Future[Any] = recording.finish
        try:
            await asyncio.wait([finish, gone], return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if recording.state == "recording":
            finish_recording(engine, recording, "done")

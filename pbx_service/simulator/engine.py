"""The simulated Asterisk core: channels' lifecycle, Stasis, hangup flows, events.

Everything that changes state emits its events synchronously, in the order Asterisk 22 does
(see ../shared/ari-reference/traces/README.md); timed behaviour (playbacks, recordings,
phones, originate timeouts) runs in tasks whose sleeps are multiplied by `time_scale`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from pbx_service.simulator.apps import AppRegistry
from pbx_service.simulator.bridges import Bridge
from pbx_service.simulator.channels import Channel, ChannelRegistry, Party
from pbx_service.simulator.events import cause_text, envelope
from pbx_service.simulator.media import LiveRecording, Playback, SoundLibrary
from pbx_service.simulator.phones import Phone

log = logging.getLogger(__name__)


class AriError(Exception):
    """A REST error with Asterisk's status and body."""

    def __init__(self, status: int, message: str, *, key: str = "message") -> None:
        super().__init__(message)
        self.status = status
        self.body = {key: message}


def allocation_failed() -> AriError:
    return AriError(500, "Allocation failed", key="error")


@dataclasses.dataclass
class SimConfig:
    """Knobs of the simulated Asterisk."""

    sound_dirs: list[tuple[str, pathlib.Path]]
    recordings_dir: pathlib.Path
    time_scale: float = 1.0
    fallback_endpoints: tuple[str, ...] = ()
    fallback_ring_seconds: float = 20.0
    channelvars: tuple[str, ...] = ("DID", "CALLERID(name)")
    trunks: tuple[str, ...] = ("trunk",)
    stasis_app: str = "pbx-service"
    local_idle_media: str = "silence"  # or "none": Asterisk's Local-channel quirk (trace 04)
    scale_client_timeouts: bool = False  # originate/dial `timeout` on the scaled clock too


@dataclasses.dataclass
class DialState:
    """An outgoing call leg waiting for its far end (originate or /dial)."""

    app: str | None
    app_args: list[str]
    dialstring: str
    answered: bool = False
    extension: tuple[str, str, int] | None = None
    timer: asyncio.Task[Any] | None = None
    created: bool = False  # POST /channels/create + /dial (the channel is already in Stasis)
    other_id: str = ""  # otherChannelId given to /channels/create
    inherited: dict[str, str] = dataclasses.field(default_factory=dict)


class Engine:
    """State and behaviour of one simulated Asterisk."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.apps = AppRegistry()
        self.channels = ChannelRegistry()
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.playback_owner: dict[str, Channel | Bridge] = {}
        self.recordings: dict[str, LiveRecording] = {}
        self.recording_owner: dict[str, Channel | Bridge] = {}
        self.device_states: dict[str, str] = {}
        self.phones: dict[str, Phone] = {}
        self.sounds = SoundLibrary(config.sound_dirs, config.recordings_dir)
        self.started = time.time()
        self.global_vars: dict[str, str] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.call_log: list[dict[str, Any]] = []
        self.snoops: dict[str, list[Channel]] = {}
        self.custom_device_states: dict[str, str] = {}
        self.phone_device_states: dict[str, str] = {}
        self.hints: dict[str, str] = {
            "9999@rec-hints": "Stasis:pbx-callbacks",
            "9998@rec-hints": "Custom:agent101",
        }
        self.functions: dict[str, Callable[[str], str]] = {
            "DEVICE_STATE": self.device_state,
            "EXTENSION_STATE": self._extension_state,
            "HINT": lambda arg: self.hints.get(arg, ""),
        }
        self.snoop_counter = 6
        from pbx_service.simulator.dialplan import Dialplan

        self.dialplan = Dialplan(self)

    # -- time ------------------------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Sleep for simulated seconds."""
        await asyncio.sleep(max(0.0, seconds) * self.config.time_scale)

    def now(self) -> float:
        """Simulated seconds since start (for transcripts)."""
        loop = asyncio.get_running_loop()
        scale = self.config.time_scale or 1.0
        return round(loop.time() / scale, 3)

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task %s failed", task.get_name(), exc_info=task.exception())

    # -- delivery --------------------------------------------------------------------------
    def _deliver(self, app_names: Iterable[str], event: dict[str, Any]) -> None:
        seen: set[str] = set()
        for name in app_names:
            if name in seen:
                continue
            seen.add(name)
            app = self.apps.get(name)
            if app is not None:
                app.deliver(event)
        for app in self.apps.all_subscribers():
            if app.name not in seen:
                app.deliver(event)

    def emit_channel(self, event_type: str, channel: Channel, **fields: Any) -> None:
        """An event about a channel, to every app subscribed to it."""
        event = envelope(event_type, {**fields, "channel": channel.to_json()})
        self._deliver(list(channel.subscribers), event)

    def emit_to(self, app_names: Iterable[str], event_type: str, **fields: Any) -> None:
        self._deliver(app_names, envelope(event_type, fields))

    def emit_stasis(self, event_type: str, channel: Channel, app: str, **fields: Any) -> None:
        """StasisStart/StasisEnd go to the Stasis app only."""
        event = envelope(event_type, {**fields, "channel": channel.to_json()})
        target = self.apps.get(app)
        if target is not None:
            target.deliver(event)

    def emit_dial(self, peer: Channel, status: str, dialstring: str) -> None:
        event = envelope(
            "Dial",
            {"dialstatus": status, "forward": "", "dialstring": dialstring, "peer": peer.to_json()},
        )
        self._deliver(list(peer.subscribers), event)

    def varset(self, channel: Channel, variable: str, value: str) -> None:
        self.emit_channel("ChannelVarset", channel, variable=variable, value=value)

    def target_apps(self, owner: Channel | Bridge) -> list[str]:
        if isinstance(owner, Channel):
            return list(owner.subscribers)
        return sorted(owner.apps)

    # -- channels --------------------------------------------------------------------------
    def new_channel(
        self,
        *,
        name: str,
        tech: str,
        state: str,
        context: str,
        exten: str,
        channel_id: str | None = None,
    ) -> Channel:
        channel = Channel(
            channel_id=channel_id or self.channels.new_id(),
            name=name,
            tech=tech,
            state=state,
            context=context,
            exten=exten,
            channelvar_names=self.config.channelvars,
        )
        channel.functions = self.functions
        self.channels.add(channel)
        self.emit_to([], "ChannelCreated", channel=channel.to_json())
        return channel

    def set_state(self, channel: Channel, state: str) -> None:
        if channel.state == state:
            return
        channel.state = state
        self.emit_channel("ChannelStateChange", channel)
        if channel.phone_endpoint is not None:
            self.phone_device_changed(channel.phone_endpoint)
        if state == "Up" and channel.tech == "Local":
            self.local_device_state(channel, "INUSE")
        if state == "Up" and channel.half == 2 and channel.pending_caller is not None:
            self.set_caller(channel)  # caller id updated while ringing shows now (trace 13)
        if state == "Up":
            channel.answered.set()
            if channel.transcript is not None and channel.transcript.answered_at is None:
                channel.transcript.answered_at = self.now()

    def set_caller(
        self,
        channel: Channel,
        name: str | None = None,
        number: str | None = None,
        *,
        emit: bool = True,
    ) -> None:
        if channel.pending_caller is not None:
            channel.caller = channel.pending_caller
            channel.pending_caller = None
        if name is not None:
            channel.caller.name = name
        if number is not None:
            channel.caller.number = number
        if emit:
            self.emit_channel(
                "ChannelCallerId",
                channel,
                caller_presentation=0,
                caller_presentation_txt="Presentation Allowed, Not Screened",
            )

    def set_connected(
        self,
        channel: Channel,
        name: str | None = None,
        number: str | None = None,
        *,
        emit: bool = True,
    ) -> None:
        if name is not None:
            channel.connected.name = name
        if number is not None:
            channel.connected.number = number
        if emit:
            self.emit_channel("ChannelConnectedLine", channel)

    def find_channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise AriError(404, "Channel not found")
        return channel

    def stasis_channel(self, channel_id: str, *, code: int = 409) -> Channel:
        channel = self.find_channel(channel_id)
        if channel.stasis_app is None:
            raise AriError(code, "Channel not in Stasis application")
        return channel

    def subscribe(self, channel: Channel, app: str, *, persistent: bool) -> None:
        self.apps.ensure(app)
        if persistent or app not in channel.subscribers:
            channel.subscribers[app] = persistent or channel.subscribers.get(app, False)

    # -- Stasis ----------------------------------------------------------------------------
    def enter_stasis(self, channel: Channel, app: str, args: list[str]) -> bool:
        """Put a channel into a Stasis app; False (STASISSTATUS=FAILED) without a socket."""
        channel.app_name = "Stasis"
        channel.app_data = ",".join([app, *args])
        self.varset(channel, "STASISSTATUS", "")
        if not self.apps.active(app):
            log.info("Stasis app %r not active or missing", app)
            return False
        self.subscribe(channel, app, persistent=False)
        channel.stasis_app = app
        channel.stasis_args = list(args)
        channel.left_stasis.clear()
        self.emit_stasis("StasisStart", channel, app, args=list(args))
        self._snoop_touches_bridge(channel)
        return True

    def _snoop_touches_bridge(self, channel: Channel) -> None:
        """A snoop attaching to or leaving a bridged channel refreshes BRIDGEPEER (trace 17)."""
        target = channel.snoop_target
        if target is not None and target.bridge is not None and not target.hanging_up:
            self.update_bridge_peers(target.bridge)

    def leave_stasis(
        self, channel: Channel, continue_to: tuple[str, str, int] | None = None
    ) -> None:
        """StasisEnd, the app's temporary subscription ends, STASISSTATUS=SUCCESS."""
        app = channel.stasis_app
        if app is None:
            return
        channel.control.flush(channel.id)
        self.emit_stasis("StasisEnd", channel, app)
        channel.stasis_app = None
        if not channel.subscribers.get(app, True):
            del channel.subscribers[app]
        if channel.snoop_spy in ("both", "out"):
            # Only a snoop with a write-direction hook disturbs the bridge when it goes (17).
            self._snoop_touches_bridge(channel)
        if channel.hanging_up and channel.pending_caller is not None:
            self.set_caller(channel)
        if continue_to is not None:
            # Asterisk moves to priority-1 first and reports it with the Stasis app (trace 15).
            channel.context, channel.exten, channel.priority = continue_to
            channel.priority -= 1
            self.emit_channel(
                "ChannelDialplan",
                channel,
                dialplan_app="Stasis",
                dialplan_app_data=channel.app_data,
            )
        self.varset(channel, "STASISSTATUS", "SUCCESS")
        channel.variables["STASISSTATUS"] = "SUCCESS"
        if channel.transcript is not None:
            channel.transcript.stasis_status = "SUCCESS"
        channel.left_stasis.set()
        self.collect_apps()

    def collect_apps(self) -> None:
        """An app without a socket and without channels ceases to exist."""
        in_use = {app for channel in self.channels for app in channel.subscribers}
        for name in list(self.apps.apps):
            app = self.apps.apps[name]
            if app.socket is None and name not in in_use and not app.bridge_ids:
                del self.apps.apps[name]

    # -- hangup ----------------------------------------------------------------------------
    def hangup(
        self,
        channel: Channel,
        cause: int,
        *,
        request: tuple[int, bool] | None,
        by: str,
        dialplan_request: bool = False,
    ) -> None:
        """Hang a channel (and its Local peer) up with the event order of the traces.

        `request`: the (cause, soft) of the first ChannelHangupRequest, None for none;
        `by`: who hung up, for transcripts ("app", "caller", "phone", "dialplan", "timeout").
        """
        if channel.hanging_up or channel.destroyed:
            return
        channel.hanging_up = True
        channel.hangup_cause = cause
        if request is not None:
            req_cause, soft = request
            if soft:
                self.emit_channel("ChannelHangupRequest", channel, cause=req_cause, soft=True)
            else:
                self.emit_channel("ChannelHangupRequest", channel, cause=req_cause)
        self._record_end(channel, cause, by)
        self.teardown(channel, skip_dialplan_request=dialplan_request)
        dial = channel.dialing
        never_dialled = isinstance(dial, DialState) and dial.created and dial.timer is None
        if (
            isinstance(dial, DialState)
            and not dial.answered
            and by == "app"
            and (not never_dialled)
        ):
            self.emit_dial(channel, "BUSY" if cause == 17 else "NOANSWER", dial.dialstring)
        peer = channel.peer
        if peer is not None and not peer.hanging_up and not peer.destroyed:
            peer.hanging_up = True
            peer.hangup_cause = cause
            self.emit_channel("ChannelHangupRequest", peer, cause=cause)
            self._record_end(peer, cause, "peer")
        self.destroy(channel, cause)
        if peer is not None and not peer.destroyed:
            self.teardown(peer, skip_dialplan_request=False)
            self.destroy(peer, cause)

    def _record_end(self, channel: Channel, cause: int, by: str) -> None:
        transcript = channel.transcript
        if transcript is not None and transcript.hangup_cause is None:
            transcript.hangup_cause = cause
            transcript.hungup_by = by
            transcript.ended_at = self.now()

    def teardown(self, channel: Channel, *, skip_dialplan_request: bool) -> None:
        """Everything between the hangup request and ChannelDestroyed."""
        channel.control.stop()
        current = asyncio.current_task()
        channel.cancel_tasks(keep=current)
        dial = channel.dialing
        if isinstance(dial, DialState) and dial.timer is not None and dial.timer is not current:
            dial.timer.cancel()
        playback = channel.playback
        if playback is not None:
            playback.stopped = True
            playback.state = "failed"
            channel.playback = None
            self.finish_playback(playback, channel, "failed")
        for pending in channel.pending_playbacks:
            self.playbacks.pop(pending.id, None)
        channel.pending_playbacks.clear()
        if channel.recording is not None:
            from pbx_service.simulator.recorder import finish_recording

            finish_recording(self, channel.recording, "done")
        if channel.bridge is not None:
            self.leave_bridge(channel, hangup=True)
        if channel.stasis_app is not None:
            self.leave_stasis(channel)
        if channel.runs_dialplan:
            if not skip_dialplan_request:
                self.emit_channel("ChannelHangupRequest", channel, cause=16, soft=True)
            self.dialplan.run_h(channel)

    async def _end_snoops_later(self, snoops: list[Channel], target: Channel, cause: int) -> None:
        # The audiohooks detach a little later (trace 12: after two further hangups).
        await self.sleep(0.02)
        self._end_snoops(snoops, target, cause)

    def _end_snoops(self, snoops: list[Channel], target: Channel, cause: int) -> None:
        for snoop in snoops:
            if not snoop.destroyed:
                self.hangup(snoop, cause, request=None, by="snoop-target-gone")
        if not target.destroyed:
            self._destroy_now(target, cause)

    def local_device_state(self, channel: Channel, state: str) -> None:
        """Local/<exten>@<context> device states, seen only by subscribeAll apps."""
        device = channel.name.split(";")[0].rsplit("-", 1)[0]
        event = envelope("DeviceStateChanged", {"device_state": {"name": device, "state": state}})
        for app in list(self.apps.apps.values()):
            if app.subscribe_all or "__AST_DEVICE_STATE_ALL_TOPIC" in app.device_names:
                app.deliver(event)

    def destroy(self, channel: Channel, cause: int) -> None:
        snoops = self.snoops.pop(channel.id, [])
        if snoops:
            # A snoop holds its target: the snoops end, then the target is destroyed, after
            # the rest of the hangup has been reported (trace 12).
            self.spawn(self._end_snoops_later(snoops, channel, cause), f"sim-snoops-{channel.id}")
            return
        self._destroy_now(channel, cause)

    def _destroy_now(self, channel: Channel, cause: int) -> None:
        channel.destroyed = True
        if channel.app_name == "Stasis" and channel.half == 1:
            channel.app_name = "AppDial2"
            channel.app_data = "(Outgoing Line)"
        self.emit_channel("ChannelDestroyed", channel, cause=cause, cause_txt=cause_text(cause))
        self.channels.remove(channel)
        if channel.phone_endpoint is not None:
            self.phone_device_changed(channel.phone_endpoint)
        if channel.tech == "Local":
            self.local_device_state(channel, "NOT_INUSE")
        channel.gone.set()
        for callback in channel.on_destroyed:
            callback()
        channel.left_stasis.set()
        channel.answered.set()
        self.collect_apps()
        for bridge in self.bridges.values():
            if bridge.announcer_channel is channel:
                bridge.announcer_channel = None

    # -- answering (far end or app) --------------------------------------------------------
    def answer(self, channel: Channel) -> None:
        """Answer a channel; a Local ;2 answering makes its dialling ;1 answered too."""
        if channel.state == "Up":
            return
        self.set_state(channel, "Up")
        peer = channel.peer
        if peer is not None and channel.half == 2 and peer.state != "Up":
            self.set_state(peer, "Up")
            self.far_end_answered(peer)

    def far_end_answered(self, channel: Channel) -> None:
        """The dialled far end answered: Dial ANSWER and the app's StasisStart."""
        dial = channel.dialing
        if not isinstance(dial, DialState) or dial.answered:
            return
        dial.answered = True
        if dial.timer is not None and dial.timer is not asyncio.current_task():
            dial.timer.cancel()
        if channel.state != "Up":
            self.set_state(channel, "Up")
        self.emit_dial(channel, "ANSWER", dial.dialstring)
        if dial.created:
            return
        if dial.app is not None:
            if not self.enter_stasis(channel, dial.app, dial.app_args):
                self.hangup(channel, 16, request=None, by="stasis-failed")
        elif dial.extension is not None:
            context, exten, priority = dial.extension
            self.dialplan.start(channel, context, exten, priority)

    def ring(self, channel: Channel, *, from_dialplan: bool = False) -> None:
        """Ringing indicated on a channel: the dialling Local ;1 sees Ringing."""
        peer = channel.peer
        if peer is not None and channel.half == 2:
            self.far_end_ringing(peer, defer_dial=from_dialplan)

    def far_end_ringing(self, channel: Channel, *, defer_dial: bool = False) -> None:
        dial = channel.dialing
        if channel.state in ("Ringing", "Up"):
            return
        self.set_state(channel, "Ringing")
        if isinstance(dial, DialState):
            if defer_dial:
                # Dial() reports RINGING from its own thread: after the next dialplan step.
                asyncio.get_running_loop().call_soon(self._dial_ringing, channel, dial)
            else:
                self.emit_dial(channel, "RINGING", dial.dialstring)

    def _dial_ringing(self, channel: Channel, dial: DialState) -> None:
        if not channel.hanging_up and not dial.answered:
            self.emit_dial(channel, "RINGING", dial.dialstring)

    # -- bridges ---------------------------------------------------------------------------
    def bridge_peer_names(self, bridge: Bridge, channel: Channel) -> str:
        names = []
        if bridge.moh_class is not None:
            names.append(bridge.announcer_name)
        if bridge.recording is not None:
            names.append(bridge.recorder_name)
        names += [other.name for other in bridge.channels if other is not channel]
        return ",".join(names)

    def update_bridge_peers(self, bridge: Bridge, skip: Channel | None = None) -> None:
        if bridge.bridge_type != "mixing":
            return
        for member in bridge.channels:
            if member is skip:
                continue
            value = self.bridge_peer_names(bridge, member)
            # Asterisk sets BRIDGEPEER on every change of participants, even to the same
            # value (trace 17); it is not cleared for a lone member.
            if value:
                member.variables["BRIDGEPEER"] = value
                self.varset(member, "BRIDGEPEER", value)

    def join_bridge(
        self, bridge: Bridge, channel: Channel, role: str, inhibit_connected: bool
    ) -> None:
        if channel.bridge is bridge:
            return
        if channel.bridge is not None:
            self.leave_bridge(channel, hangup=False)
        channel.bridge = bridge
        channel.bridge_role = role
        bridge.channels.append(channel)
        self.emit_to(
            sorted(bridge.apps),
            "ChannelEnteredBridge",
            bridge=bridge.to_json(),
            channel=channel.to_json(),
        )
        self.update_bridge_peers(bridge)
        others = [other for other in bridge.channels if other is not channel]
        if bridge.bridge_type == "mixing" and len(others) == 1 and not inhibit_connected:
            other = others[0]
            # Connected-line updates are sent only when something changes (trace 17 re-join).
            if channel.connected != other.caller:
                self.set_connected(channel, other.caller.name, other.caller.number)
            if other.connected != channel.caller:
                self.set_connected(other, channel.caller.name, channel.caller.number)
            for half in (channel, other):
                if half.peer is not None:
                    half.peer.pending_caller = party_copy(half.connected)
        for member in bridge.channels:
            transcript = member.transcript
            if transcript is not None:
                for other in bridge.channels:
                    if other is not member:
                        transcript.bridged.append(
                            {
                                "bridge_id": bridge.id,
                                "channel_id": other.id,
                                "channel_name": other.name,
                                "endpoint": other.phone_endpoint,
                                "at": self.now(),
                            }
                        )

    def leave_bridge(self, channel: Channel, *, hangup: bool) -> None:
        bridge = channel.bridge
        if bridge is None:
            return
        if bridge.bridge_type == "mixing" and channel.variables.get("BRIDGEPEER"):
            channel.variables["BRIDGEPEER"] = ""
            self.varset(channel, "BRIDGEPEER", "")
        before = bridge.technology
        bridge.channels.remove(channel)
        channel.bridge = None
        bridge.technology_override = before
        snapshot = bridge.to_json()
        bridge.technology_override = None
        self.emit_to(
            sorted(bridge.apps), "ChannelLeftBridge", bridge=snapshot, channel=channel.to_json()
        )
        self.update_bridge_peers(bridge)
        if hangup and bridge.recording is not None and len(bridge.channels) == 1:
            # The remaining party's connected line is refreshed (trace 03).
            self.emit_channel("ChannelConnectedLine", bridge.channels[0])
        if not bridge.channels and bridge.recording is not None:
            from pbx_service.simulator.recorder import finish_recording

            finish_recording(self, bridge.recording, "done")

    def destroy_bridge(self, bridge: Bridge) -> None:
        for channel in list(bridge.channels):
            self.leave_bridge(channel, hangup=False)
        if bridge.recording is not None:
            from pbx_service.simulator.recorder import finish_recording

            finish_recording(self, bridge.recording, "done")
        for playback in list(bridge.playbacks):
            playback.stopped = True
            playback.poke()
        bridge.control.flush(bridge.id)
        bridge.destroyed = True
        self.bridges.pop(bridge.id, None)
        self.emit_to(sorted(bridge.apps), "BridgeDestroyed", bridge=bridge.to_json())
        for app_name in bridge.apps:
            app = self.apps.get(app_name)
            if app is not None:
                app.bridge_ids.discard(bridge.id)
        self.collect_apps()

    # -- playbacks -------------------------------------------------------------------------
    def finish_playback(self, playback: Playback, owner: Channel | Bridge, state: str) -> None:
        playback.state = state
        self.playbacks.pop(playback.id, None)
        self.playback_owner.pop(playback.id, None)
        self.emit_to(self.target_apps(owner), "PlaybackFinished", playback=playback.to_json())
        self._transcript_media(owner, playback, "finished_at", state)

    def _transcript_media(
        self, owner: Channel | Bridge, playback: Playback, key: str, state: str
    ) -> None:
        channels = [owner] if isinstance(owner, Channel) else list(owner.channels)
        for channel in channels:
            for party in (channel, channel.peer):
                if party is None or party.transcript is None:
                    continue
                entries = party.transcript.media
                media_uri = playback.media[playback.index]
                if key == "started_at":
                    entries.append(
                        {
                            "playback_id": playback.id,
                            "media_uri": media_uri,
                            "target_uri": playback.target_uri,
                            "started_at": self.now(),
                            "finished_at": None,
                            "state": "playing",
                        }
                    )
                    continue
                for entry in reversed(entries):
                    if entry["playback_id"] == playback.id and entry["finished_at"] is None:
                        entry["finished_at"] = self.now()
                        entry["state"] = state
                        break

    async def run_playback(self, playback: Playback, owner: Channel | Bridge) -> None:
        """Play each media item in turn (behaviour 9)."""
        from pbx_service.simulator.media import SUPPORTED_SCHEMES, PlaybackStopped

        if isinstance(owner, Channel):
            if playback in owner.pending_playbacks:
                owner.pending_playbacks.remove(playback)
            if playback.stopped or owner.hanging_up:
                self.playbacks.pop(playback.id, None)
                return
            owner.playback = playback
            owner.moh = False
        apps = self.target_apps(owner)
        try:
            for index, media in enumerate(playback.media):
                playback.index = index
                playback.state = "playing"
                self.emit_to(apps, "PlaybackStarted", playback=playback.to_json())
                self._transcript_media(owner, playback, "started_at", "playing")
                scheme = media.partition(":")[0]
                if scheme not in SUPPORTED_SCHEMES:
                    # Asterisk never finishes an unsupported scheme; the id is forgotten.
                    self.playbacks.pop(playback.id, None)
                    self.playback_owner.pop(playback.id, None)
                    return
                if (
                    isinstance(owner, Bridge)
                    and owner.bridge_type == "holding"
                    and (
                        owner.moh_class is not None
                        or any(c.bridge_role == "announcer" for c in owner.channels)
                    )
                ):
                    self.finish_playback(playback, owner, "failed")
                    return
                duration = self.sounds.media_duration(media, playback.language)
                if duration is None:
                    self.finish_playback(playback, owner, "failed")
                    return
                await playback.play_for(duration, self.config.time_scale)
                if index + 1 < len(playback.media):
                    playback.state = "continuing"
                    self.emit_to(apps, "PlaybackContinuing", playback=playback.to_json())
            self.finish_playback(playback, owner, "done")
        except PlaybackStopped:
            if playback.state != "failed":
                self.finish_playback(playback, owner, "done")
        finally:
            if isinstance(owner, Channel) and owner.playback is playback:
                owner.playback = None
            if isinstance(owner, Bridge) and playback in owner.playbacks:
                owner.playbacks.remove(playback)

    def stop_playback(self, playback_id: str) -> None:
        playback = self.playbacks.get(playback_id)
        if playback is None:
            raise AriError(404, "Playback not found")
        owner = self.playback_owner.get(playback_id)
        playback.stopped = True
        if isinstance(owner, Channel) and playback in owner.pending_playbacks:
            owner.pending_playbacks.remove(playback)
            self.playbacks.pop(playback_id, None)
            self.playback_owner.pop(playback_id, None)
            return
        if playback.state == "paused" or playback.paused:
            playback.paused = False
        playback.poke()

    # -- DTMF ------------------------------------------------------------------------------
    def dtmf_received(self, channel: Channel, digit: str, duration_ms: int) -> None:
        """A digit arrived on a channel from its far end."""
        if channel.destroyed:
            return
        self.emit_channel("ChannelDtmfReceived", channel, digit=digit, duration_ms=duration_ms)
        recording = channel.recording
        if recording is not None and recording.state == "recording":
            terminators = recording.terminate_on
            if terminators == "any" or (terminators not in ("none", "") and digit in terminators):
                from pbx_service.simulator.recorder import finish_recording

                finish_recording(self, recording, "done")

    async def send_dtmf(
        self,
        sender: Channel,
        digits: str,
        *,
        before_ms: int = 0,
        between_ms: int = 100,
        duration_ms: int = 100,
        after_ms: int = 0,
        from_far_end: bool = False,
    ) -> None:
        """Digits sent on `sender`; each arrives at the end of the digit.

        `from_far_end`: the caller/phone behind `sender` presses keys, so the digits are
        received on `sender` itself. Otherwise the app sends them: a Local half's peer
        receives them, a PJSIP far end (caller, phone) hears them (transcript, phone log).
        """
        if before_ms:
            await self.sleep(before_ms / 1000)
        for position, digit in enumerate(digits):
            if digit in ",w":
                await self.sleep(0.5)
                continue
            # The first digit arrives ~100 ms + its duration after the request (trace 02).
            await self.sleep((duration_ms + (100 if position == 0 else 0)) / 1000)
            if from_far_end:
                if sender.transcript is not None:
                    sender.transcript.dtmf_sent.append({"digit": digit, "at": self.now()})
                self.dtmf_received(sender, digit, duration_ms)
            elif sender.peer is not None:
                self.dtmf_received(sender.peer, digit, duration_ms)
            else:
                self._far_end_hears_dtmf(sender, digit)
            if position + 1 < len(digits):
                await self.sleep(between_ms / 1000)
        if after_ms:
            await self.sleep(after_ms / 1000)

    def _far_end_hears_dtmf(self, channel: Channel, digit: str) -> None:
        if channel.transcript is not None:
            channel.transcript.dtmf_received.append({"digit": digit, "at": self.now()})
        if channel.phone_endpoint is not None:
            phone = self.phones.get(channel.phone_endpoint)
            if phone is not None and phone.calls:
                phone.calls[-1].setdefault("dtmf_received", []).append(digit)

    # -- device states ---------------------------------------------------------------------
    def device_state(self, name: str) -> str:
        """A device's state as DEVICE_STATE() and GET /deviceStates/{name} report it."""
        if name.startswith("Custom:"):
            return self.custom_device_states.get(name, "UNKNOWN")
        if name.startswith("Stasis:"):
            return self.device_states.get(name, "UNKNOWN")
        if name.startswith("PJSIP/"):
            phone = self.phones.get(name)
            if phone is None or not phone.behaviour.online:
                return "UNAVAILABLE"
            states = [
                c.state for c in self.channels if c.phone_endpoint == name and not c.destroyed
            ]
            if not states:
                return "NOT_INUSE"
            if all(state in ("Ring", "Ringing", "Down") for state in states):
                return "RINGING"
            return "INUSE"
        return "INVALID" if "/" not in name and ":" not in name else "UNKNOWN"

    def _extension_state(self, arg: str) -> str:
        device = self.hints.get(arg)
        if device is None:
            return "UNKNOWN"
        state = self.device_state(device)
        return {"INVALID": "UNAVAILABLE", "UNKNOWN": "NOT_INUSE"}.get(state, state)

    def set_custom_device_state(self, name: str, state: str) -> None:
        """Set(DEVICE_STATE(Custom:x)=STATE) from the dialplan."""
        old = self.custom_device_states.get(name, "UNKNOWN")
        self.custom_device_states[name] = state
        if old != state:
            event = envelope("DeviceStateChanged", {"device_state": {"name": name, "state": state}})
            for app in list(self.apps.apps.values()):
                if app.subscribe_all or app.wants_device(name):
                    app.deliver(event)

    def set_device_state(self, name: str, state: str | None) -> None:
        old = self.device_states.get(name, "UNKNOWN")
        if state is None:
            self.device_states.pop(name, None)
            return
        self.device_states[name] = state
        if old == state:
            return
        event = envelope("DeviceStateChanged", {"device_state": {"name": name, "state": state}})
        for app in list(self.apps.apps.values()):
            if app.subscribe_all or app.wants_device(name):
                app.deliver(event)

    # -- endpoints -------------------------------------------------------------------------
    def endpoint_json(self, phone: Phone) -> dict[str, Any]:
        channel_ids = [c.id for c in self.channels if c.phone_endpoint == phone.endpoint]
        return {
            "technology": phone.tech,
            "resource": phone.resource,
            "state": phone.state,
            "channel_ids": channel_ids,
        }

    def endpoint_changed(self, phone: Phone) -> None:
        event = envelope("EndpointStateChange", {"endpoint": self.endpoint_json(phone)})
        for app in list(self.apps.apps.values()):
            # "endpoint:PJSIP" subscribes to every endpoint of that technology.
            technology = phone.endpoint.split("/", 1)[0]
            if (
                app.subscribe_all
                or phone.endpoint in app.endpoint_ids
                or technology in app.endpoint_ids
            ):
                app.deliver(event)
        self.phone_device_changed(phone.endpoint)

    def phone_device_changed(self, endpoint: str) -> None:
        """DeviceStateChanged for a phone's PJSIP device when its state changes."""
        if endpoint not in self.phones:
            return
        state = self.device_state(endpoint)
        if self.phone_device_states.get(endpoint) == state:
            return
        self.phone_device_states[endpoint] = state
        event = envelope("DeviceStateChanged", {"device_state": {"name": endpoint, "state": state}})
        for app in list(self.apps.apps.values()):
            if app.subscribe_all or app.wants_device(endpoint):
                app.deliver(event)

    # -- lifecycle -------------------------------------------------------------------------
    async def shutdown(self) -> None:
        for channel in list(self.channels):
            channel.control.stop()
            channel.cancel_tasks()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task


def party_copy(party: Party) -> Party:
    return Party(party.name, party.number)

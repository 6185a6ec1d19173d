"""One inbound call, driven by one coroutine over the call's own ordered event queue.

The session owns every channel and bridge it creates; the dispatcher routes their events into
`queue`. Decisions (who wins the ring, which outcome) are pure code in `ringing.py` and
`outcome.py`; this module only sequences them and runs the resulting ARI commands.

A caller who hangs up is a normal event at any step, never an error: ARI answers commands on a
vanished channel with 404/409/422, which `_ari` turns into `CallerGone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from pbx_service.ari import AriEvent, AriHTTPError, AriNotFound, AriRest, probe
from pbx_service.ari.errors import AriError
from pbx_service.callbacks.rules import callback_due
from pbx_service.calls.afterhours import CallAction, CallDisposition, decide_call
from pbx_service.calls.agents import AgentBoard
from pbx_service.calls.hours import BusinessHours
from pbx_service.calls.ivr import CancelTimer, IvrSession, Play, Route, StartTimer, StopPlayback
from pbx_service.calls.ivr import Command as IvrCommand
from pbx_service.calls.numbers import clean_text, to_e164
from pbx_service.calls.outcome import CallFacts, decide_outcome
from pbx_service.calls.queueing import Tier
from pbx_service.calls.ringing import (
    BridgeWith,
    HangupLeg,
    Leg,
    NobodyAnswered,
    RingAll,
    RingCommand,
    cause_result,
)
from pbx_service.config import Config
from pbx_service.config.ivr import (
    ExtensionAction,
    SelfServiceAction,
    TeamAction,
    VoicemailAction,
)
from pbx_service.contacts import Contact
from pbx_service.store.errors import DatabaseUnavailableError
from pbx_service.store.records import CallRecord
from pbx_service.store.reservations import AgentReservations

log = logging.getLogger(__name__)

T = TypeVar("T")

# A synthetic event the application puts into each session's queue after a WebSocket gap,
# carrying the ids of the channels and bridges that still exist.
RESYNC_EVENT = "PbxResync"

# How often a queued caller's team is checked for an agent who became free.
QUEUE_POLL_SECONDS = 0.25

# After the caller leaves, how long to wait for the events that close the books
# (RecordingFinished of a voicemail, ChannelDestroyed of legs).
SETTLE_SECONDS = 2.0


class ContactLookup(Protocol):
    """The known-customers directory as the flow needs it (never raises for outages)."""

    async def get(self, number: str | None) -> Contact | None: ...


class CallerGone(Exception):
    """The caller hung up; unwinds the flow to the bookkeeping in `run`."""


@dataclass(frozen=True, slots=True)
class CallPorts:
    """What a session needs from the daemon, passed in so the session is testable alone."""

    rest: AriRest
    config: Config
    submit: Callable[[CallRecord], None]
    route: Callable[[str, asyncio.Queue[AriEvent]], None]
    unroute: Callable[[str], None]
    hours: Mapping[str, BusinessHours]
    board: AgentBoard
    contacts: ContactLookup | None = None
    # Agent reservations shared by every daemon on the database (None: this daemon only).
    reservations: AgentReservations | None = None
    # Caller number (E.164) -> agent id, from the config's direct_lines.
    direct_lines: Mapping[str, str] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def media(name: str) -> str:
    """Our prompts live under Asterisk's sounds/<lang>/pbx/ (see ivr_prompts/README.md)."""
    return name if ":" in name else f"sound:pbx/{name}"


def new_id() -> str:
    # Fixed-length random ids: ARI refuses a channelId that is a prefix of a live one.
    return uuid.uuid4().hex


class InboundCall:
    def __init__(self, ports: CallPorts, start: AriEvent, *, node: str | None = None) -> None:
        channel = start.channel
        assert channel is not None, "StasisStart always carries a channel"
        self.ports = ports
        self.config = ports.config
        self._start_received = start.received
        self.channel_id = channel.id
        self.queue: asyncio.Queue[AriEvent] = asyncio.Queue(maxsize=1000)
        self.did = _did_from(start.args, channel.dialplan.exten if channel.dialplan else "")
        line = self.config.line_for(self.did)
        self.language = (line.language if line else None) or self.config.language
        self.record = CallRecord(
            id=uuid.uuid4(),
            channel_id=channel.id,
            linkedid=None,
            node=node,
            started_at=ports.clock(),
            did=self.did,
            line_label=line.label if line else None,
            listed=line is not None,
            caller_number=to_e164(channel.caller.number if channel.caller else None),
            caller_name=clean_text(channel.caller.name if channel.caller else None),
        )
        self.caller_gone = False
        self.bridge_id: str | None = None
        self.agent_channel: str | None = None
        self.schedule = self.config.schedule_for(line)
        self.voicemail_seconds: float | None = None
        self.failed = False
        self.overflowed = False
        self.callback_requested = False
        self.agent_id: str | None = None
        self.agent_team: str | None = None
        self.contact: Contact | None = None
        self._answer_mono: float | None = None
        self._moh_on = False
        self._bridged_mono: float | None = None
        self._start_mono = time.monotonic()
        self._step = "start"
        self._owned: set[str] = set()
        # Route the caller's channel now, synchronously: the next event may already be queued.
        self.own(self.channel_id)

    # ---- event plumbing -------------------------------------------------------------------

    def own(self, key: str) -> None:
        self._owned.add(key)
        self.ports.route(key, self.queue)

    def event(self, kind: str, **detail: object) -> None:
        self.record.add_event(self.ports.clock(), kind, **detail)

    async def next_event(self, timeout: float | None) -> AriEvent | None:
        """The next event of this call, or None when `timeout` passes. Raises CallerGone when
        the caller's channel leaves, unless the flow already knows."""
        try:
            if timeout is None:
                ev = await self.queue.get()
            else:
                ev = await asyncio.wait_for(self.queue.get(), max(timeout, 0))
        except TimeoutError:
            probe.clear()  # what follows is the timer's doing, not an earlier event's
            return None
        probe.mark(ev.received)
        self._observe(ev)
        return ev

    def _observe(self, ev: AriEvent) -> None:
        if ev.channel_id != self.channel_id:
            if ev.type == RESYNC_EVENT and self.channel_id not in ev.raw.get("channels", ()):
                self._caller_left("vanished during a connection gap")
            return
        if ev.type == "ChannelHangupRequest" and not ev.soft:
            self._caller_left(f"hangup cause {ev.cause}")
        elif ev.type in ("StasisEnd", "ChannelDestroyed"):
            self._caller_left(ev.type)

    def _caller_left(self, why: str) -> None:
        if not self.caller_gone:
            self.caller_gone = True
            self.event("caller_hangup", step=self._step, why=why)

    def _check_caller(self) -> None:
        if self.caller_gone:
            raise CallerGone

    async def _ari(self, call: Awaitable[T]) -> T:
        """Run an ARI command on the caller's behalf; a vanished channel means hangup."""
        try:
            return await call
        except AriHTTPError as exc:
            if exc.means_channel_gone:
                self._caller_left(f"ARI {exc.status} {exc.message}")
                raise CallerGone from None
            raise

    # ---- the flow -------------------------------------------------------------------------

    async def run(self) -> None:
        probe.mark(self._start_received)
        self.event("incoming", did=self.did, listed=self.record.listed)
        self.ports.submit(self.record)
        try:
            await self._flow()
        except CallerGone:
            pass
        except asyncio.CancelledError:
            self.event("interrupted", step=self._step)
            raise
        except AriError as exc:
            self.failed = True
            log.error("call %s failed at %s: %s", self.record.id, self._step, exc)
            self.event("failed", step=self._step, error=str(exc))
            await self._hangup_quietly(self.channel_id)
        finally:
            await self._finish()

    async def _flow(self) -> None:
        rest = self.ports.rest
        self._step = "answer"
        await self._ari(rest.answer(self.channel_id))
        self._answer_mono = time.monotonic()
        self.event("answered_by_system")
        await self._recognise()
        disposition = self._disposition()
        if disposition is not None and not disposition.is_open:
            await self._after_hours(disposition)
            return
        self._step = "greeting"
        await self.play([media(self.config.flow.greeting)])
        if await self._direct_line():
            return
        route = await self.menu() if self.config.ivr is not None else None
        await self.serve(route.action if route else None, route.fallback if route else None)

    async def _recognise(self) -> None:
        """A known customer: their name and company go to the agent's phone and the log."""
        if self.ports.contacts is None or not self.record.caller_number:
            return
        contact = await self.ports.contacts.get(self.record.caller_number)
        if contact is None:
            return
        self.contact = contact
        self.record.category = self.record.category or "customer"
        self.event(
            "known_customer",
            name=contact.name,
            company=contact.company,
            tier=str(contact.tier),
            account_manager=contact.account_manager,
        )

    async def _direct_line(self) -> bool:
        """Direct lines (config) and tier A customers skip the menu: their person (the
        direct line's agent, or the account manager) first, then that person's
        team; True when someone answered (otherwise the normal path follows)."""
        contact = self.contact
        manager = self.ports.direct_lines.get(self.record.caller_number or "")
        if manager is not None:
            self.event("direct_line", agent=manager)
        elif contact is not None and str(contact.tier) == "A" and contact.account_manager:
            manager = contact.account_manager
        else:
            return False
        board = self.ports.board
        if manager not in board.directory:
            self.event("account_manager_unknown", manager=manager)
            return False
        team = next((name for name, t in self.config.teams.items() if manager in t.roster()), None)
        ring_timeout = self.config.teams[team].ring_timeout if team else 20.0
        self.event("route_step", step="account_manager", agent=manager)
        free = board.state(manager).unavailable_because(self.ports.clock()) is None
        if free:
            board.offer([manager], str(self.record.id))
            winner = None
            try:
                winner = await self.ring("account_manager", [board.endpoint(manager)], ring_timeout)
            finally:
                if winner is None:
                    board.offer_ended(manager)
            if winner is not None:
                self.agent_id, self.agent_team = manager, team
                board.answered(manager, team)
                self._step = "talk"
                await self.talk()
                return True
        if team is not None:
            self.event("route_step", step="manager_team", team=team)
            if await self.ring_team(team):
                self._step = "talk"
                await self.talk()
                return True
        self.event("route_step", step="normal_path")
        return False

    async def menu(self) -> Route:
        """Run the IVR until the caller's choice (or the menu's default) is known."""
        assert self.config.ivr is not None
        self._step = "menu"
        ivr = IvrSession(self.config.ivr, language=self.language)
        playbacks: dict[str, int] = {}  # ARI playback id -> the engine's ref
        by_ref: dict[int, str] = {}
        deadline: float | None = None
        timer_ref: int | None = None
        commands: list[IvrCommand] = ivr.start()
        try:
            while True:
                for command in commands:
                    if isinstance(command, Route):
                        self._menu_done(ivr, command)
                        return command
                    if isinstance(command, Play):
                        playback_id = new_id()
                        self.own(playback_id)
                        playbacks[playback_id], by_ref[command.ref] = command.ref, playback_id
                        await self._ari(
                            self.ports.rest.play(
                                self.channel_id,
                                [media(p) for p in command.prompts],
                                playback_id=playback_id,
                                lang=command.language,
                            )
                        )
                    elif isinstance(command, StopPlayback):
                        # Barge-in: DTMF never stops an ARI playback by itself (traces, 02).
                        stopping = by_ref.pop(command.ref, None)
                        if stopping is not None:
                            with contextlib.suppress(AriNotFound):
                                await self.ports.rest.stop_playback(stopping)
                    elif isinstance(command, StartTimer):
                        deadline, timer_ref = time.monotonic() + command.seconds, command.ref
                    elif isinstance(command, CancelTimer) and timer_ref == command.ref:
                        deadline = timer_ref = None
                left = None if deadline is None else deadline - time.monotonic()
                ev = await self.next_event(left)
                self._check_caller()
                if ev is None:
                    assert timer_ref is not None
                    commands, deadline = ivr.on_timeout(timer_ref), None
                elif ev.type == "PlaybackFinished" and ev.playback is not None:
                    ref = playbacks.pop(ev.playback.id, None)
                    self.ports.unroute(ev.playback.id)
                    commands = [] if ref is None else ivr.on_playback_finished(ref)
                elif ev.type == "ChannelDtmfReceived" and ev.channel_id == self.channel_id:
                    commands = ivr.on_digit(ev.digit or "")
                elif ev.type == RESYNC_EVENT:
                    # Events of the gap are lost: count prompts that were playing as heard.
                    commands = []
                    for playback_id in list(playbacks):
                        commands += ivr.on_playback_finished(playbacks.pop(playback_id))
                else:
                    commands = []
        finally:
            self.record.menu_path = list(ivr.menu_path)
            self.record.category = ivr.category

    def _menu_done(self, ivr: IvrSession, route: Route) -> None:
        self.record.menu_path = list(route.menu_path)
        self.record.category = route.category
        self.language = route.language
        self.event(
            "menu",
            path=route.path_text,
            category=route.category,
            reason=str(route.reason),
            action=type(route.action).__name__,
        )

    async def serve(self, action: object, fallback: object = None) -> None:
        """Carry out where the call goes: a team, the operator, a voicemail box, an internal
        number. `fallback` (the menu's default) takes over what cannot be served; whatever
        happens, the call ends with a person or a voicemail."""
        if isinstance(action, SelfServiceAction):
            self.event("self_service_unavailable", name=action.self_service)
            action, fallback = fallback, None
        if isinstance(action, VoicemailAction):
            self._step = "voicemail"
            await self.voicemail(box=action.voicemail)
            return
        if isinstance(action, ExtensionAction):
            endpoint = self.config.flow.extension_dial.format(extension=action.extension)
            reception = self.config.teams[self.config.flow.reception_team]
            self._step = "ring"
            if await self.ring("extension", [endpoint], reception.ring_timeout) is not None:
                self._step = "talk"
                await self.talk()
                return
            if fallback is not None and not isinstance(fallback, ExtensionAction):
                await self.serve(fallback)
                return
            action = None
        team: str | None = action.team if isinstance(action, TeamAction) else None
        team = team or self.config.flow.reception_team  # no menu, or the operator
        seen: set[str] = set()
        while team is not None and team not in seen:
            seen.add(team)
            if await self.ring_team(team):
                self._step = "talk"
                await self.talk()
                return
            overflow = self.config.teams[team].overflow
            if overflow is not None and overflow.voicemail is not None:
                self._step = "voicemail"
                await self.voicemail(box=overflow.voicemail)
                return
            if overflow is not None and overflow.callback_offer and await self.offer_callback():
                return
            team = overflow.team if overflow is not None else None
            if team is not None:
                self.event("overflow_to_team", team=team)
        self._step = "voicemail"
        await self.voicemail()

    async def offer_callback(self, wait_seconds: float = 6.0) -> bool:
        """ "Press 1 to be called back and keep your place": True when the caller accepted.
        The task made from this call is due at once, so the caller keeps their turn."""
        self._step = "callback_offer"
        await self._moh(False)
        pressed = await self.play([media("press-1-callback")], stop_on="1")
        deadline = time.monotonic() + wait_seconds
        while pressed is None and (left := deadline - time.monotonic()) > 0:
            ev = await self.next_event(left)
            self._check_caller()
            if ev is not None and ev.type == "ChannelDtmfReceived" and ev.digit == "1":
                pressed = ev.digit
        if pressed:
            self.callback_requested = True
            self.event("callback_requested")
            await self.play([media("callback-confirmed")])
            return True
        self.event("callback_declined")
        return False

    async def ring_team(self, team_name: str) -> bool:
        """Ring the team's agents on duty and free, attempt after attempt (by its strategy),
        until one answers or the team's max_wait passes. True when someone answered.

        Callers waiting for the same team take turns by tier (A, B, C, unknown), then by
        arrival: a caller rings only when no more important caller is waiting unserved."""
        board = self.ports.board
        call_id = str(self.record.id)
        tier = self.contact.tier if self.contact is not None else Tier.UNKNOWN
        board.join(team_name, call_id, tier, self.record.started_at)
        try:
            return await self._ring_team(team_name)
        finally:
            board.leave(team_name, call_id)

    async def _ring_team(self, team_name: str) -> bool:
        board = self.ports.board
        call_id = str(self.record.id)
        team = self.config.teams[team_name]
        self._step = "ring"
        give_up_at = time.monotonic() + team.max_wait
        tried: set[str] = set()
        queued = False
        every = team.announce_position_every
        announce_at = time.monotonic() + every if every else None
        while time.monotonic() < give_up_at:
            now = self.ports.clock()
            my_turn = board.my_turn(team_name, call_id)
            attempts = board.plan(team_name, now, skip=frozenset(tried)) if my_turn else []
            if not attempts:
                # Everyone free has had a turn, or a more important caller is next. Agents
                # busy with other callers may free up: wait in the queue (with music) rather
                # than give up at once.
                if my_turn and not board.may_free_up(team_name, now, skip=frozenset(tried)):
                    break
                if not queued:
                    queued = True
                    self.event("queued", team=team_name)
                    await self._moh(True, team.hold_music)
                if announce_at is not None and time.monotonic() >= announce_at:
                    await self._announce_position(team_name, call_id, team.hold_music)
                    announce_at = time.monotonic() + every
                await self.next_event(min(QUEUE_POLL_SECONDS, give_up_at - time.monotonic()))
                self._check_caller()
                continue
            agents = await self._reserve(attempts[0], team.ring_timeout)
            if not agents:
                # Held by a call on another node: wait for them like for any busy agent.
                await self.next_event(min(QUEUE_POLL_SECONDS, give_up_at - time.monotonic()))
                self._check_caller()
                continue
            tried.update(agents)
            endpoints = {board.endpoint(a): a for a in agents}
            board.offer(agents, call_id)
            board.set_ringing(call_id, True)
            winner: str | None = None
            try:
                timeout = min(team.ring_timeout, give_up_at - time.monotonic())
                winner = await self.ring(
                    team_name, list(endpoints), timeout, hold_music=team.hold_music
                )
            finally:
                board.set_ringing(call_id, False)
                losers = [a for a in agents if winner is None or endpoints.get(winner) != a]
                for agent in losers:
                    board.offer_ended(agent)
                await self._unreserve(losers)
            if winner is not None:
                self.agent_id, self.agent_team = endpoints[winner], team_name
                board.answered(self.agent_id, team_name)
                if self.ports.reservations is not None:
                    try:
                        await self.ports.reservations.hold(self.agent_id, call_id)
                    except DatabaseUnavailableError as exc:
                        log.warning("agent %s answered; lease not extended: %s", winner, exc)
                return True
        if not tried:
            self.event("nobody_available", team=team_name)
        return False

    async def _reserve(self, agents: list[str], ring_timeout: float) -> list[str]:
        """The agents of an attempt that no call on any node holds, now held by this one."""
        reservations = self.ports.reservations
        if reservations is None:
            return agents
        lease = timedelta(seconds=ring_timeout + 10)
        try:
            return await reservations.reserve(agents, str(self.record.id), lease)
        except DatabaseUnavailableError as exc:
            # The database is down: ring anyway; this daemon's own board still never offers
            # an agent two of its calls. Only cross-node protection is lost meanwhile.
            log.warning("agent reservations unavailable, ringing anyway: %s", exc)
            return agents

    async def _unreserve(self, agents: list[str], wrap_up: float = 0.0) -> None:
        reservations = self.ports.reservations
        if reservations is None or not agents:
            return
        try:
            await reservations.release(agents, str(self.record.id), wrap_up=wrap_up)
        except DatabaseUnavailableError as exc:
            log.warning("could not release agents %s (their leases will expire): %s", agents, exc)

    async def _announce_position(
        self, team_name: str, call_id: str, hold_music: str | None
    ) -> None:
        """ "Your position in the queue is N", then the music again."""
        position = self.ports.board.position(team_name, call_id)
        await self._moh(False)
        await self.play([media("position"), f"number:{position}"])
        self.event("position_announced", position=position)
        await self._moh(True, hold_music)

    async def _moh(self, on: bool, music_class: str | None = None) -> None:
        """Music on hold on or off: one request, and none when it already is."""
        if on == self._moh_on:
            return
        self._moh_on = on
        rest = self.ports.rest
        with contextlib.suppress(AriHTTPError):
            if on:
                moh = music_class or self.config.flow.hold_music
                await self._ari(rest.start_moh(self.channel_id, moh))
            else:
                await self._ari(rest.stop_moh(self.channel_id))

    def _disposition(self) -> CallDisposition | None:
        hours = self.ports.hours.get(self.schedule) if self.schedule else None
        if hours is None:
            return None  # no schedule: always open
        return decide_call(hours, self.config.after_hours, self.ports.clock(), self.language)

    async def _after_hours(self, disposition: CallDisposition) -> None:
        status = disposition.status
        self.event(
            "closed",
            schedule=self.schedule,
            reason=str(status.reason),
            detail=status.detail,
            next_opening=status.next_opening.isoformat() if status.next_opening else None,
        )
        self._step = "closed_greeting"
        if disposition.greeting:
            await self.play([media(disposition.greeting)])
        overflow = disposition.overflow
        if disposition.action is CallAction.OVERFLOW and overflow is not None:
            self._step = "overflow"
            winner = await self.ring("overflow", [overflow.endpoint], overflow.timeout)
            if winner is not None:
                self.overflowed = True
                self._step = "talk"
                await self.talk()
                return
            self.event("overflow_failed", endpoint=overflow.endpoint)
        self._step = "voicemail"
        await self.voicemail(promise=disposition.callback_promise)

    async def play(self, items: Sequence[str], *, stop_on: str = "") -> str | None:
        """Play to the caller and wait until it finishes (or the caller leaves). A key in
        `stop_on` pressed meanwhile stops the prompt and is returned."""
        self._check_caller()
        playback_id = new_id()
        self.own(playback_id)
        try:
            await self._ari(
                self.ports.rest.play(
                    self.channel_id, list(items), playback_id=playback_id, lang=self.language
                )
            )
            while True:
                ev = await self.next_event(None)
                assert ev is not None
                self._check_caller()
                if ev.type == "PlaybackFinished" and ev.playback and ev.playback.id == playback_id:
                    if ev.playback.state == "failed":
                        # A missing prompt must not strand the caller; carry on without it.
                        log.warning("prompt %s failed to play", ev.playback.media_uri)
                        self.event("prompt_failed", media=ev.playback.media_uri)
                    return None
                if (
                    ev.type == "ChannelDtmfReceived"
                    and ev.channel_id == self.channel_id
                    and ev.digit
                    and ev.digit in stop_on
                ):
                    with contextlib.suppress(AriNotFound):
                        await self.ports.rest.stop_playback(playback_id)
                    return ev.digit
        finally:
            self.ports.unroute(playback_id)

    async def ring(
        self,
        team: str,
        endpoints: Sequence[str],
        timeout: float,
        *,
        hold_music: str | None = None,
    ) -> str | None:
        """Ring every endpoint at once; bridge the first who answers. Returns the winning
        endpoint, or None when nobody answered within `timeout`."""
        self._check_caller()
        rest = self.ports.rest
        state = RingAll()
        started = self.ports.clock()
        await self._moh(True, hold_music)
        caller_id = _caller_id(self._display_name(), self.record.caller_number)
        for endpoint in endpoints:
            leg_id, other_id = new_id(), new_id()
            self.own(leg_id)
            self.own(other_id)
            leg = Leg(leg_id, endpoint, self.ports.clock())
            state.add(leg)
            try:
                await rest.originate(
                    endpoint,
                    app=self.config.ari.app,
                    app_args=f"agent,{self.record.id}",
                    channel_id=leg_id,
                    other_channel_id=other_id,
                    originator=self.channel_id,
                    caller_id=caller_id,
                    timeout=int(timeout) + 5,  # our own timer decides; Asterisk's is a backstop
                )
            except AriHTTPError as exc:
                log.warning("cannot ring %s: %s %s", endpoint, exc.status, exc.message)
                state.failed(leg_id, f"rejected: {exc.message}", self.ports.clock())
        self.event("ringing", team=team, endpoints=list(endpoints))
        deadline = time.monotonic() + timeout
        winner: str | None = None
        done = not state.ringing
        try:
            while not done:
                ev = await self.next_event(deadline - time.monotonic())
                now = self.ports.clock()
                if ev is None:
                    commands = [*state.give_up("timeout", now), NobodyAnswered()]
                elif self.caller_gone:
                    commands = [*state.give_up("caller_hangup", now)]
                    done = True
                else:
                    commands = self._leg_event(state, ev, now)
                for command in commands:
                    if isinstance(command, HangupLeg):
                        await self._hangup_quietly(command.channel_id, command.reason)
                    elif isinstance(command, BridgeWith):
                        winner, done = command.channel_id, True
                    elif isinstance(command, NobodyAnswered):
                        done = True
        finally:
            self.event(
                "rung",
                team=team,
                rung=state.rung(),
                seconds=(self.ports.clock() - started).total_seconds(),
            )
        if self.caller_gone:
            if winner is not None:
                await self._hangup_quietly(winner)
            raise CallerGone
        if winner is None:
            return None
        endpoint = state.legs[winner].endpoint
        if not await self._bridge(winner, endpoint):
            return None
        return endpoint

    def _leg_event(self, state: RingAll, ev: AriEvent, now: datetime) -> list[RingCommand]:
        channel = ev.channel
        if ev.type == "StasisStart" and channel and channel.id in state.legs:
            return list(state.answered(channel.id, now))
        if ev.type == "Dial" and ev.peer and ev.peer.id in state.legs:
            status = ev.dialstatus or ""
            if status in ("BUSY", "NOANSWER", "CHANUNAVAIL", "CONGESTION", "CANCEL", "INVALIDARGS"):
                return list(state.failed(ev.peer.id, status, now))
            return []
        if ev.type == "ChannelDestroyed" and channel and channel.id in state.legs:
            return list(state.failed(channel.id, cause_result(ev.cause), now))
        if ev.type == RESYNC_EVENT:
            live = set(ev.raw.get("channels", ()))
            return [
                command
                for leg in state.ringing
                if leg.channel_id not in live
                for command in state.failed(leg.channel_id, "vanished", now)
            ]
        return []

    async def _bridge(self, agent_channel: str, endpoint: str) -> bool:
        """Connect caller and agent. False when the agent vanished in between."""
        rest = self.ports.rest
        self.agent_channel = agent_channel
        bridge_id = new_id()
        self.bridge_id = bridge_id
        self.own(bridge_id)
        await self._moh(False)
        await rest.create_bridge(bridge_id, type="mixing")
        try:
            await rest.add_channel(bridge_id, [self.channel_id, agent_channel])
        except AriHTTPError as exc:
            if not exc.means_channel_gone:
                raise
            await asyncio.sleep(0)  # let the hangup events that explain it arrive
            self._drain()
            self._check_caller()
            self.event("agent_vanished", endpoint=endpoint)
            self.agent_channel = None
            return False
        now = self.ports.clock()
        self.record.answered_at = now
        self.record.answered_by = endpoint
        self._bridged_mono = time.monotonic()
        self.record.wait_seconds = round(self._bridged_mono - self._start_mono, 3)
        self.event("bridged", endpoint=endpoint)
        self.ports.submit(self.record)
        return True

    def _drain(self) -> None:
        """Observe queued events now, so a hangup already reported is known."""
        pending: list[AriEvent] = []
        while not self.queue.empty():
            ev = self.queue.get_nowait()
            self._observe(ev)
            pending.append(ev)
        for ev in pending:
            self.queue.put_nowait(ev)

    async def talk(self) -> None:
        """Until either side leaves; then release the other."""
        assert self.agent_channel is not None
        while not self.caller_gone:
            ev = await self.next_event(None)
            assert ev is not None
            agent_left = (
                ev.channel_id == self.agent_channel
                and ev.type in ("StasisEnd", "ChannelHangupRequest", "ChannelDestroyed")
            ) or (ev.type == RESYNC_EVENT and self.agent_channel not in ev.raw.get("channels", ()))
            if agent_left:
                self.event("agent_hangup")
                await self._hangup_quietly(self.channel_id)
                return

    async def voicemail(self, promise: Sequence[str] = (), box: str | None = None) -> None:
        """Take a message. `promise` says when we will call back (after hours)."""
        rest = self.ports.rest
        vm = self.config.flow.voicemail
        # The caller's wait for a person ends where the voicemail begins.
        self.record.wait_seconds = round(time.monotonic() - self._start_mono, 3)
        await self._moh(False)
        await self.play([*promise, media(vm.prompt)])
        name = f"voicemail/{box or self.did}/{self.record.id}"
        self.own(name)
        try:
            await self._ari(
                rest.record(
                    self.channel_id,
                    name,
                    format="wav",
                    max_duration_seconds=vm.max_seconds,
                    max_silence_seconds=vm.max_silence_seconds or None,
                    if_exists="overwrite",
                    beep=True,
                    terminate_on=vm.finish_key,
                )
            )
            self.event("voicemail_started", name=name)
            deadline: float | None = None
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                ev = await self.next_event(left)
                if ev is None:
                    break  # caller gone and Asterisk never closed the recording
                if self.caller_gone and deadline is None:
                    deadline = time.monotonic() + SETTLE_SECONDS
                recording = ev.recording
                if recording is None or recording.name != name:
                    continue
                if ev.type == "RecordingFinished":
                    self.voicemail_seconds = float(recording.duration or 0)
                    self.record.voicemail = name
                    self.event("voicemail", name=name, seconds=self.voicemail_seconds)
                    break
                if ev.type == "RecordingFailed":
                    self.event("voicemail_failed", name=name, cause=recording.cause)
                    self.failed = True
                    break
        finally:
            self.ports.unroute(name)
        if not self.caller_gone:
            await self.play([media(vm.thanks_prompt)])
            await self._hangup_quietly(self.channel_id)

    def _display_name(self) -> str | None:
        """What the agent's phone shows: the directory's company and name when known."""
        contact = self.contact
        if contact is None:
            return self.record.caller_name
        return " — ".join(part for part in (contact.company, contact.name) if part)

    # ---- ending ---------------------------------------------------------------------------

    async def _hangup_quietly(self, channel_id: str, reason: str = "normal") -> None:
        try:
            await self.ports.rest.hangup(channel_id, reason=reason)
        except AriHTTPError as exc:
            if not exc.means_channel_gone and exc.status != 404:
                log.warning("hangup of %s failed: %s %s", channel_id, exc.status, exc.message)
        except AriError as exc:
            log.warning("hangup of %s failed: %s", channel_id, exc)

    async def _finish(self) -> None:
        rest = self.ports.rest
        if self.agent_id is not None:
            self.ports.board.call_ended(self.agent_id, self.ports.clock(), self.agent_team)
            team = self.config.teams.get(self.agent_team) if self.agent_team else None
            await self._unreserve([self.agent_id], wrap_up=team.wrap_up if team else 0.0)
        if self.agent_channel is not None:
            await self._hangup_quietly(self.agent_channel)
        if self.bridge_id is not None:
            with contextlib.suppress(AriError):
                await rest.destroy_bridge(self.bridge_id)
        if not self.caller_gone:
            await self._hangup_quietly(self.channel_id)
        now = self.ports.clock()
        self.record.ended_at = now
        hours = self.ports.hours.get(self.schedule) if self.schedule else None
        sla = timedelta(minutes=self.config.callbacks.sla_minutes)
        # "Keep your place": a caller who asked to be called back is due at once.
        self.record.callback_due = now if self.callback_requested else callback_due(now, hours, sla)
        if self._bridged_mono is not None:
            self.record.talk_seconds = round(time.monotonic() - self._bridged_mono, 3)
        elif self.record.wait_seconds is None:
            self.record.wait_seconds = round(time.monotonic() - self._start_mono, 3)
        self.record.outcome = decide_outcome(
            CallFacts(
                answered_by=self.record.answered_by,
                voicemail_seconds=self.voicemail_seconds,
                failed=self.failed,
                overflow=self.overflowed,
                callback_requested=self.callback_requested,
            )
        )
        self.event("ended", outcome=str(self.record.outcome))
        self.ports.submit(self.record)
        for key in self._owned:
            self.ports.unroute(key)


def _did_from(args: Sequence[str], fallback: str) -> str:
    """`Stasis(pbx-service,did=84952223344)` gives args ["did=84952223344"]."""
    for arg in args:
        key, _, value = arg.partition("=")
        if key == "did" and value:
            return clean_text(value, 32) or fallback
    return clean_text(fallback, 32) or "unknown"


def _caller_id(name: str | None, number: str | None) -> str | None:
    if not number and not name:
        return None
    safe_name = (name or "").replace('"', "'")
    return f'"{safe_name}" <{number or ""}>'

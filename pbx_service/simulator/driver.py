"""Scripted callers and agents that talk ARI as the Stasis app ``caller-sim``.

The driver does what the recording client of ``traces/`` did for the caller and agent side, over
plain ARI, so the same end-to-end tests run against the simulator and against a real Asterisk
configured with the traces' dialplan:

* a caller is ``POST /channels?endpoint=Local/<did>@from-trunk&app=caller-sim``: the ``;2`` half
  runs ``[from-trunk]`` and enters ``Stasis(pbx-service,did=<did>)``; the ``;1`` half is the
  caller's phone and enters ``caller-sim`` once the service answers. The driver picks both ids
  (``channelId``/``otherChannelId``) so it can route the events that arrive before the REST reply;
* an agent is the dial string ``Local/<name>@test-caller`` that the service originates: its ``;2``
  half runs ``Stasis(caller-sim,role=<name>)`` and the driver plays the agent's part on it
  (ring, then answer / never answer / reject busy / hang up / press keys).

Usage::

    async with AriClient(url, user, password, "caller-sim") as client:
        driver = CallerDriver(client)
        await driver.start()
        dial = driver.agent("agent1", AgentBehaviour.answers(after=1.0))
        call = await driver.place_call("100", "+79161234567", steps=[WaitAnswered(5), Press("1")])
        await asyncio.wait_for(call.ended, 30)
        await driver.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pbx_service.ari.client import AriClient
from pbx_service.ari.errors import AriError, AriHTTPError
from pbx_service.ari.models import AriEvent, target_id
from pbx_service.errors import PbxError

log = logging.getLogger(__name__)

CALLER_APP = "caller-sim"
# [test-caller] matches exten _[0-9a-z]. : a lower-case letter or digit, then at least one more.
_AGENT_NAME = re.compile(r"^[0-9a-z][0-9A-Za-z_\-.]+$")
_PEER_NOT_A_PARTY = ("Announcer/", "Recorder/", "Snoop/")


class DriverError(PbxError):
    """The caller driver was misused, or a scripted step did not happen in time."""

    error_id = "simulator-driver"


class StepTimeout(DriverError):
    """A ``Wait*`` step of a scripted call timed out."""

    error_id = "simulator-driver-step-timeout"


# -- steps of a scripted caller ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Wait:
    """Do nothing for ``seconds``."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class WaitAnswered:
    """Wait until the service answered the call (the caller's ``;1`` entered ``caller-sim``)."""

    timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class WaitBridged:
    """Wait until the service bridged the call with another party (``BRIDGEPEER`` on ``;2``).

    Only mixing bridges report a peer; MOH/recording helpers (Announcer, Recorder) do not count.
    """

    timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class WaitPlayback:
    """Wait until a playback whose media URI contains ``media_substring`` started on the call
    (one that already started counts)."""

    media_substring: str
    timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class Press:
    """The caller presses keys (``POST /channels/{;1}/dtmf``); they reach the service's ``;2``."""

    digits: str
    between_ms: int | None = None
    duration_ms: int | None = None


@dataclasses.dataclass(frozen=True)
class Hangup:
    """The caller hangs up (``DELETE /channels/{;1}``): the service sees cause 16."""


Step = Wait | WaitAnswered | WaitBridged | WaitPlayback | Press | Hangup


# -- agent behaviour ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AgentBehaviour:
    """What an agent's phone does when the service dials it.

    ``answer_after`` None = never answers (rings until cancelled); ``reject`` a hangup reason
    (``busy``) to refuse the call after ``reject_after`` s; ``hangup_after`` hang up that many
    seconds after answering; ``dtmf`` keys pressed ``dtmf_after`` seconds after answering.
    """

    answer_after: float | None = 0.0
    ring: bool = True
    reject: str | None = None
    reject_after: float = 0.0
    hangup_after: float | None = None
    dtmf: str | None = None
    dtmf_after: float = 0.5

    @classmethod
    def answers(cls, after: float = 0.0) -> AgentBehaviour:
        """Answers ``after`` seconds of ringing, stays until the other side hangs up."""
        return cls(answer_after=after)

    @classmethod
    def never_answers(cls) -> AgentBehaviour:
        """Rings until the service cancels the leg."""
        return cls(answer_after=None)

    @classmethod
    def busy(cls, after: float = 0.0) -> AgentBehaviour:
        """Refuses the call as busy (hangup with ``reason=busy``: cause 17, ``Dial BUSY``)."""
        return cls(answer_after=None, reject="busy", reject_after=after)

    @classmethod
    def answers_then_hangs_up(cls, after: float, hangup_after: float) -> AgentBehaviour:
        """Answers after ``after`` s and hangs up ``hangup_after`` s later."""
        return cls(answer_after=after, hangup_after=hangup_after)

    @classmethod
    def answers_then_presses(
        cls, digits: str, after: float = 0.0, press_after: float = 0.5
    ) -> AgentBehaviour:
        """Answers after ``after`` s and presses ``digits`` ``press_after`` s later."""
        return cls(answer_after=after, dtmf=digits, dtmf_after=press_after)


# -- what a test observes ----------------------------------------------------------------------


class DrivenCall:
    """One scripted call, as the caller sees it.

    ``ended`` resolves when the caller's phone (``;1``) is destroyed. ``events`` holds every
    ``caller-sim`` event of both halves, in order.
    """

    def __init__(self, did: str, channel_id: str, peer_id: str) -> None:
        self.did = did
        self.channel_id = channel_id  # ;1, the caller's phone
        self.peer_id = peer_id  # ;2, the side in the service
        self.events: list[AriEvent] = []
        self.answered_at: float | None = None
        self.bridged_with: str | None = None
        self.hangup_cause: int | None = None
        self.stasis_status: str | None = None
        self.digits_received = ""
        self.errors: list[str] = []
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.script: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return f"DrivenCall(did={self.did!r}, {self.channel_id})"

    @property
    def playbacks(self) -> list[str]:
        """Media URIs of every ``PlaybackStarted`` seen on the call, in order."""
        out: list[str] = []
        for e in self.events:
            if e.type == "PlaybackStarted" and e.playback is not None:
                out.append(e.playback.media_uri)
        return out

    async def wait_script(self) -> None:
        """Wait for the scripted steps; raises `StepTimeout` if one of them timed out."""
        if self.script is not None:
            await self.script

    async def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``predicate()`` holds; `StepTimeout` naming ``what`` after ``timeout`` s."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    if self.ended.done():
                        raise StepTimeout(f"{self}: call ended before {what}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise StepTimeout(f"{self}: no {what} within {timeout:g}s") from None

    def _record(self, event: AriEvent) -> None:
        self.events.append(event)
        cid = event.channel_id
        if event.type == "StasisStart" and cid == self.channel_id and self.answered_at is None:
            self.answered_at = time.monotonic()
        elif (
            event.type == "ChannelStateChange"
            and cid == self.channel_id
            and event.channel is not None
            and event.channel.state == "Up"
            and self.answered_at is None
        ):
            self.answered_at = time.monotonic()
        elif event.type == "ChannelVarset" and cid == self.peer_id:
            if event.variable == "STASISSTATUS":
                self.stasis_status = event.value
            elif event.variable == "BRIDGEPEER" and event.value:
                if not event.value.startswith(_PEER_NOT_A_PARTY):
                    self.bridged_with = event.value
        elif event.type == "ChannelDtmfReceived" and cid == self.channel_id and event.digit:
            self.digits_received += event.digit
        elif event.type == "ChannelDestroyed" and cid == self.channel_id:
            self.hangup_cause = event.cause
            if not self.ended.done():
                self.ended.set_result(None)
        self._changed.set()


class AgentLeg:
    """One arrival of the service's call at an agent's phone (the ``;2`` in ``caller-sim``)."""

    def __init__(self, name: str, channel_id: str, behaviour: AgentBehaviour) -> None:
        self.name = name
        self.channel_id = channel_id
        self.behaviour = behaviour
        self.events: list[AriEvent] = []
        self.arrived_at = time.monotonic()
        self.answered_at: float | None = None
        self.rejected = False
        self.hung_up_by_agent = False
        self.hangup_cause: int | None = None
        self.errors: list[str] = []
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"AgentLeg({self.name!r}, {self.channel_id})"

    def _record(self, event: AriEvent) -> None:
        self.events.append(event)
        if event.type == "ChannelHangupRequest" and self.hangup_cause is None:
            self.hangup_cause = event.cause
        if event.type in ("StasisEnd", "ChannelDestroyed") and not self.ended.done():
            self.ended.set_result(None)


# -- the driver --------------------------------------------------------------------------------


class CallerDriver:
    """Places scripted calls and plays agents' phones as the ARI app ``caller-sim``.

    `client` must be an `AriClient` for app ``caller-sim``, inside its ``async with`` block.
    """

    def __init__(
        self,
        client: AriClient,
        *,
        trunk_context: str = "from-trunk",
        agent_context: str = "test-caller",
        connect_timeout: float = 10.0,
        keep_history: bool = True,
    ) -> None:
        if client.app != CALLER_APP:
            raise DriverError(
                f"the driver must run as ARI app {CALLER_APP!r} (the dialplan's "
                f"Stasis({CALLER_APP},role=...)), got an AriClient for {client.app!r}"
            )
        self.client = client
        self.trunk_context = trunk_context
        self.agent_context = agent_context
        self.connect_timeout = connect_timeout
        # False: forget each call and agent leg once it ended (long load runs keep memory flat).
        self.keep_history = keep_history
        self.calls: list[DrivenCall] = []
        self.agent_legs: list[AgentLeg] = []
        self.unrouted: list[AriEvent] = []
        self._behaviours: dict[str, AgentBehaviour] = {}
        self._by_channel: dict[str, DrivenCall | AgentLeg] = {}
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._leg_arrived = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the ``caller-sim`` events socket; returns once it is up."""
        if self._runner is not None:
            raise DriverError("CallerDriver.start() called twice")
        self._runner = asyncio.create_task(self.client.run(self), name="caller-driver-events")
        try:
            await self.client.wait_connected(self.connect_timeout)
        except AriError as exc:
            await self.stop()
            raise DriverError(f"caller-sim could not connect to ARI: {exc}") from exc

    async def stop(self) -> None:
        """Stop scripts and agent behaviours and close the events socket."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    # -- the AriListener interface ------------------------------------------------------------

    async def on_connected(self, reconnected: bool) -> None:
        """Called by `AriClient` on each connect; nothing to resynchronise for a test driver."""
        if reconnected:
            log.warning("caller-sim reconnected: events of the gap are lost")

    async def on_disconnected(self) -> None:
        """Called by `AriClient` when the socket goes away."""

    async def on_event(self, event: AriEvent) -> None:
        """Route one ``caller-sim`` event to its call or agent leg."""
        ids = [i for i in (event.channel_id, _peer_id(event), _target_id(event)) if i]
        owner = next((self._by_channel[i] for i in ids if i in self._by_channel), None)
        if owner is None and event.type == "StasisStart" and event.channel_id:
            owner = self._agent_arrived(event)
        if owner is None:
            if self.keep_history:
                self.unrouted.append(event)
            return
        owner._record(event)
        if not self.keep_history and owner.ended.done():
            self._forget(owner)

    def _forget(self, owner: DrivenCall | AgentLeg) -> None:
        if isinstance(owner, DrivenCall):
            self._by_channel.pop(owner.channel_id, None)
            self._by_channel.pop(owner.peer_id, None)
            with contextlib.suppress(ValueError):
                self.calls.remove(owner)
        else:
            self._by_channel.pop(owner.channel_id, None)
            with contextlib.suppress(ValueError):
                self.agent_legs.remove(owner)

    # -- callers ------------------------------------------------------------------------------

    async def place_call(
        self,
        did: str,
        caller_number: str,
        *,
        caller_name: str | None = None,
        steps: Sequence[Step] = (),
        variables: dict[str, str] | None = None,
        timeout: int = 30,
    ) -> DrivenCall:
        """Originate ``Local/<did>@<trunk_context>`` as a caller and run ``steps`` in the
        background (see `DrivenCall.wait_script`). Returns once Asterisk accepted the originate."""
        if not did or "@" in did or "/" in did:
            raise DriverError(f"did must be a bare number like '100', got {did!r}")
        token = secrets.token_hex(4)
        call = DrivenCall(did, f"caller-{token}", f"caller-{token}-2")
        # Register first: caller-sim gets ;2 events before the originate's REST reply.
        self._by_channel[call.channel_id] = call
        self._by_channel[call.peer_id] = call
        self.calls.append(call)
        try:
            await self.client.rest.originate(
                f"Local/{did}@{self.trunk_context}",
                app=CALLER_APP,
                app_args="role=caller",
                caller_id=format_caller_id(caller_name, caller_number),
                timeout=timeout,
                channel_id=call.channel_id,
                other_channel_id=call.peer_id,
                variables=variables,
            )
        except AriError as exc:
            del self._by_channel[call.channel_id], self._by_channel[call.peer_id]
            self.calls.remove(call)
            raise DriverError(f"originate of a call to {did!r} failed: {exc}") from exc
        if steps:
            call.script = self._spawn(self._run_steps(call, list(steps)), f"caller-{token}")
        return call

    async def _run_steps(self, call: DrivenCall, steps: list[Step]) -> None:
        rest = self.client.rest
        for step in steps:
            try:
                if isinstance(step, Wait):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, WaitAnswered):
                    await call.wait_for(
                        lambda: call.answered_at is not None, step.timeout, "answer"
                    )
                elif isinstance(step, WaitBridged):
                    await call.wait_for(
                        lambda: call.bridged_with is not None, step.timeout, "bridge peer"
                    )
                elif isinstance(step, WaitPlayback):
                    needle = step.media_substring
                    await call.wait_for(
                        _has_played(call, needle),
                        step.timeout,
                        f"playback of {needle!r}",
                    )
                elif isinstance(step, Press):
                    await rest.send_dtmf(
                        call.channel_id,
                        step.digits,
                        between_ms=step.between_ms,
                        duration_ms=step.duration_ms,
                    )
                elif isinstance(step, Hangup):
                    await rest.hangup(call.channel_id)
            except StepTimeout as exc:
                call.errors.append(str(exc))
                raise
            except AriHTTPError as exc:
                # The service may have hung up first: a step on a gone channel ends the script.
                call.errors.append(f"{step}: {exc}")
                if exc.means_channel_gone:
                    return
                raise DriverError(f"{call}: step {step} failed: {exc}") from exc

    # -- agents -------------------------------------------------------------------------------

    def agent(self, name: str, behaviour: AgentBehaviour) -> str:
        """Register how agent ``name`` behaves; returns its dial string for the team config."""
        if not _AGENT_NAME.match(name):
            raise DriverError(
                f"agent name {name!r} does not match the dialplan pattern _[0-9a-z]. of "
                f"[{self.agent_context}]: start with a lower-case letter or digit, 2+ characters"
            )
        self._behaviours[name] = behaviour
        return f"Local/{name}@{self.agent_context}"

    def legs_of(self, name: str) -> list[AgentLeg]:
        """Every arrival at agent ``name``'s phone so far."""
        return [leg for leg in self.agent_legs if leg.name == name]

    async def wait_leg(self, name: str, timeout: float = 10.0, count: int = 1) -> AgentLeg:
        """Wait until agent ``name`` has been dialled ``count`` times; returns the last leg."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.legs_of(name)) < count:
                    self._leg_arrived.clear()
                    await self._leg_arrived.wait()
        except TimeoutError:
            raise StepTimeout(f"agent {name!r} not dialled within {timeout:g}s") from None
        return self.legs_of(name)[count - 1]

    def _agent_arrived(self, event: AriEvent) -> AgentLeg | None:
        role = next((a[5:] for a in event.args if a.startswith("role=")), None)
        cid = event.channel_id
        if role is None or cid is None or role == "caller":
            return None
        behaviour = self._behaviours.get(role)
        if behaviour is None:
            log.warning("caller-sim: leg for unknown agent %r (%s); leaving it ringing", role, cid)
            behaviour = AgentBehaviour.never_answers()
        leg = AgentLeg(role, cid, behaviour)
        self.agent_legs.append(leg)
        self._by_channel[cid] = leg
        leg.task = self._spawn(self._play_agent(leg), f"agent-{role}-{cid}")
        self._leg_arrived.set()
        return leg

    async def _play_agent(self, leg: AgentLeg) -> None:
        rest = self.client.rest
        b = leg.behaviour
        try:
            if b.ring:
                await rest.ring(leg.channel_id)
            if b.reject is not None:
                if await self._ended_within(leg, b.reject_after):
                    return
                leg.rejected = True
                await rest.hangup(leg.channel_id, reason=b.reject)
                return
            if b.answer_after is None:
                return
            if await self._ended_within(leg, b.answer_after):
                return
            await rest.answer(leg.channel_id)
            leg.answered_at = time.monotonic()
            if b.dtmf:
                if await self._ended_within(leg, b.dtmf_after):
                    return
                await rest.send_dtmf(leg.channel_id, b.dtmf)
            if b.hangup_after is not None:
                if await self._ended_within(leg, b.hangup_after):
                    return
                leg.hung_up_by_agent = True
                await rest.hangup(leg.channel_id)
        except AriHTTPError as exc:
            # The service cancelled the leg while we acted: normal in a ring-all.
            if not exc.means_channel_gone:
                leg.errors.append(str(exc))
                log.warning("agent %s: %s", leg.name, exc)

    @staticmethod
    async def _ended_within(leg: AgentLeg, seconds: float) -> bool:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(leg.ended), seconds)
        return leg.ended.done()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def format_caller_id(name: str | None, number: str) -> str:
    """``"Name" <number>`` as ARI's ``callerId`` expects; quotes in the name are escaped."""
    if not name:
        return f"<{number}>"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <{number}>'


def _has_played(call: DrivenCall, needle: str) -> Callable[[], bool]:
    return lambda: any(needle in media for media in call.playbacks)


def _target_id(event: AriEvent) -> str | None:
    # Playback and recording events name their channel only in target_uri.
    for key in ("playback", "recording"):
        obj = event.raw.get(key)
        if isinstance(obj, dict):
            return target_id(obj.get("target_uri"))
    return None


def _peer_id(event: AriEvent) -> str | None:
    peer = event.raw.get("peer")
    if isinstance(peer, dict):
        pid = peer.get("id")
        return pid if isinstance(pid, str) else None
    return None

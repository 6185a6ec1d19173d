"""Agent presence from desk phones: log in, log out, pause (with a reason), unpause.

Feature codes in the dialplan enter ``Stasis(pbx-service,presence,<action>,<ext>[,<reason>])``;
the daemon updates the agent's state (so routing stops or starts offering them calls), answers
with a confirmation prompt, and publishes the state as a device state ``Stasis:agent-<id>``,
so BLF keys light up and `devstate list` on the Asterisk console shows who is where.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from pbx_service.ari import AriEvent, AriRest
from pbx_service.ari.errors import AriError
from pbx_service.calls.agents import AgentBoard
from pbx_service.calls.routing import AgentState, EndpointState, Presence
from pbx_service.calls.session import CallPorts, media, new_id

log = logging.getLogger(__name__)

PRESENCE_ARG = "presence"
PROMPT_LIMIT_SECONDS = 15.0
ACTIONS: dict[str, tuple[Presence, str]] = {
    "login": (Presence.LOGGED_IN, "agent-logged-in"),
    "logout": (Presence.LOGGED_OUT, "agent-logged-out"),
    "pause": (Presence.PAUSED, "agent-paused"),
    "unpause": (Presence.LOGGED_IN, "agent-unpaused"),
}


def device_name(agent_id: str) -> str:
    """``Stasis:agent-<id>``; an id that is a dial string (PJSIP/101) becomes PJSIP-101."""
    return "Stasis:agent-" + re.sub(r"[^A-Za-z0-9_.-]", "-", agent_id)


def device_state(state: AgentState) -> str:
    """The BLF colour of an agent: what the phone's key and the console show."""
    if state.presence is Presence.LOGGED_OUT or state.endpoint is EndpointState.OFFLINE:
        return "UNAVAILABLE"
    if state.in_call:
        return "INUSE"
    if state.offered_call is not None:
        return "RINGING"
    if state.presence is Presence.PAUSED:
        return "ONHOLD"
    return "NOT_INUSE"


def queue_device_name(team: str) -> str:
    return "Stasis:queue-" + re.sub(r"[^A-Za-z0-9_.-]", "-", team)


class StatePublisher:
    """Publishes agents' states as device states, in order: one lock per agent, and the state
    is read under it, so the last request always carries the latest state. A state equal to
    the one last published is not sent again (a burst of changes costs one request)."""

    def __init__(self, rest: AriRest, board: AgentBoard) -> None:
        self.rest = rest
        self.board = board
        self._locks: dict[str, asyncio.Lock] = {}
        self._published: dict[str, str] = {}

    async def publish_queue(self, team: str) -> None:
        """A team's key: BUSY while callers wait for it, NOT_INUSE otherwise."""
        lock = self._locks.setdefault(f"queue:{team}", asyncio.Lock())
        async with lock:
            state = "BUSY" if self.board.callers_waiting(team) else "NOT_INUSE"
            await self._set(queue_device_name(team), state, f"the queue state of team {team}")

    async def publish(self, agent_id: str) -> None:
        lock = self._locks.setdefault(agent_id, asyncio.Lock())
        async with lock:
            state = device_state(self.board.state(agent_id))
            await self._set(device_name(agent_id), state, f"the state of agent {agent_id}")

    async def _set(self, device: str, state: str, what: str) -> None:
        if self._published.get(device) == state:
            return
        try:
            await self.rest.set_device_state(device, state)
        except AriError as exc:
            log.warning("cannot publish %s: %s", what, exc)
            self._published.pop(device, None)  # unknown now: send the next one whatever it is
            return
        self._published[device] = state


async def handle_presence(ports: CallPorts, start: AriEvent) -> None:
    """One feature-code call: change the agent's presence, confirm, hang up."""
    rest, board = ports.rest, ports.board
    channel = start.channel
    assert channel is not None
    events: asyncio.Queue[AriEvent] = asyncio.Queue()
    ports.route(channel.id, events)
    args = start.args
    action = args[1] if len(args) > 1 else ""
    extension = args[2] if len(args) > 2 and args[2] else channel.caller.number
    reason = args[3] if len(args) > 3 and args[3] else None
    agent_id = board.agent_for_extension(extension)
    try:
        await rest.answer(channel.id)
        if action not in ACTIONS or agent_id is None:
            log.warning("presence code %r from unknown extension %r", action, extension)
            await _play(rest, channel.id, "invalid", events)
            return
        presence, prompt = ACTIONS[action]
        board.set_presence(agent_id, presence, reason)
        log.info(
            "agent %s (ext %s): %s%s", agent_id, extension, action, f" ({reason})" if reason else ""
        )
        await _play(rest, channel.id, prompt, events)
    except AriError as exc:
        log.info("presence call from %s ended early: %s", extension, exc)
    finally:
        ports.unroute(channel.id)
        with contextlib.suppress(AriError):
            await rest.hangup(channel.id)


async def _play(
    rest: AriRest, channel_id: str, prompt: str, events: asyncio.Queue[AriEvent]
) -> None:
    """Play the confirmation and wait for its end (or the agent hanging up)."""
    playback_id = new_id()
    await rest.play(channel_id, [media(prompt)], playback_id=playback_id)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(PROMPT_LIMIT_SECONDS):
            while True:
                ev = await events.get()
                if ev.type == "PlaybackFinished" and ev.playback and ev.playback.id == playback_id:
                    return
                if ev.type in ("StasisEnd", "ChannelHangupRequest"):
                    return

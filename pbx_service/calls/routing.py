"""Who may be rung and in which order: pure, synchronous decisions over agent states.

- `on_duty(team, at)`: the agents on duty at an instant (the rota, else fallback members).
- `eligible(agents, states, now)`: those free to be offered a call right now.
- `ring_order(strategy, eligible, states, team_state)`: the attempts, each a list of agents
  rung together.

An agent id is a key of the ``agents:`` config or, for a plain dial string in a team, the dial
string itself (see `pbx_service.config.teams`). States are per agent, not per team, so an agent
on two teams is still offered one call at a time. An agent without a state is logged in with an
unknown phone state: simple setups that track no presence ring everyone.

Every order is deterministic; ties are broken by agent id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pbx_service.calls.hours import BusinessHours
from pbx_service.config.teams import Rota, Strategy, Team

# Aware datetimes of different zones compare by instant; only the sort key needs a floor.
_NEVER = datetime.min.replace(tzinfo=UTC)


class Presence(StrEnum):
    """What the agent said about themselves (log in, log out, pause)."""

    LOGGED_IN = "logged_in"
    LOGGED_OUT = "logged_out"
    PAUSED = "paused"


class EndpointState(StrEnum):
    """What Asterisk says about the agent's phone (device state, simplified)."""

    ONLINE = "online"  # registered and idle
    OFFLINE = "offline"  # unregistered / unavailable
    BUSY = "busy"  # in use, ringing or on hold outside our calls
    UNKNOWN = "unknown"  # no device state (Local channels, mobile numbers): may be rung


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent's state. The ``with_*`` methods return the state after an event."""

    presence: Presence = Presence.LOGGED_IN
    pause_reason: str | None = None
    endpoint: EndpointState = EndpointState.UNKNOWN
    in_call: bool = False
    offered_call: str | None = None  # the call currently ringing this agent
    wrap_up_until: datetime | None = None
    last_call_ended_at: datetime | None = None
    calls_today: int = 0

    def with_offer(self, call_id: str) -> AgentState:
        """The agent's phone starts ringing for `call_id`."""
        return dataclasses.replace(self, offered_call=call_id)

    def with_offer_ended(self) -> AgentState:
        """Ringing stopped without this agent answering (timeout, taken elsewhere, caller gone)."""
        return dataclasses.replace(self, offered_call=None)

    def with_answer(self) -> AgentState:
        """The agent answered the call that rang them."""
        return dataclasses.replace(self, offered_call=None, in_call=True)

    def with_call_end(self, at: datetime, wrap_up: float) -> AgentState:
        """The call ended at `at`; no new call for `wrap_up` seconds."""
        return dataclasses.replace(
            self,
            in_call=False,
            wrap_up_until=at + timedelta(seconds=wrap_up) if wrap_up > 0 else None,
            last_call_ended_at=at,
            calls_today=self.calls_today + 1,
        )

    def with_presence(self, presence: Presence, reason: str | None = None) -> AgentState:
        """Logged in, out, or paused (with a reason such as "lunch")."""
        return dataclasses.replace(
            self, presence=presence, pause_reason=reason if presence is Presence.PAUSED else None
        )

    def with_endpoint(self, endpoint: EndpointState) -> AgentState:
        return dataclasses.replace(self, endpoint=endpoint)

    def with_new_day(self) -> AgentState:
        """Local midnight of the team's day: the daily call count starts again."""
        return dataclasses.replace(self, calls_today=0)

    def unavailable_because(self, now: datetime) -> str | None:
        """Why this agent may not be offered a call at `now`, or None when they may."""
        if self.presence is Presence.LOGGED_OUT:
            return "logged out"
        if self.presence is Presence.PAUSED:
            return f"paused ({self.pause_reason})" if self.pause_reason else "paused"
        if self.endpoint is EndpointState.OFFLINE:
            return "phone offline"
        if self.endpoint is EndpointState.BUSY:
            return "phone busy"
        if self.in_call:
            return "in a call"
        if self.offered_call is not None:
            return f"ringing for {self.offered_call}"
        if self.wrap_up_until is not None and now < self.wrap_up_until:
            return "wrap-up"
        return None

    def is_logged_in(self) -> bool:
        """Logged in (possibly paused) with a phone that is not offline."""
        return self.presence is not Presence.LOGGED_OUT and self.endpoint is not (
            EndpointState.OFFLINE
        )


IDLE = AgentState()


@dataclass(frozen=True, slots=True)
class TeamState:
    """What a team remembers between calls: the round-robin pointer and rotation order."""

    rotation: tuple[str, ...] = ()  # the team's agents in config order (see Team.roster)
    last_rung: str | None = None

    @classmethod
    def for_team(cls, team: Team) -> TeamState:
        return cls(rotation=tuple(team.roster()))

    def with_rung(self, agent_id: str) -> TeamState:
        """`agent_id` was rung: round robin starts after them next time."""
        return dataclasses.replace(self, last_rung=agent_id)


class DutyRota:
    """A rota's shifts as business hours: who is on duty at an instant."""

    def __init__(self, rota: Rota) -> None:
        self.rota = rota
        self._shifts = [
            (tuple(shift.agents), BusinessHours(schedule, f"shift {n}"))
            for n, (shift, schedule) in enumerate(zip(rota.shifts, rota.schedules(), strict=True))
        ]

    def on_duty(self, at: datetime) -> list[str]:
        """Agents of every shift running at `at` (aware), in config order, each once."""
        found: dict[str, None] = {}
        for agents, hours in self._shifts:
            if hours.is_open(at):
                found.update(dict.fromkeys(agents))
        return list(found)


# Rotas are few and live as long as the config; keep the object alive with its DutyRota so
# the id() key is never reused.
_ROTAS: dict[int, tuple[Rota, DutyRota]] = {}


def duty_rota(rota: Rota) -> DutyRota:
    """The (cached) `DutyRota` of a rota config."""
    cached = _ROTAS.get(id(rota))
    if cached is None or cached[0] is not rota:
        if len(_ROTAS) > 256:
            _ROTAS.clear()
        cached = _ROTAS[id(rota)] = (rota, DutyRota(rota))
    return cached[1]


def on_duty(team: Team, at: datetime) -> list[str]:
    """Agent ids on duty at `at` (aware): everyone in members without a rota; with one, the
    agents of the shifts running then, or ``fallback_members`` when no shift gives anybody.

    An empty list means nobody is on duty (the caller overflows).
    """
    if team.rota is None:
        return list(team.members)
    agents = duty_rota(team.rota).on_duty(at)
    return agents if agents else list(team.fallback_members)


def eligible(agents: Iterable[str], states: Mapping[str, AgentState], now: datetime) -> list[str]:
    """The agents, in the given order, who may be offered a call at `now`.

    Never one who is logged out, paused, offline, busy, in a call, already ringing for a call
    or in wrap-up (until `wrap_up_until` itself), so nobody is offered two calls at once.
    """
    out: dict[str, None] = {}
    for agent in agents:
        if states.get(agent, IDLE).unavailable_because(now) is None:
            out[agent] = None
    return list(out)


def _idle_key(state: AgentState) -> datetime:
    ended = state.last_call_ended_at
    return _NEVER if ended is None else ended.astimezone(UTC)


def ring_order(
    strategy: Strategy,
    eligible: Sequence[str],
    states: Mapping[str, AgentState],
    team_state: TeamState | None = None,
) -> list[list[str]]:
    """The ringing attempts for one caller, in order; each attempt rings its agents together.

    - ``ring_all``: one attempt with everyone, in the given order;
    - ``round_robin``: one agent per attempt, in rotation order starting after
      ``team_state.last_rung`` (agents not in the rotation come after, by id);
    - ``longest_idle``: one per attempt, the longest since their last call ended first
      (never called: first of all);
    - ``fewest_calls_today``: one per attempt, fewest calls today first, then longest idle.

    Ties are broken by agent id. No eligible agent: no attempts.
    """
    agents = list(dict.fromkeys(eligible))
    if not agents:
        return []
    if strategy == "ring_all":
        return [agents]
    if strategy == "round_robin":
        team_state = team_state or TeamState()
        position = {agent: n for n, agent in enumerate(team_state.rotation)}
        size = len(team_state.rotation)
        ordered = sorted(agents, key=lambda a: (position.get(a, size), a))
        last = team_state.last_rung
        if last is not None:
            last_key = (position.get(last, size), last)
            later = [a for a in ordered if (position.get(a, size), a) > last_key]
            ordered = later + [a for a in ordered if a not in later]
        return [[a] for a in ordered]
    if strategy == "longest_idle":
        ordered = sorted(agents, key=lambda a: (_idle_key(states.get(a, IDLE)), a))
        return [[a] for a in ordered]
    if strategy == "fewest_calls_today":
        ordered = sorted(
            agents,
            key=lambda a: (states.get(a, IDLE).calls_today, _idle_key(states.get(a, IDLE)), a),
        )
        return [[a] for a in ordered]
    raise ValueError(f"unknown strategy {strategy!r}")

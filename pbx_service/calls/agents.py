"""Who can take a call right now: every agent's state, shared by all calls of one daemon.

The routing decisions are pure (`routing.py`); this board only keeps their inputs current as
calls offer, answer and end, so an agent is never offered two calls at once and gets their
wrap-up time after each call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pbx_service.calls.queueing import Tier
from pbx_service.calls.routing import (
    IDLE,
    AgentState,
    EndpointState,
    Presence,
    TeamState,
    eligible,
    on_duty,
    ring_order,
)
from pbx_service.config import Config
from pbx_service.config.teams import agent_directory


class AgentBoard:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.directory = agent_directory(config.agents, config.teams)
        self.states: dict[str, AgentState] = {}
        self.team_states: dict[str, TeamState] = {}
        # team -> call id -> (tier rank, arrival): callers waiting for that team's agents.
        self.waiting: dict[str, dict[str, tuple[int, datetime]]] = {}
        self.ringing_callers: set[str] = set()
        # Told the agent id after each change, e.g. to publish the agent's BLF state.
        self.changed: Callable[[str], None] = lambda _agent: None
        # Told the team name when its callers-waiting count changes.
        self.queue_changed: Callable[[str], None] = lambda _team: None

    def state(self, agent_id: str) -> AgentState:
        return self.states.get(agent_id, IDLE)

    def endpoint(self, agent_id: str) -> str:
        return self.directory[agent_id].endpoint

    def plan(
        self, team_name: str, now: datetime, *, skip: frozenset[str] = frozenset()
    ) -> list[list[str]]:
        """The ringing attempts for one caller of `team_name` at `now`, without `skip`."""
        team = self.config.teams[team_name]
        candidates = [a for a in on_duty(team, now) if a not in skip]
        team_state = self.team_states.get(team_name) or TeamState.for_team(team)
        free = eligible(candidates, self.states, now)
        return ring_order(team.strategy, free, self.states, team_state)

    def may_free_up(
        self, team_name: str, now: datetime, *, skip: frozenset[str] = frozenset()
    ) -> bool:
        """Is anyone on duty (and not in `skip`) logged in but busy right now: in a call,
        ringing for another caller, or in wrap-up? Then a caller should wait for them."""
        team = self.config.teams[team_name]
        return any(
            self.state(agent).is_logged_in() for agent in on_duty(team, now) if agent not in skip
        )

    # -- callers waiting for a team, served by tier then arrival ------------------------------

    def join(self, team_name: str, call_id: str, tier: Tier, arrived_at: datetime) -> None:
        self.waiting.setdefault(team_name, {})[call_id] = (tier.rank, arrived_at)
        self.queue_changed(team_name)

    def leave(self, team_name: str, call_id: str) -> None:
        self.waiting.get(team_name, {}).pop(call_id, None)
        self.ringing_callers.discard(call_id)
        self.queue_changed(team_name)

    def callers_waiting(self, team_name: str) -> int:
        return len(self.waiting.get(team_name, {}))

    def set_ringing(self, call_id: str, ringing: bool) -> None:
        (self.ringing_callers.add if ringing else self.ringing_callers.discard)(call_id)

    def position(self, team_name: str, call_id: str) -> int:
        """1 for the caller who will be served next, 2 for the one after, ..."""
        queue = self.waiting.get(team_name, {})
        if call_id not in queue:
            return 1
        mine = (queue[call_id], call_id)
        return 1 + sum(1 for c, key in queue.items() if (key, c) < mine)

    def my_turn(self, team_name: str, call_id: str) -> bool:
        """Is this the most important waiting caller not already ringing someone? Tier A
        before B before C before unknown callers, then first come, first served."""
        queue = self.waiting.get(team_name, {})
        candidates = [c for c in queue if c not in self.ringing_callers]
        if not candidates:
            return True
        first = min(candidates, key=lambda c: (queue[c], c))
        return first == call_id

    def agent_for_extension(self, extension: str | None) -> str | None:
        """The agent whose extension (or phone) this is."""
        if not extension:
            return None
        for agent_id, agent in self.directory.items():
            if agent.extension == extension or agent.endpoint.split("/", 1)[-1] == extension:
                return agent_id
        return None

    def endpoint_changed(self, endpoint: str, online: bool) -> list[str]:
        """An agent's phone registered or went away (ARI EndpointStateChange): an offline
        phone is not rung. Returns the agents affected."""
        state = EndpointState.ONLINE if online else EndpointState.OFFLINE
        affected = [a for a, agent in self.directory.items() if agent.endpoint == endpoint]
        for agent_id in affected:
            self.states[agent_id] = self.state(agent_id).with_endpoint(state)
            self.changed(agent_id)
        return affected

    def set_presence(self, agent_id: str, presence: Presence, reason: str | None = None) -> None:
        self.states[agent_id] = self.state(agent_id).with_presence(presence, reason)
        self.changed(agent_id)

    def offer(self, agent_ids: list[str], call_id: str) -> None:
        for agent in agent_ids:
            self.states[agent] = self.state(agent).with_offer(call_id)
            self.changed(agent)

    def offer_ended(self, agent_id: str) -> None:
        self.states[agent_id] = self.state(agent_id).with_offer_ended()
        self.changed(agent_id)

    def answered(self, agent_id: str, team_name: str | None) -> None:
        self.states[agent_id] = self.state(agent_id).with_answer()
        self.changed(agent_id)
        if team_name is None:
            return
        team = self.config.teams[team_name]
        current = self.team_states.get(team_name) or TeamState.for_team(team)
        self.team_states[team_name] = current.with_rung(agent_id)

    def call_ended(self, agent_id: str, at: datetime, team_name: str | None) -> None:
        wrap_up = self.config.teams[team_name].wrap_up if team_name else 0.0
        self.states[agent_id] = self.state(agent_id).with_call_end(at, wrap_up)
        self.changed(agent_id)

"""A call-centre floor driven by the pure routing decisions, with its own ground truth.

The tests' stand-in for the call sessions: it applies what `next_offers` and `overflow_due`
decide and records, independently of the library's `AgentState`s, what every agent is really
doing, so a wrong decision shows up as a broken invariant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pbx_service.calls.queueing import (
    Caller,
    OverflowDecision,
    QueueState,
    Tier,
    next_offers,
    overflow_due,
)
from pbx_service.calls.routing import (
    AgentState,
    EndpointState,
    Presence,
    TeamState,
    on_duty,
)
from pbx_service.config.teams import Team

RANK = {Tier.A: 0, Tier.B: 1, Tier.C: 2, Tier.UNKNOWN: 3}


class Broken(AssertionError):
    """A routing decision broke an invariant of the floor."""


@dataclass
class Desk:
    team: Team
    queue: QueueState
    state: TeamState


@dataclass
class Floor:
    desks: dict[str, Desk]
    states: dict[str, AgentState]
    # Ground truth, kept apart from the library's states.
    calls_of: dict[str, set[str]] = field(default_factory=dict)  # agent -> ringing/talking
    wrap_end: dict[str, datetime] = field(default_factory=dict)
    presence: dict[str, Presence] = field(default_factory=dict)
    phone: dict[str, EndpointState] = field(default_factory=dict)
    waiting: dict[str, tuple[str, Caller, int]] = field(default_factory=dict)  # call -> team..
    ringing: dict[str, tuple[str, ...]] = field(default_factory=dict)  # call -> agents
    talking: dict[str, tuple[str, str, datetime]] = field(default_factory=dict)  # call -> agent
    offers: list[tuple[datetime, str, tuple[str, ...]]] = field(default_factory=list)
    answered: list[tuple[datetime, str, str]] = field(default_factory=list)
    overflowed: list[tuple[datetime, OverflowDecision]] = field(default_factory=list)
    call_ends: dict[str, list[datetime]] = field(default_factory=dict)
    _seq: int = 0

    @classmethod
    def build(cls, teams: dict[str, Team], agents: list[str]) -> Floor:
        desks = {
            name: Desk(team, QueueState(name), TeamState.for_team(team))
            for name, team in teams.items()
        }
        states = {a: AgentState(endpoint=EndpointState.ONLINE) for a in agents}
        floor = cls(desks, states)
        for agent in agents:
            floor.calls_of[agent] = set()
            floor.presence[agent] = Presence.LOGGED_IN
            floor.phone[agent] = EndpointState.ONLINE
        return floor

    # -- events ------------------------------------------------------------------------

    def arrive(self, call_id: str, team: str, tier: Tier, now: datetime) -> None:
        one = Caller(call_id, now, tier)
        self._seq += 1
        self.waiting[call_id] = (team, one, self._seq)
        self.desks[team].queue.enqueue(one)

    def answer(self, call_id: str, agent: str, now: datetime) -> None:
        team = self.waiting[call_id][0]
        for other in self.ringing.pop(call_id):
            self.calls_of[other].discard(call_id)
            self.states[other] = (
                self.states[other].with_answer()
                if other == agent
                else self.states[other].with_offer_ended()
            )
        self.calls_of[agent].add(call_id)
        del self.waiting[call_id]
        self.desks[team].queue.dequeue(call_id)
        self.talking[call_id] = (team, agent, now)
        self.answered.append((now, call_id, agent))

    def no_answer(self, call_id: str) -> None:
        team = self.waiting[call_id][0]
        for agent in self.ringing.pop(call_id):
            self.calls_of[agent].discard(call_id)
            self.states[agent] = self.states[agent].with_offer_ended()
        self.desks[team].queue.offer_ended(call_id)

    def hang_up(self, call_id: str, now: datetime) -> None:
        team, agent, started = self.talking.pop(call_id)
        wrap_up = self.desks[team].team.wrap_up
        self.calls_of[agent].discard(call_id)
        self.states[agent] = self.states[agent].with_call_end(now, wrap_up)
        self.wrap_end[agent] = now + timedelta(seconds=wrap_up)
        self.call_ends.setdefault(agent, []).append(now)
        self.desks[team].queue.record_handle_time((now - started).total_seconds() + wrap_up)

    def caller_leaves(self, call_id: str, now: datetime) -> None:
        if call_id in self.talking:
            self.hang_up(call_id, now)
            return
        if call_id in self.ringing:
            self.no_answer(call_id)
        team = self.waiting.pop(call_id)[0]
        self.desks[team].queue.dequeue(call_id)

    def set_presence(self, agent: str, presence: Presence) -> None:
        self.presence[agent] = presence
        self.states[agent] = self.states[agent].with_presence(presence, "test")

    def set_phone(self, agent: str, phone: EndpointState) -> None:
        self.phone[agent] = phone
        self.states[agent] = self.states[agent].with_endpoint(phone)

    # -- decisions ---------------------------------------------------------------------

    def dispatch(self, now: datetime) -> None:
        """Overflow who must go, then start every offer the decisions give, checking each."""
        for name, desk in self.desks.items():
            duty = on_duty(desk.team, now)
            for decision in overflow_due(desk.queue, desk.team, duty, self.states, now):
                self._check_overflow(name, decision, now)
                self.overflowed.append((now, decision))
                del self.waiting[decision.caller.call_id]
                desk.queue.dequeue(decision.caller.call_id)
            offers = next_offers(
                desk.queue,
                duty,
                self.states,
                now,
                strategy=desk.team.strategy,
                team_state=desk.state,
            )
            for offer in offers:
                self._check_offer(name, offer.caller.call_id, offer.agents, now)
                desk.queue.offered(offer.caller.call_id, offer.agents)
                self.ringing[offer.caller.call_id] = offer.agents
                self.offers.append((now, offer.caller.call_id, offer.agents))
                for agent in offer.agents:
                    self.calls_of[agent].add(offer.caller.call_id)
                    self.states[agent] = self.states[agent].with_offer(offer.caller.call_id)
                if desk.team.strategy == "round_robin":
                    desk.state = desk.state.with_rung(offer.agents[-1])

    def _expected_head(self, team: str) -> str:
        candidates = [
            (RANK[one.tier], one.arrived_at, seq, call_id)
            for call_id, (name, one, seq) in self.waiting.items()
            if name == team and call_id not in self.ringing
        ]
        if not candidates:
            raise Broken(f"an offer in {team} with nobody waiting")
        return min(candidates)[3]

    def _check_offer(self, team: str, call_id: str, agents: tuple[str, ...], now: datetime) -> None:
        if not agents:
            raise Broken(f"an offer of {call_id} to nobody")
        head = self._expected_head(team)
        if call_id != head:
            raise Broken(f"{call_id} offered before {head}, who is ahead in {team}")
        for agent in agents:
            if self.calls_of[agent]:
                raise Broken(f"{agent} offered {call_id} while on {self.calls_of[agent]}")
            if now < self.wrap_end.get(agent, now):
                raise Broken(f"{agent} offered {call_id} in wrap-up until {self.wrap_end[agent]}")
            if self.presence[agent] is not Presence.LOGGED_IN:
                raise Broken(f"{agent} offered {call_id} while {self.presence[agent]}")
            if self.phone[agent] in (EndpointState.OFFLINE, EndpointState.BUSY):
                raise Broken(f"{agent} offered {call_id} with the phone {self.phone[agent]}")

    def _check_overflow(self, team: str, decision: OverflowDecision, now: datetime) -> None:
        call_id = decision.caller.call_id
        if call_id in self.ringing or call_id not in self.waiting:
            raise Broken(f"{call_id} overflowed while ringing or not waiting")
        waited = (now - decision.caller.arrived_at).total_seconds()
        if decision.reason == "max_wait" and waited < self.desks[team].team.max_wait:
            raise Broken(f"{call_id} overflowed after {waited}s only")

"""Waiting callers: priority order, offers to agents, overflow, and the account-manager chain.

Pure and synchronous like `routing`: the call sessions feed events in (a caller arrives, an
offer ends, a caller leaves) and ask what to do next; the async side rings and plays.

Order: by tier (A before B before C before unknown), then by arrival, then by enqueue order.
The first caller who is not already ringing somebody is always served first: a lower-priority
caller never takes an agent while a higher-priority one waits.

An offer rings one attempt of the team's strategy (see `routing.ring_order`). Agents who rang
for a caller without answering are skipped for that caller until every eligible agent has had
a turn, so longest-idle does not ring the same person again and again.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pbx_service.calls.hours import NaiveTimeError
from pbx_service.calls.routing import (
    IDLE,
    AgentState,
    TeamState,
    eligible,
    on_duty,
    ring_order,
)
from pbx_service.config.teams import Strategy, Team


class Tier(StrEnum):
    """How important a known customer is; unknown callers come last."""

    A = "A"
    B = "B"
    C = "C"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _TIER_RANK[self]


_TIER_RANK = {Tier.A: 0, Tier.B: 1, Tier.C: 2, Tier.UNKNOWN: 3}


@dataclass(frozen=True, slots=True)
class Caller:
    """A caller waiting for a person."""

    call_id: str
    arrived_at: datetime  # aware; when the caller joined this queue
    tier: Tier = Tier.UNKNOWN
    preferred_agent: str | None = None  # the customer's account manager, when known
    number: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring `agents` together for `caller`."""

    caller: Caller
    agents: tuple[str, ...]


@dataclass(slots=True)
class _Waiting:
    caller: Caller
    seq: int
    tried: set[str] = field(default_factory=set)
    ringing: tuple[str, ...] = ()
    announced_at: datetime | None = None
    overflow_offered: bool = False

    def key(self) -> tuple[int, datetime, int]:
        return (self.caller.tier.rank, self.caller.arrived_at.astimezone(UTC), self.seq)


class QueueState:
    """The callers waiting for one team, in priority order, and recent handle times."""

    def __init__(self, team: str = "", history: int = 20) -> None:
        self.team = team
        self._waiting: list[_Waiting] = []
        self._seq = itertools.count()
        self._handle_times: deque[float] = deque(maxlen=history)

    def __len__(self) -> int:
        return len(self._waiting)

    def _find(self, call_id: str) -> _Waiting | None:
        for entry in self._waiting:
            if entry.caller.call_id == call_id:
                return entry
        return None

    def enqueue(self, caller: Caller) -> int:
        """Add a caller; their 1-based position. A caller already waiting keeps their place."""
        if caller.arrived_at.utcoffset() is None:
            raise NaiveTimeError(
                f"caller {caller.call_id}: arrived_at {caller.arrived_at.isoformat()} has no "
                "time zone; pass an aware datetime such as datetime.now(UTC)"
            )
        if self._find(caller.call_id) is None:
            self._waiting.append(_Waiting(caller, next(self._seq)))
            self._waiting.sort(key=_Waiting.key)
        position = self.position_of(caller.call_id)
        assert position is not None
        return position

    def dequeue(self, call_id: str) -> Caller | None:
        """Remove a caller (connected, gone, overflowed); None when not waiting."""
        entry = self._find(call_id)
        if entry is None:
            return None
        self._waiting.remove(entry)
        return entry.caller

    def position_of(self, call_id: str) -> int | None:
        """1-based place in the queue, or None when not waiting."""
        for n, entry in enumerate(self._waiting, 1):
            if entry.caller.call_id == call_id:
                return n
        return None

    def callers(self) -> list[Caller]:
        """Everyone waiting, first to be served first."""
        return [entry.caller for entry in self._waiting]

    def head(self) -> Caller | None:
        """The next caller to be offered (not ringing anybody now), or None."""
        for entry in self._waiting:
            if not entry.ringing:
                return entry.caller
        return None

    # -- offers ------------------------------------------------------------------------

    def offered(self, call_id: str, agents: Sequence[str]) -> None:
        """An offer for `call_id` started ringing `agents`."""
        entry = self._find(call_id)
        if entry is not None:
            entry.ringing = tuple(agents)

    def offer_ended(self, call_id: str) -> None:
        """The offer was not answered (timeout, rejected): those agents had their turn."""
        entry = self._find(call_id)
        if entry is not None:
            entry.tried.update(entry.ringing)
            entry.ringing = ()

    def ringing(self, call_id: str) -> tuple[str, ...]:
        entry = self._find(call_id)
        return entry.ringing if entry is not None else ()

    def ringing_agents(self) -> set[str]:
        """Agents ringing for some caller of this queue."""
        return {agent for entry in self._waiting for agent in entry.ringing}

    # -- waiting time ------------------------------------------------------------------

    def record_handle_time(self, seconds: float) -> None:
        """A call of this team ended after `seconds` of talk and wrap-up."""
        if seconds >= 0:
            self._handle_times.append(seconds)

    def average_handle_time(self) -> float | None:
        if not self._handle_times:
            return None
        return sum(self._handle_times) / len(self._handle_times)

    def estimated_wait(self, call_id: str, staffed: int) -> float | None:
        """Seconds until `call_id` is likely served: its position times the average handle
        time, shared among `staffed` agents. None without history, agents or the caller."""
        position = self.position_of(call_id)
        average = self.average_handle_time()
        if position is None or average is None or staffed <= 0:
            return None
        return position * average / staffed

    def announcements_due(self, now: datetime, every: float) -> list[tuple[Caller, int]]:
        """Callers due to hear their position (every `every` seconds since joining or the last
        announcement; 0 = never), with the position. Marks them announced at `now`."""
        if every <= 0:
            return []
        due: list[tuple[Caller, int]] = []
        for n, entry in enumerate(self._waiting, 1):
            since = entry.announced_at or entry.caller.arrived_at
            if entry.ringing or (now - since).total_seconds() < every:
                continue
            entry.announced_at = now
            due.append((entry.caller, n))
        return due

    def mark_overflow_offered(self, call_id: str) -> None:
        """The caller heard the callback offer and stayed: do not offer it again."""
        entry = self._find(call_id)
        if entry is not None:
            entry.overflow_offered = True

    def _entries(self) -> list[_Waiting]:
        return list(self._waiting)


def next_offer(
    queue: QueueState,
    agents: Sequence[str],
    states: Mapping[str, AgentState],
    now: datetime,
    *,
    strategy: Strategy = "ring_all",
    team_state: TeamState | None = None,
) -> Offer | None:
    """Which caller is offered to which agent(s) next; None when nobody can be offered.

    `agents` are the team's agents on duty (`routing.on_duty`). The caller is the first one
    not already ringing; the agents, the first attempt of `strategy` among those eligible and
    not ringing for another caller of this queue, skipping agents who already rang for this
    caller unless everyone has.
    """
    offers = next_offers(
        queue, agents, states, now, strategy=strategy, team_state=team_state, limit=1
    )
    return offers[0] if offers else None


def next_offers(
    queue: QueueState,
    agents: Sequence[str],
    states: Mapping[str, AgentState],
    now: datetime,
    *,
    strategy: Strategy = "ring_all",
    team_state: TeamState | None = None,
    limit: int | None = None,
) -> list[Offer]:
    """Every offer that can start now, in priority order; each agent in at most one offer.

    The same as calling `next_offer` again after applying each offer. Does not change
    `queue`; the caller marks offers with `QueueState.offered` as they start ringing.
    """
    taken = queue.ringing_agents()
    free = [a for a in eligible(agents, states, now) if a not in taken]
    offers: list[Offer] = []
    for entry in queue._entries():
        if limit is not None and len(offers) >= limit:
            break
        if entry.ringing:
            continue
        if not free:
            break
        candidates = [a for a in free if a not in entry.tried] or free
        attempts = ring_order(strategy, candidates, states, team_state)
        chosen = tuple(attempts[0])
        offers.append(Offer(entry.caller, chosen))
        free = [a for a in free if a not in chosen]
        if strategy == "round_robin" and team_state is not None and chosen:
            team_state = team_state.with_rung(chosen[-1])
    return offers


# -- overflow ---------------------------------------------------------------------------


class OverflowReason(StrEnum):
    MAX_WAIT = "max_wait"  # waited the team's max_wait
    NOBODY_ON_DUTY = "nobody_on_duty"  # the rota (and fallback) gives nobody
    NOBODY_LOGGED_IN = "nobody_logged_in"  # on duty, but all logged out or offline


OverflowAction = Literal["team", "voicemail", "callback_offer", "flow_voicemail"]


@dataclass(frozen=True, slots=True)
class OverflowDecision:
    """Take `caller` out of the queue (or offer a callback) for `reason`.

    `action`: ``team`` (join `target`'s queue), ``voicemail`` (box `target`),
    ``callback_offer`` ("press 1 to be called back and keep your place"; the caller stays in
    the queue until they accept) or ``flow_voicemail`` (no overflow configured).
    """

    caller: Caller
    reason: OverflowReason
    action: OverflowAction
    target: str | None = None


def overflow_due(
    queue: QueueState,
    team: Team,
    on_duty: Sequence[str],
    states: Mapping[str, AgentState],
    now: datetime,
) -> list[OverflowDecision]:
    """Callers who must leave the queue now: all of them when nobody is on duty or logged
    in, otherwise those who waited ``team.max_wait``. A caller ringing an agent is left to
    finish ringing; one who already heard the callback offer is not asked again."""
    if not on_duty:
        reason: OverflowReason | None = OverflowReason.NOBODY_ON_DUTY
    elif not any(states.get(a, IDLE).is_logged_in() for a in on_duty):
        reason = OverflowReason.NOBODY_LOGGED_IN
    else:
        reason = None
    action, target = _overflow_action(team)
    out: list[OverflowDecision] = []
    for entry in queue._entries():
        if entry.ringing or entry.overflow_offered:
            continue
        waited = (now - entry.caller.arrived_at).total_seconds()
        why = reason or (OverflowReason.MAX_WAIT if waited >= team.max_wait else None)
        if why is not None:
            out.append(OverflowDecision(entry.caller, why, action, target))
    return out


def _overflow_action(team: Team) -> tuple[OverflowAction, str | None]:
    overflow = team.overflow
    if overflow is None:
        return "flow_voicemail", None
    if overflow.team is not None:
        return "team", overflow.team
    if overflow.voicemail is not None:
        return "voicemail", overflow.voicemail
    return "callback_offer", None


# -- known customers: the account-manager chain ------------------------------------------


@dataclass(frozen=True, slots=True)
class RingAgent:
    """Ring one agent (the account manager) for `timeout` seconds, if they are eligible."""

    agent: str
    timeout: float


@dataclass(frozen=True, slots=True)
class RingTeam:
    """Ring `team`'s eligible on-duty agents once, by its strategy, without queueing."""

    team: str


@dataclass(frozen=True, slots=True)
class JoinQueue:
    """The normal path: wait in `team`'s queue (with its overflow)."""

    team: str


RouteStep = RingAgent | RingTeam | JoinQueue


def route_chain(
    caller: Caller,
    teams: Mapping[str, Team],
    normal_team: str,
    known_agents: Collection[str],
    *,
    personal_tiers: Iterable[Tier] = (Tier.A,),
) -> list[RouteStep]:
    """The routing steps for a caller: account manager, then the manager's team, then the
    normal path. Other callers (tier not in `personal_tiers`, no or unknown manager) get the
    normal path only.

    The manager's team is the first team in config order whose roster has the manager
    (preferring `normal_team` when it has them, which then is just the normal path). The
    manager rings for that team's ``ring_timeout``. At run time a step whose agents are not
    eligible is skipped.
    """
    normal: list[RouteStep] = [JoinQueue(normal_team)]
    manager = caller.preferred_agent
    if caller.tier not in set(personal_tiers) or manager is None or manager not in known_agents:
        return normal
    home = [name for name, team in teams.items() if manager in team.roster()]
    if normal_team in home:
        home = [normal_team]
    team_name = home[0] if home else normal_team
    timeout = teams[team_name].ring_timeout if team_name in teams else 20.0
    steps: list[RouteStep] = [RingAgent(manager, timeout)]
    if team_name != normal_team:
        steps.append(RingTeam(team_name))
    return steps + normal


def runnable_steps(
    chain: Sequence[RouteStep],
    teams: Mapping[str, Team],
    states: Mapping[str, AgentState],
    now: datetime,
) -> list[RouteStep]:
    """The steps of `chain` worth running at `now`: a `RingAgent` whose agent is eligible, a
    `RingTeam` with an eligible agent on duty (`routing.on_duty`), and always `JoinQueue`
    (the queue waits or overflows by itself)."""
    out: list[RouteStep] = []
    for step in chain:
        if isinstance(step, RingAgent):
            if eligible([step.agent], states, now):
                out.append(step)
        elif isinstance(step, RingTeam):
            team = teams.get(step.team)
            if team is not None and eligible(on_duty(team, now), states, now):
                out.append(step)
        else:
            out.append(step)
    return out

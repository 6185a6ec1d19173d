"""The queue: tier then arrival order, positions, waits, offers, overflow, the tier-A chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pbx_service.calls.hours import NaiveTimeError
from pbx_service.calls.queueing import (
    Caller,
    JoinQueue,
    Offer,
    OverflowDecision,
    OverflowReason,
    QueueState,
    RingAgent,
    RingTeam,
    Tier,
    next_offer,
    next_offers,
    overflow_due,
    route_chain,
    runnable_steps,
)
from pbx_service.calls.routing import AgentState, EndpointState, Presence, TeamState

from .helpers import MOSCOW, root, team

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FREE = AgentState(endpoint=EndpointState.ONLINE)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def caller(call_id: str, arrived: float, tier: Tier = Tier.UNKNOWN) -> Caller:
    return Caller(call_id, at(arrived), tier)


def filled(*callers: Caller) -> QueueState:
    queue = QueueState("sales")
    for one in callers:
        queue.enqueue(one)
    return queue


# -- order and positions ----------------------------------------------------------------


def test_callers_are_ordered_by_tier_then_arrival() -> None:
    queue = filled(
        caller("u1", 0),
        caller("c1", 1, Tier.C),
        caller("a1", 5, Tier.A),
        caller("b1", 2, Tier.B),
        caller("a0", 3, Tier.A),
        caller("u0", -1),
        caller("b0", 2, Tier.B),  # same arrival as b1: enqueue order
    )
    assert [c.call_id for c in queue.callers()] == ["a0", "a1", "b1", "b0", "c1", "u0", "u1"]
    assert [queue.position_of(c) for c in ("a0", "b0", "u1")] == [1, 4, 7]
    assert queue.position_of("nobody") is None
    assert len(queue) == 7


def test_arrival_compares_instants_across_zones() -> None:
    queue = filled(
        Caller("moscow", at(10).astimezone(MOSCOW)),  # 15:00:10 on Moscow's wall
        Caller("utc", at(20)),
    )
    assert [c.call_id for c in queue.callers()] == ["moscow", "utc"]


def test_enqueue_returns_the_position_and_keeps_a_place() -> None:
    queue = QueueState()
    assert queue.enqueue(caller("u1", 0)) == 1
    assert queue.enqueue(caller("a1", 1, Tier.A)) == 1
    assert queue.enqueue(caller("u1", 0)) == 2  # already waiting: the same place
    assert len(queue) == 2


def test_dequeue_removes_and_moves_everyone_up() -> None:
    queue = filled(caller("x", 0), caller("y", 1), caller("z", 2))
    assert queue.dequeue("x") == caller("x", 0)
    assert queue.dequeue("x") is None
    assert [queue.position_of(c) for c in ("y", "z")] == [1, 2]


def test_estimated_wait_from_recent_handle_times() -> None:
    queue = QueueState(history=3)
    queue.enqueue(caller("x", 0))
    queue.enqueue(caller("y", 1))
    assert queue.estimated_wait("y", staffed=2) is None  # no history yet
    for seconds in (1000, 60, 120, 180):  # only the last 3 count
        queue.record_handle_time(seconds)
    assert queue.average_handle_time() == 120
    assert queue.estimated_wait("x", staffed=2) == 60
    assert queue.estimated_wait("y", staffed=2) == 120
    assert queue.estimated_wait("y", staffed=1) == 240
    assert queue.estimated_wait("y", staffed=0) is None
    assert queue.estimated_wait("nobody", staffed=1) is None


def test_position_announcements_every_n_seconds() -> None:
    queue = filled(caller("x", 0), caller("y", 30))
    assert queue.announcements_due(at(59), every=60) == []
    assert queue.announcements_due(at(60), every=60) == [(caller("x", 0), 1)]
    assert queue.announcements_due(at(90), every=60) == [(caller("y", 30), 2)]
    assert queue.announcements_due(at(119), every=60) == []
    assert queue.announcements_due(at(120), every=60) == [(caller("x", 0), 1)]
    assert queue.announcements_due(at(600), every=0) == []


def test_announcements_follow_the_current_position() -> None:
    queue = filled(caller("x", 0), caller("y", 30))
    queue.announcements_due(at(90), every=60)
    queue.dequeue("x")
    assert queue.announcements_due(at(150), every=60) == [(caller("y", 30), 1)]
    queue.offered("y", ["a"])
    assert queue.announcements_due(at(300), every=60) == []  # ringing: not interrupted


# -- offers -----------------------------------------------------------------------------


def test_the_first_caller_gets_the_first_attempt() -> None:
    queue = filled(caller("u", 0), caller("a", 1, Tier.A))
    states = {"p": FREE, "q": FREE}
    assert next_offer(queue, ["p", "q"], states, at(2)) == Offer(caller("a", 1, Tier.A), ("p", "q"))
    offer = next_offer(queue, ["p", "q"], states, at(2), strategy="longest_idle")
    assert offer == Offer(caller("a", 1, Tier.A), ("p",))


def test_nobody_eligible_means_no_offer_and_no_jumping_the_queue() -> None:
    queue = filled(caller("a", 0, Tier.A), caller("u", 1))
    states = {"p": FREE.with_presence(Presence.PAUSED, "lunch")}
    assert next_offer(queue, ["p"], states, at(2)) is None
    assert next_offers(queue, ["p"], states, at(2)) == []
    assert next_offer(queue, [], {}, at(2)) is None
    assert next_offer(QueueState(), ["p"], {"p": FREE}, at(2)) is None


def test_offers_go_down_the_queue_one_agent_each() -> None:
    queue = filled(*(caller(f"c{n}", n) for n in range(4)))
    states = {a: FREE for a in "pqr"}
    offers = next_offers(queue, ["p", "q", "r"], states, at(9), strategy="longest_idle")
    assert offers == [
        Offer(caller("c0", 0), ("p",)),
        Offer(caller("c1", 1), ("q",)),
        Offer(caller("c2", 2), ("r",)),
    ]
    # ring_all takes everyone for the first caller.
    assert next_offers(queue, ["p", "q", "r"], states, at(9)) == [
        Offer(caller("c0", 0), ("p", "q", "r"))
    ]


def test_round_robin_offers_advance_the_pointer() -> None:
    queue = filled(caller("c0", 0), caller("c1", 1))
    state = TeamState(("p", "q", "r"), last_rung="p")
    offers = next_offers(
        queue, ["p", "q", "r"], {}, at(5), strategy="round_robin", team_state=state
    )
    assert [o.agents for o in offers] == [("q",), ("r",)]


def test_a_ringing_caller_is_skipped_and_its_agents_are_taken() -> None:
    queue = filled(caller("c0", 0), caller("c1", 1), caller("c2", 2))
    queue.offered("c0", ["p"])
    assert queue.ringing("c0") == ("p",)
    assert queue.head() == caller("c1", 1)
    # p's state still says free (the session has not updated it yet): the queue knows.
    offers = next_offers(queue, ["p", "q"], {}, at(5), strategy="longest_idle")
    assert offers == [Offer(caller("c1", 1), ("q",))]


def test_an_agent_who_did_not_answer_is_tried_last_for_that_caller() -> None:
    queue = filled(caller("c0", 0))
    states = {"p": FREE, "q": FREE.with_call_end(at(-5), 0)}
    first = next_offer(queue, ["p", "q"], states, at(1), strategy="longest_idle")
    assert first is not None and first.agents == ("p",)
    queue.offered("c0", first.agents)
    queue.offer_ended("c0")
    again = next_offer(queue, ["p", "q"], states, at(20), strategy="longest_idle")
    assert again is not None and again.agents == ("q",)
    queue.offered("c0", again.agents)
    queue.offer_ended("c0")
    # Everyone had a turn: start over.
    third = next_offer(queue, ["p", "q"], states, at(40), strategy="longest_idle")
    assert third is not None and third.agents == ("p",)
    # When only a tried agent is free, they are rung rather than nobody.
    busy_p = {**states, "p": FREE.with_offer("other")}
    fourth = next_offer(queue, ["p", "q"], busy_p, at(40), strategy="longest_idle")
    assert fourth is not None and fourth.agents == ("q",)


# -- overflow ---------------------------------------------------------------------------

SALES = team("{members: [p, q], max_wait: 120, overflow: {team: reception}}")


def test_overflow_after_max_wait() -> None:
    queue = filled(caller("c0", 0), caller("c1", 30, Tier.A))
    states = {"p": FREE.with_offer("x"), "q": FREE.with_offer("y")}
    assert overflow_due(queue, SALES, ["p", "q"], states, at(119)) == []
    assert overflow_due(queue, SALES, ["p", "q"], states, at(120)) == [
        OverflowDecision(caller("c0", 0), OverflowReason.MAX_WAIT, "team", "reception")
    ]
    assert [d.caller.call_id for d in overflow_due(queue, SALES, ["p", "q"], states, at(150))] == [
        "c1",
        "c0",
    ]


def test_overflow_when_nobody_is_on_duty_or_logged_in() -> None:
    queue = filled(caller("c0", 0))
    assert overflow_due(queue, SALES, [], {}, at(1)) == [
        OverflowDecision(caller("c0", 0), OverflowReason.NOBODY_ON_DUTY, "team", "reception")
    ]
    gone = {
        "p": FREE.with_presence(Presence.LOGGED_OUT),
        "q": FREE.with_endpoint(EndpointState.OFFLINE),
    }
    assert overflow_due(queue, SALES, ["p", "q"], gone, at(1))[0].reason is (
        OverflowReason.NOBODY_LOGGED_IN
    )
    # Paused or busy agents are coming back: keep waiting.
    paused = {**gone, "p": FREE.with_presence(Presence.PAUSED, "lunch")}
    assert overflow_due(queue, SALES, ["p", "q"], paused, at(1)) == []


@pytest.mark.parametrize(
    ("overflow", "action", "target"),
    [
        ("overflow: {voicemail: sales}", "voicemail", "sales"),
        ("overflow: {callback_offer: true}", "callback_offer", None),
        ("", "flow_voicemail", None),
    ],
)
def test_overflow_actions(overflow: str, action: str, target: str | None) -> None:
    configured = team(f"{{members: [p], max_wait: 60, {overflow}}}")
    decision = overflow_due(filled(caller("c0", 0)), configured, ["p"], {}, at(60))[0]
    assert (decision.action, decision.target) == (action, target)


def test_a_ringing_or_already_asked_caller_is_not_overflowed() -> None:
    callback = team("{members: [p], max_wait: 60, overflow: {callback_offer: true}}")
    queue = filled(caller("c0", 0), caller("c1", 1))
    queue.offered("c0", ["p"])
    assert [d.caller.call_id for d in overflow_due(queue, callback, ["p"], {}, at(90))] == ["c1"]
    queue.mark_overflow_offered("c1")  # declined the callback: keeps waiting
    assert overflow_due(queue, callback, ["p"], {}, at(90)) == []
    queue.offer_ended("c0")
    assert [d.caller.call_id for d in overflow_due(queue, callback, ["p"], {}, at(90))] == ["c0"]


# -- the tier-A chain -------------------------------------------------------------------

STAFF = root(
    """
    agents:
      ivanov: {endpoint: PJSIP/101}
      petrov: {endpoint: PJSIP/102}
      boss: {endpoint: PJSIP/100}
    teams:
      reception: {members: [PJSIP/201]}
      key_accounts: {members: [ivanov, petrov], ring_timeout: 12}
      sales: {members: [petrov, ivanov], ring_timeout: 30}
    """
)
KNOWN = {"ivanov", "petrov", "boss", "PJSIP/201"}


def vip(manager: str | None, tier: Tier = Tier.A) -> Caller:
    return Caller("c", T0, tier, preferred_agent=manager)


def test_tier_a_rings_the_manager_then_their_team_then_the_normal_path() -> None:
    assert route_chain(vip("ivanov"), STAFF.teams, "reception", KNOWN) == [
        RingAgent("ivanov", 12),
        RingTeam("key_accounts"),
        JoinQueue("reception"),
    ]


def test_the_managers_team_is_the_normal_team_when_it_has_them() -> None:
    assert route_chain(vip("ivanov"), STAFF.teams, "sales", KNOWN) == [
        RingAgent("ivanov", 30),
        JoinQueue("sales"),
    ]


def test_a_manager_on_no_team_rings_then_the_normal_path() -> None:
    assert route_chain(vip("boss"), STAFF.teams, "reception", KNOWN) == [
        RingAgent("boss", 20),
        JoinQueue("reception"),
    ]


@pytest.mark.parametrize(
    "who",
    [
        vip("ivanov", Tier.B),
        vip("ivanov", Tier.UNKNOWN),
        vip(None),
        vip("fired_last_year"),
    ],
)
def test_everyone_else_takes_the_normal_path(who: Caller) -> None:
    assert route_chain(who, STAFF.teams, "reception", KNOWN) == [JoinQueue("reception")]


def test_personal_service_can_cover_more_tiers() -> None:
    chain = route_chain(
        vip("ivanov", Tier.B), STAFF.teams, "reception", KNOWN, personal_tiers=(Tier.A, Tier.B)
    )
    assert chain[0] == RingAgent("ivanov", 12)


def test_runnable_steps_skip_an_unavailable_manager_and_an_empty_team() -> None:
    chain = route_chain(vip("ivanov"), STAFF.teams, "reception", KNOWN)
    assert runnable_steps(chain, STAFF.teams, {}, T0) == chain
    away = {"ivanov": FREE.with_presence(Presence.PAUSED, "meeting")}
    assert runnable_steps(chain, STAFF.teams, away, T0) == [
        RingTeam("key_accounts"),
        JoinQueue("reception"),
    ]
    all_busy = {**away, "petrov": FREE.with_offer("other")}
    assert runnable_steps(chain, STAFF.teams, all_busy, T0) == [JoinQueue("reception")]


def test_a_naive_arrival_is_refused() -> None:
    with pytest.raises(NaiveTimeError, match=r"caller c: arrived_at .* has no time zone"):
        QueueState().enqueue(Caller("c", datetime(2026, 11, 25, 12, 0)))

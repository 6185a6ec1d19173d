"""Eligibility and the exact ring order of every strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_service.calls.routing import (
    AgentState,
    EndpointState,
    Presence,
    TeamState,
    eligible,
    ring_order,
)
from pbx_service.config.teams import STRATEGIES, Strategy

from .helpers import MOSCOW, team

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FREE = AgentState(endpoint=EndpointState.ONLINE)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# -- eligibility ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (AgentState(presence=Presence.LOGGED_OUT), "logged out"),
        (FREE.with_presence(Presence.PAUSED, "lunch"), "paused (lunch)"),
        (AgentState(presence=Presence.PAUSED), "paused"),
        (AgentState(endpoint=EndpointState.OFFLINE), "phone offline"),
        (AgentState(endpoint=EndpointState.BUSY), "phone busy"),
        (FREE.with_offer("c1").with_answer(), "in a call"),
        (FREE.with_offer("c1"), "ringing for c1"),
        (FREE.with_call_end(ago(10), wrap_up=30), "wrap-up"),
    ],
)
def test_an_unavailable_agent_is_never_eligible(state: AgentState, why: str) -> None:
    assert state.unavailable_because(NOW) == why
    assert eligible(["x", "ok"], {"x": state, "ok": FREE}, NOW) == ["ok"]


@pytest.mark.parametrize(
    "state",
    [
        FREE,
        AgentState(),  # unknown phone state: Local channels, mobile numbers
        FREE.with_presence(Presence.PAUSED, "lunch").with_presence(Presence.LOGGED_IN),
        FREE.with_offer("c1").with_offer_ended(),
        FREE.with_endpoint(EndpointState.BUSY).with_endpoint(EndpointState.ONLINE),
    ],
)
def test_a_free_agent_is_eligible(state: AgentState) -> None:
    assert state.unavailable_because(NOW) is None
    assert eligible(["x"], {"x": state}, NOW) == ["x"]


def test_wrap_up_lasts_until_its_end_exactly() -> None:
    ended = FREE.with_offer("c").with_answer().with_call_end(NOW, wrap_up=30)
    assert ended.wrap_up_until == NOW + timedelta(seconds=30)
    assert ended.calls_today == 1 and ended.last_call_ended_at == NOW and not ended.in_call
    states = {"x": ended}
    assert eligible(["x"], states, NOW) == []
    assert eligible(["x"], states, NOW + timedelta(seconds=29.999)) == []
    assert eligible(["x"], states, NOW + timedelta(seconds=30)) == ["x"]
    # A wrap-up given in another zone is the same instant.
    assert eligible(["x"], states, (NOW + timedelta(seconds=30)).astimezone(MOSCOW)) == ["x"]
    assert FREE.with_call_end(NOW, wrap_up=0).wrap_up_until is None


def test_an_agent_without_state_is_free_and_order_is_kept() -> None:
    assert eligible(["c", "a", "b", "a"], {}, NOW) == ["c", "a", "b"]


def test_logged_in_means_not_logged_out_and_not_offline() -> None:
    assert FREE.with_presence(Presence.PAUSED).is_logged_in()
    assert not FREE.with_presence(Presence.LOGGED_OUT).is_logged_in()
    assert not FREE.with_endpoint(EndpointState.OFFLINE).is_logged_in()
    assert FREE.with_presence(Presence.LOGGED_IN, "ignored").pause_reason is None


def test_a_new_day_resets_the_call_count() -> None:
    assert FREE.with_call_end(NOW, 0).with_call_end(NOW, 0).calls_today == 2
    assert FREE.with_call_end(NOW, 0).with_new_day().calls_today == 0


# -- strategies -------------------------------------------------------------------------


def test_ring_all_is_one_attempt_with_everyone() -> None:
    assert ring_order("ring_all", ["c", "a", "b"], {}, None) == [["c", "a", "b"]]


def test_nobody_eligible_means_no_attempts() -> None:
    for strategy in ("ring_all", "round_robin", "longest_idle", "fewest_calls_today"):
        assert ring_order(strategy, [], {}, TeamState()) == []


ROTATION = TeamState(rotation=("d", "b", "a", "c"))


@pytest.mark.parametrize(
    ("last", "eligible_agents", "expected"),
    [
        (None, ["a", "b", "c", "d"], ["d", "b", "a", "c"]),
        ("d", ["a", "b", "c", "d"], ["b", "a", "c", "d"]),
        ("a", ["a", "b", "c", "d"], ["c", "d", "b", "a"]),
        ("c", ["a", "b", "c", "d"], ["d", "b", "a", "c"]),
        # The last one rung is busy now: start after their place anyway.
        ("b", ["a", "c", "d"], ["a", "c", "d"]),
        ("a", ["b", "d"], ["d", "b"]),
        # Agents outside the rotation come after it, by id.
        ("c", ["z", "y", "a"], ["y", "z", "a"]),
        ("y", ["z", "y", "a"], ["z", "a", "y"]),
    ],
)
def test_round_robin_starts_after_the_last_one_rung(
    last: str | None, eligible_agents: list[str], expected: list[str]
) -> None:
    state = TeamState(ROTATION.rotation, last)
    assert ring_order("round_robin", eligible_agents, {}, state) == [[a] for a in expected]


def test_round_robin_walks_the_whole_rotation() -> None:
    state = TeamState.for_team(team("{members: [PJSIP/3, PJSIP/1, PJSIP/2]}"))
    rung = []
    for _ in range(7):
        first = ring_order("round_robin", ["PJSIP/1", "PJSIP/2", "PJSIP/3"], {}, state)[0][0]
        rung.append(first)
        state = state.with_rung(first)
    assert rung == ["PJSIP/3", "PJSIP/1", "PJSIP/2"] * 2 + ["PJSIP/3"]


def test_round_robin_without_team_state_goes_by_id() -> None:
    assert ring_order("round_robin", ["b", "c", "a"], {}, None) == [["a"], ["b"], ["c"]]


def test_longest_idle_never_called_first_then_oldest_call_end() -> None:
    states = {
        "a": FREE.with_call_end(ago(60), 0),
        "b": FREE.with_call_end(ago(600), 0),
        "c": FREE,  # never called
        "d": FREE.with_call_end(ago(60), 0),  # ties with a: by id
        "e": FREE.with_call_end(ago(5), 0),
    }
    assert ring_order("longest_idle", ["e", "d", "c", "b", "a"], states, None) == [
        ["c"],
        ["b"],
        ["a"],
        ["d"],
        ["e"],
    ]
    # Agents without a state have never been called either; ties by id.
    assert ring_order("longest_idle", ["z", "y"], {}, None) == [["y"], ["z"]]


def test_longest_idle_compares_instants_across_zones() -> None:
    states = {
        "a": FREE.with_call_end(ago(60).astimezone(MOSCOW), 0),  # 14:59 Moscow
        "b": FREE.with_call_end(ago(120), 0),  # 11:58 UTC: earlier, though "smaller" on a wall
    }
    assert ring_order("longest_idle", ["a", "b"], states, None) == [["b"], ["a"]]


def test_fewest_calls_today_then_longest_idle_then_id() -> None:
    def made(calls: int, ended: datetime | None) -> AgentState:
        return AgentState(calls_today=calls, last_call_ended_at=ended)

    states = {
        "a": made(3, ago(900)),
        "b": made(1, ago(10)),
        "c": made(1, ago(500)),
        "d": made(0, None),
        "e": made(1, ago(500)),
        "f": made(0, ago(1)),
    }
    assert ring_order("fewest_calls_today", list("abcdef"), states, None) == [
        ["d"],
        ["f"],
        ["c"],
        ["e"],
        ["b"],
        ["a"],
    ]


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'random'"):
        ring_order("random", ["a"], {}, None)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    strategy=st.sampled_from(STRATEGIES),
    agents=st.lists(st.sampled_from("abcdefgh"), unique=True),
    calls=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3)),
    idle=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 3)),
    last=st.none() | st.sampled_from("abcdefghz"),
)
def test_every_eligible_agent_is_rung_exactly_once(
    strategy: Strategy,
    agents: list[str],
    calls: dict[str, int],
    idle: dict[str, int],
    last: str | None,
) -> None:
    states = {
        a: AgentState(calls_today=calls.get(a, 0), last_call_ended_at=ago(idle[a] * 60))
        for a in idle
    }
    team_state = TeamState(rotation=("h", "c", "a", "f"), last_rung=last)
    attempts = ring_order(strategy, agents, states, team_state)
    rung = [agent for attempt in attempts for agent in attempt]
    assert sorted(rung) == sorted(agents)
    assert all(attempts)
    assert len(attempts) == (min(len(agents), 1) if strategy == "ring_all" else len(agents))

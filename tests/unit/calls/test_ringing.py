from datetime import UTC, datetime, timedelta

from pbx_service.calls.outcome import CallFacts, decide_outcome
from pbx_service.calls.ringing import (
    BridgeWith,
    HangupLeg,
    Leg,
    LegState,
    NobodyAnswered,
    RingAll,
)
from pbx_service.store.records import Outcome

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def ring(*ids: str) -> RingAll:
    state = RingAll()
    for n, channel_id in enumerate(ids):
        state.add(Leg(channel_id, f"PJSIP/10{n}", T0))
    return state


def test_first_answer_wins_and_cancels_the_rest() -> None:
    state = ring("a", "b", "c")
    commands = state.answered("b", T0 + timedelta(seconds=2))
    assert commands == [
        BridgeWith("b"),
        HangupLeg("a", "answered_elsewhere"),
        HangupLeg("c", "answered_elsewhere"),
    ]
    assert state.winner == "b"
    assert state.legs["b"].as_detail()["rang_seconds"] == 2.0


def test_late_answer_is_released_not_bridged() -> None:
    state = ring("a", "b")
    state.answered("a", T0)
    state.legs["b"].state = LegState.RINGING  # its cancel raced with its answer
    assert state.answered("b", T0) == [HangupLeg("b", "answered_elsewhere")]
    assert state.winner == "a"


def test_all_failed_means_nobody_answered_once() -> None:
    state = ring("a", "b")
    assert state.failed("a", "BUSY", T0) == []
    assert state.failed("b", "NOANSWER", T0) == [NobodyAnswered()]
    assert state.failed("b", "NOANSWER", T0) == []


def test_failure_after_a_winner_changes_nothing() -> None:
    state = ring("a", "b")
    state.answered("a", T0)
    assert state.failed("b", "NOANSWER", T0) == []


def test_give_up_cancels_only_ringing_legs() -> None:
    state = ring("a", "b", "c")
    state.failed("a", "CHANUNAVAIL", T0)
    assert state.give_up("timeout", T0) == [HangupLeg("b", "normal"), HangupLeg("c", "normal")]
    assert [leg["result"] for leg in state.rung()] == ["CHANUNAVAIL", "timeout", "timeout"]


def test_unknown_leg_is_ignored() -> None:
    assert ring("a").answered("zzz", T0) == []


def test_outcomes() -> None:
    assert decide_outcome(CallFacts(answered_by="PJSIP/101")) is Outcome.ANSWERED
    assert decide_outcome(CallFacts(voicemail_seconds=5)) is Outcome.VOICEMAIL
    assert decide_outcome(CallFacts(voicemail_seconds=0.2)) is Outcome.ABANDONED
    assert decide_outcome(CallFacts(failed=True)) is Outcome.FAILED
    assert decide_outcome(CallFacts()) is Outcome.ABANDONED


def test_causes_read_like_dial_statuses() -> None:
    from pbx_service.calls.ringing import cause_result

    assert cause_result(17) == "BUSY"
    assert cause_result(19) == "NOANSWER"
    assert cause_result(20) == "CHANUNAVAIL"
    assert cause_result(0) == "cause 0"
    assert cause_result(None) == "cause None"

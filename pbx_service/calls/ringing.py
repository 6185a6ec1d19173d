"""Ring-all: which legs to cancel, whom to bridge, when to give up. Pure, no I/O.

The call session feeds leg events in; the decision comes back as commands the session runs.
A leg that answers after another one won is hung up at once: an agent is never left connected
to nobody, and the caller is never bridged twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class LegState(StrEnum):
    RINGING = "ringing"
    ANSWERED = "answered"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Q.850 causes of a leg that ended before answering, in Dial's own words, so the log reads the
# same whichever of Dial / ChannelDestroyed reported the failure first.
CAUSE_RESULTS = {
    1: "INVALID_NUMBER",
    3: "CHANUNAVAIL",
    17: "BUSY",
    18: "NOANSWER",
    19: "NOANSWER",
    20: "CHANUNAVAIL",
    21: "REJECTED",
    34: "CONGESTION",
    38: "CONGESTION",
}


def cause_result(cause: int | None) -> str:
    return CAUSE_RESULTS.get(cause or 0, f"cause {cause}")


@dataclass(slots=True)
class Leg:
    channel_id: str
    endpoint: str
    started_at: datetime
    state: LegState = LegState.RINGING
    ended_at: datetime | None = None
    result: str | None = None  # ANSWER, NOANSWER, BUSY, CHANUNAVAIL, cancelled, ...

    def as_detail(self) -> dict[str, object]:
        rang = (self.ended_at - self.started_at).total_seconds() if self.ended_at else None
        return {"endpoint": self.endpoint, "result": self.result, "rang_seconds": rang}


@dataclass(frozen=True, slots=True)
class HangupLeg:
    channel_id: str
    reason: str  # ARI hangup reason: answered_elsewhere, normal, no_answer


@dataclass(frozen=True, slots=True)
class BridgeWith:
    channel_id: str


@dataclass(frozen=True, slots=True)
class NobodyAnswered:
    pass


RingCommand = HangupLeg | BridgeWith | NobodyAnswered


@dataclass(slots=True)
class RingAll:
    legs: dict[str, Leg] = field(default_factory=dict)
    winner: str | None = None

    def add(self, leg: Leg) -> None:
        self.legs[leg.channel_id] = leg

    @property
    def ringing(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if leg.state is LegState.RINGING]

    def answered(self, channel_id: str, at: datetime) -> list[RingCommand]:
        leg = self.legs.get(channel_id)
        if leg is None or leg.state is not LegState.RINGING:
            return []
        leg.ended_at = at
        if self.winner is not None:
            # Lost the race by milliseconds: release this agent at once.
            leg.state, leg.result = LegState.CANCELLED, "answered_late"
            return [HangupLeg(channel_id, "answered_elsewhere")]
        leg.state, leg.result = LegState.ANSWERED, "ANSWER"
        self.winner = channel_id
        commands: list[RingCommand] = [BridgeWith(channel_id)]
        for other in self.ringing:
            other.state, other.result, other.ended_at = LegState.CANCELLED, "answered_elsewhere", at
            commands.append(HangupLeg(other.channel_id, "answered_elsewhere"))
        return commands

    def failed(self, channel_id: str, result: str, at: datetime) -> list[RingCommand]:
        leg = self.legs.get(channel_id)
        if leg is None or leg.state is not LegState.RINGING:
            return []
        leg.state, leg.result, leg.ended_at = LegState.FAILED, result, at
        if self.winner is None and not self.ringing:
            return [NobodyAnswered()]
        return []

    def give_up(self, reason: str, at: datetime) -> list[RingCommand]:
        """Ring timeout or caller gone: cancel every leg still ringing."""
        commands: list[RingCommand] = []
        for leg in self.ringing:
            leg.state, leg.result, leg.ended_at = LegState.CANCELLED, reason, at
            commands.append(HangupLeg(leg.channel_id, "normal"))
        return commands

    def rung(self) -> list[dict[str, object]]:
        return [leg.as_detail() for leg in self.legs.values()]

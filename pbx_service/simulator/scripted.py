"""Scripted inbound callers: steps a caller performs and the transcript of what it heard.

Steps (Python objects or control-API JSON):
  {"wait": 2.0}                            Wait(seconds)
  {"wait_answered": 10.0}                  WaitAnswered(timeout)
  {"wait_bridged": 10.0}                   WaitBridged(timeout)
  {"wait_playback": "sound:pbx/x" (or "pbx/x" or "x"), "until": "started"|"finished",
   "timeout": 10.0}
  {"dtmf": "12#", "duration": 100, "between": 100}   SendDtmf
  {"talk": 3.0}                            Talk(seconds): the caller speaks (recordings hear it)
  {"hangup": true}                         Hangup()
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any


class ScriptError(ValueError):
    """A scripted call step is malformed."""


@dataclasses.dataclass(frozen=True)
class Wait:
    seconds: float


@dataclasses.dataclass(frozen=True)
class WaitAnswered:
    timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class WaitBridged:
    timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class WaitPlayback:
    media: str
    until: str = "started"
    timeout: float = 30.0


@dataclasses.dataclass(frozen=True)
class SendDtmf:
    digits: str
    duration_ms: int = 100
    between_ms: int = 100


@dataclasses.dataclass(frozen=True)
class Talk:
    seconds: float


@dataclasses.dataclass(frozen=True)
class Hangup:
    pass


Step = Wait | WaitAnswered | WaitBridged | WaitPlayback | SendDtmf | Talk | Hangup


def parse_step(data: dict[str, Any] | Step) -> Step:
    """A step from its JSON form (see the module docstring)."""
    if not isinstance(data, dict):
        return data
    try:
        if "wait" in data:
            return Wait(float(data["wait"]))
        if "wait_answered" in data:
            return WaitAnswered(float(data["wait_answered"]))
        if "wait_bridged" in data:
            return WaitBridged(float(data["wait_bridged"]))
        if "wait_playback" in data:
            until = str(data.get("until", "started"))
            if until not in ("started", "finished"):
                raise ScriptError("wait_playback 'until' must be 'started' or 'finished'")
            return WaitPlayback(str(data["wait_playback"]), until, float(data.get("timeout", 30.0)))
        if "dtmf" in data:
            return SendDtmf(
                str(data["dtmf"]), int(data.get("duration", 100)), int(data.get("between", 100))
            )
        if "talk" in data:
            return Talk(float(data["talk"]))
        if "hangup" in data:
            return Hangup()
    except (TypeError, ValueError) as exc:
        raise ScriptError(f"bad step {data!r}: {exc}") from exc
    raise ScriptError(
        f"unknown step {data!r}; use one of wait, wait_answered, wait_bridged, "
        "wait_playback, dtmf, talk, hangup"
    )


@dataclasses.dataclass
class Transcript:
    """What a scripted caller experienced.

    Times are simulated seconds on the simulator's clock (event-loop time / time_scale);
    `started_at` is when the call entered the PBX, so `answered_at - started_at` is the wait.
    """

    channel_id: str
    channel_name: str
    caller_number: str
    caller_name: str
    did: str
    started_at: float = 0.0
    answered_at: float | None = None
    media: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    bridged: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    recordings: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dtmf_sent: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    dtmf_received: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    moh: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    stasis_status: str | None = None
    fallback: dict[str, Any] | None = None
    hangup_cause: int | None = None
    hungup_by: str | None = None
    ended_at: float | None = None
    script_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class CallHandle:
    """A scripted call in progress: `await handle.ended` waits for its end."""

    def __init__(self, transcript: Transcript, ended: asyncio.Future[Transcript]) -> None:
        self.transcript = transcript
        self.ended = ended

    @property
    def channel_id(self) -> str:
        return self.transcript.channel_id

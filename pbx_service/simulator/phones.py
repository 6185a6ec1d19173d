"""Simulated phones: PJSIP endpoints (agents' phones, outside numbers) with a behaviour."""

from __future__ import annotations

import dataclasses
from typing import Any


class PhoneConfigError(ValueError):
    """A phone behaviour given to the simulator makes no sense."""


@dataclasses.dataclass(frozen=True)
class PhoneBehaviour:
    """What a simulated phone does when it is called.

    `answer_after` None: never answers (rings until cancelled or the originate timeout).
    `busy`: rejects with 486 (cause 17). `online` False: unregistered (originate -> 500).
    `hangup_after`: seconds after answering the phone hangs up (None: never).
    `dtmf`: digits the phone sends `dtmf_after` seconds after answering.
    """

    answer_after: float | None = 1.0
    busy: bool = False
    online: bool = True
    hangup_after: float | None = None
    dtmf: str = ""
    dtmf_after: float = 1.0
    ring_after: float = 0.05

    @classmethod
    def answers(cls, after: float = 1.0, *, hangup_after: float | None = None) -> PhoneBehaviour:
        return cls(answer_after=after, hangup_after=hangup_after)

    @classmethod
    def never_answers(cls) -> PhoneBehaviour:
        return cls(answer_after=None)

    @classmethod
    def rejects_busy(cls) -> PhoneBehaviour:
        return cls(busy=True)

    @classmethod
    def offline(cls) -> PhoneBehaviour:
        return cls(online=False)

    @classmethod
    def answers_then_dtmf(
        cls, digits: str, *, after: float = 1.0, dtmf_after: float = 1.0
    ) -> PhoneBehaviour:
        return cls(answer_after=after, dtmf=digits, dtmf_after=dtmf_after)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhoneBehaviour:
        """Build from the control API's JSON; unknown keys are an error."""
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise PhoneConfigError(
                f"unknown phone behaviour field(s) {sorted(unknown)}; known: {sorted(fields)}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise PhoneConfigError(str(exc)) from exc


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """`PJSIP/101` -> ("PJSIP", "101"); raises PhoneConfigError without a technology."""
    tech, sep, resource = endpoint.partition("/")
    if not sep or not tech or not resource:
        raise PhoneConfigError(f"endpoint {endpoint!r} must look like 'PJSIP/101'")
    return tech, resource


@dataclasses.dataclass
class Phone:
    """A registered endpoint and its behaviour; `calls` logs what happened to it."""

    tech: str
    resource: str
    behaviour: PhoneBehaviour
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"{self.tech}/{self.resource}"

    @property
    def state(self) -> str:
        return "online" if self.behaviour.online else "offline"

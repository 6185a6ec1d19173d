"""The one outcome of a finished inbound call, decided from what happened. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from pbx_service.store.records import Outcome

# A voicemail shorter than this holds nothing worth calling back for; the call still gets a
# callback task as an abandoned call.
MIN_VOICEMAIL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CallFacts:
    answered_by: str | None = None
    voicemail_seconds: float | None = None
    failed: bool = False
    # Answered by the outside 24/7 centre the after-hours policy overflows to.
    overflow: bool = False
    # The caller pressed 1 to be called back instead of waiting.
    callback_requested: bool = False


def decide_outcome(facts: CallFacts) -> Outcome:
    if facts.answered_by:
        return Outcome.OVERFLOW if facts.overflow else Outcome.ANSWERED
    if facts.callback_requested:
        return Outcome.CALLBACK
    if facts.voicemail_seconds is not None and facts.voicemail_seconds >= MIN_VOICEMAIL_SECONDS:
        return Outcome.VOICEMAIL
    if facts.failed:
        return Outcome.FAILED
    return Outcome.ABANDONED

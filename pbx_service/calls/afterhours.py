"""What happens to a call at an instant: route it, or the after-hours treatment. Pure.

`decide_call` turns a `BusinessHours`, an `AfterHoursPolicy` and the call's arrival time into
a `CallDisposition`; the call coroutine executes it. `callback_promise_media` builds the ARI
media URIs that tell the caller when we will call back.

Sound files. Besides two prompts of ours (``callback-promise``: "we will call you back",
and ``callback-after-opening``: "after we open, at"), the promise uses only Asterisk's core
sound files, the same ones Asterisk's own date/time sayings (main/say.c) play, which exist in
the en and ru core-sound packages: ``digits/today``, ``digits/tomorrow``, ``digits/day-0`` ..
``digits/day-6`` (Sunday=0), ``digits/mon-0`` .. ``digits/mon-11`` (January=0),
``digits/oclock``, ``digits/oh``, ``digits/a-m`` and ``digits/p-m``; numbers are ``number:N``
URIs, which Asterisk says in the channel's language. English says the time on the 12-hour
clock as Asterisk does ("nine oh five a.m.", "two o'clock p.m."); every other language, Russian
included, on the 24-hour clock ("девять ноль пять", "четырнадцать"), which reads naturally
after "после открытия в". A day more than six days away is said as Asterisk's SayUnixTime
date: weekday, month, day number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pbx_service.calls.hours import BusinessHours, HoursStatus, NaiveTimeError, Reason
from pbx_service.config.hours import AfterHoursPolicy

PROMISE_PROMPT = "pbx/callback-promise"
AFTER_OPENING_PROMPT = "pbx/callback-after-opening"

# Reasons for which the holiday greeting plays; any other closure is "night".
_HOLIDAY_REASONS = frozenset({Reason.HOLIDAY, Reason.CLOSURE})


class CallAction(StrEnum):
    ROUTE = "route"  # open: the normal flow
    OVERFLOW = "overflow"  # closed: ring the overflow endpoint, then voicemail
    VOICEMAIL = "voicemail"  # closed: take a message


@dataclass(frozen=True, slots=True)
class OverflowTarget:
    """Where a closed line's call rings, for how long, and what follows if nobody answers."""

    endpoint: str
    timeout: float
    fallback: CallAction = CallAction.VOICEMAIL


@dataclass(frozen=True, slots=True)
class CallDisposition:
    """The decision for one call.

    ROUTE: open, nothing else is set. OVERFLOW / VOICEMAIL: play `greeting`; for OVERFLOW dial
    `overflow` and fall back to voicemail; before recording a voicemail play
    `callback_promise` and record `callback_due` (the next opening) as the callback's due
    time. Both are empty/None when there is no opening within 400 days.
    """

    action: CallAction
    status: HoursStatus
    greeting: str | None = None
    overflow: OverflowTarget | None = None
    callback_due: datetime | None = None
    callback_promise: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.action is CallAction.ROUTE


def decide_call(
    hours: BusinessHours, policy: AfterHoursPolicy, at: datetime, lang: str
) -> CallDisposition:
    """Route normally when open at `at`; otherwise the policy's after-hours treatment."""
    status = hours.status_at(at)
    if status.is_open:
        return CallDisposition(CallAction.ROUTE, status)
    if status.reason in _HOLIDAY_REASONS:
        greeting = policy.holiday_greeting or policy.greeting
    else:
        greeting = policy.night_greeting or policy.greeting
    due = status.next_opening
    promise = tuple(callback_promise_media(status.at, due, lang)) if due is not None else ()
    if policy.mode == "overflow":
        assert policy.endpoint is not None  # the config model requires it for overflow
        target = OverflowTarget(policy.endpoint, policy.timeout, CallAction(policy.fallback))
        return CallDisposition(CallAction.OVERFLOW, status, greeting, target, due, promise)
    return CallDisposition(CallAction.VOICEMAIL, status, greeting, None, due, promise)


def callback_promise_media(
    now: datetime,
    next_open: datetime,
    lang: str,
    *,
    promise_prompt: str = PROMISE_PROMPT,
    after_opening_prompt: str = AFTER_OPENING_PROMPT,
) -> list[str]:
    """Media URIs saying "we will call you back <today|tomorrow|on <day>> after <HH:MM>".

    Days are counted in `next_open`'s time zone (give it in the schedule's zone); `now` may be
    in any zone. Both must be timezone-aware.
    """
    for value in (now, next_open):
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveTimeError(f"{value.isoformat()} has no time zone; pass aware datetimes")
    local_now = now.astimezone(next_open.tzinfo)
    media = [f"sound:{promise_prompt}"]
    media.extend(_day_words(local_now, next_open))
    media.append(f"sound:{after_opening_prompt}")
    media.extend(_time_words(next_open.hour, next_open.minute, lang))
    return media


def _day_words(now: datetime, target: datetime) -> list[str]:
    days_ahead = (target.date() - now.date()).days
    if days_ahead <= 0:
        return ["sound:digits/today"]
    if days_ahead == 1:
        return ["sound:digits/tomorrow"]
    weekday = f"sound:digits/day-{(target.weekday() + 1) % 7}"  # Asterisk: Sunday=0
    if days_ahead <= 6:
        return [weekday]
    return [weekday, f"sound:digits/mon-{target.month - 1}", f"number:{target.day}"]


def _time_words(hour: int, minute: int, lang: str) -> list[str]:
    english = lang.replace("-", "_").split("_")[0].lower() == "en"
    words = [f"number:{(hour % 12 or 12) if english else hour}"]
    if minute == 0:
        if english:
            words.append("sound:digits/oclock")
    elif minute < 10:
        words += ["sound:digits/oh" if english else "number:0", f"number:{minute}"]
    else:
        words.append(f"number:{minute}")
    if english:
        words.append("sound:digits/a-m" if hour < 12 else "sound:digits/p-m")
    return words

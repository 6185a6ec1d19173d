"""The IVR menu engine: one `IvrSession` per call, pure and synchronous, no I/O.

The call coroutine feeds it events (the caller pressed a key, a prompt finished, a timer
fired) and runs the commands it returns, in order:

=================================  ==========================================================
``Play(prompts, interruptible,     ``POST /channels/{id}/play`` with every prompt as one
ref, language)``                   ``media`` list (``sound:pbx/<name>``), ``lang=language``
                                   and a fresh ``playbackId``; remember playbackId → ref.
                                   Asterisk queues plays on a channel, so run them in order.
``StopPlayback(ref)``              ``DELETE /playbacks/{playbackId}``; a 404 is fine (it
                                   ended on its own).
``StartTimer(seconds, ref)``       a local deadline ``now + seconds``; when it passes, call
                                   ``on_timeout(ref)``. One timer at a time: replace any.
``CancelTimer(ref)``               drop that deadline.
``Route(...)``                     the menu is done: ring / take a message / hand over.
=================================  ==========================================================

``PlaybackFinished`` → ``on_playback_finished(ref)`` (also when its state is ``failed``: a
missing prompt must not strand the caller); ``ChannelDtmfReceived`` →
``on_digit(event.digit)``. The executor can be naive: events about a prompt already stopped,
a timer already cancelled or replaced, or anything after the `Route` are ignored here.
A key does not stop an ARI playback by itself (trace 02): barge-in is the `StopPlayback`,
after which Asterisk still sends ``PlaybackFinished`` (state ``done``), ignored as stale.
After a WebSocket gap, report each playback that no longer exists as finished.

Guarantee: whatever the caller does, the session ends in a `Route` after at most
`max_events(config)` events that change its state. Every key press that is resolved and every
timeout counts as a step; per menu, more than ``max_retries`` wrong keys or timeouts route to
the menu's ``default`` (a person or a voicemail), and more than ``max_steps`` steps in the call
do too. While the session is not finished it always waits on a prompt or a timer, so a caller
who presses nothing still moves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pbx_service.config.ivr import (
    DIGITS,
    BackAction,
    ExtensionAction,
    IvrConfig,
    Menu,
    MenuAction,
    PersonActionType,
    RepeatAction,
    TerminalActionType,
)

# Steps of `menu_path` other than menu names and keys.
TIMEOUT_STEP = "timeout"
DEFAULT_STEP = "default"
INVALID_PREFIX = "invalid:"


@dataclass(frozen=True, slots=True)
class Play:
    """Play `prompts` one after another as one playback; `ref` names it in later events.

    `interruptible`: a key press stops it (barge-in). Otherwise keys are ignored while it
    plays."""

    prompts: tuple[str, ...]
    interruptible: bool
    ref: int
    language: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    ref: int


@dataclass(frozen=True, slots=True)
class StartTimer:
    seconds: float
    ref: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    ref: int


class RouteReason(StrEnum):
    CHOSEN = "chosen"  # the caller pressed the option's key
    DIRECT_DIAL = "direct_dial"  # the caller dialled an internal number
    RETRIES_EXHAUSTED = "retries_exhausted"  # too many wrong keys or timeouts in one menu
    STEP_LIMIT = "step_limit"  # too many steps in the call (ivr.max_steps)


@dataclass(frozen=True, slots=True)
class Route:
    """The menu is done: where the call goes.

    `action` is a person or voicemail (team, operator, voicemail, extension) or a
    self-service flow. `fallback` is the menu's default, for when the target fails
    (self-service ends, an extension does not exist, nobody answers and there is no
    better plan). `menu_path` is the caller's journey, e.g. ``("main", "3", "partners",
    "2")``; `path_text` joins it with ``>``."""

    action: TerminalActionType
    category: str | None
    menu_path: tuple[str, ...]
    language: str
    reason: RouteReason
    fallback: PersonActionType

    @property
    def path_text(self) -> str:
        return ">".join(self.menu_path)


Command = Play | StopPlayback | StartTimer | CancelTimer | Route


class _TimerKind(StrEnum):
    MENU = "menu"  # waiting for a key after the menu prompt
    DIGITS = "digits"  # waiting for the next digit of an internal number


@dataclass(frozen=True, slots=True)
class _Playback:
    ref: int
    interruptible: bool


@dataclass(frozen=True, slots=True)
class _Timer:
    ref: int
    kind: _TimerKind


def max_events(config: IvrConfig) -> int:
    """An upper bound on the events that change a session's state before it routes.

    Each of at most ``max_steps + 1`` steps takes one key press or timeout, up to
    ``digits - 1`` more digits of an internal number and one timer start, and plays one
    prompt (the first one two: the recording notice)."""
    longest = max(
        (m.direct_dial.digits for m in config.menus.values() if m.direct_dial is not None),
        default=1,
    )
    return 2 + (config.max_steps + 1) * (2 + longest)


class IvrSession:
    """The menus for one call. Create it, call `start`, then feed it events; each method
    returns the commands to run, in order. See the module docstring."""

    def __init__(self, config: IvrConfig, *, language: str) -> None:
        self._config = config
        self._language = language
        self._menu_name = config.start
        self._came_from: list[str] = []
        self._path: list[str] = [config.start]
        self._category: str | None = None
        self._failures = 0  # wrong keys and timeouts in the current menu
        self._steps = 0  # resolved key presses and timeouts in the call
        self._digits = ""  # an internal number being dialled
        self._playing: list[_Playback] = []  # in the order Asterisk plays them
        self._timer: _Timer | None = None
        self._last_ref = 0
        self._started = False
        self._route: Route | None = None

    # ---- what the call flow reads -----------------------------------------------------

    @property
    def menu_path(self) -> tuple[str, ...]:
        """Menu names and keys so far, e.g. ("main", "3", "partners", "2"); also
        "invalid:5", "timeout" and "default" steps."""
        return tuple(self._path)

    @property
    def category(self) -> str | None:
        return self._category

    @property
    def language(self) -> str:
        return self._language

    @property
    def menu(self) -> str:
        """The name of the current menu."""
        return self._menu_name

    @property
    def finished(self) -> bool:
        return self._route is not None

    @property
    def route(self) -> Route | None:
        """The final `Route`, once finished."""
        return self._route

    # ---- events -----------------------------------------------------------------------

    def start(self) -> list[Command]:
        """The first prompts. A second call returns nothing."""
        if self._started:
            return []
        self._started = True
        commands: list[Command] = []
        if self._config.recording_notice is not None:
            commands.append(self._play((self._config.recording_notice,), interruptible=False))
        commands.append(self._menu_prompt(()))
        return commands

    def on_playback_finished(self, playback_ref: int) -> list[Command]:
        """A playback ended (finished, failed or stopped)."""
        if self.finished:
            return []
        for playback in self._playing:
            if playback.ref == playback_ref:
                self._playing.remove(playback)
                if not self._playing:
                    return [self._start_timer(self._current.timeout, _TimerKind.MENU)]
                return []
        return []

    def on_digit(self, digit: str) -> list[Command]:
        """The caller pressed a key (``0``-``9``, ``*``, ``#``; anything else is a wrong key)."""
        if not self._started or self.finished:
            return []
        commands: list[Command] = []
        if self._playing:
            if not self._playing[0].interruptible:
                return []  # not barge-in: keys during this prompt do not count
            commands.extend(StopPlayback(p.ref) for p in self._playing)
            self._playing.clear()
        elif self._timer is not None:
            commands.append(CancelTimer(self._timer.ref))
            self._timer = None
        commands.extend(self._key(digit))
        return commands

    def on_timeout(self, timer_ref: int) -> list[Command]:
        """A timer started by `StartTimer` ran out."""
        if self.finished or self._timer is None or self._timer.ref != timer_ref:
            return []
        kind = self._timer.kind
        self._timer = None
        if kind is _TimerKind.DIGITS:
            return self._end_of_number()
        return self._failure(TIMEOUT_STEP, self._current.timeout_prompt)

    # ---- decisions --------------------------------------------------------------------

    @property
    def _current(self) -> Menu:
        return self._config.menus[self._menu_name]

    def _key(self, key: str) -> list[Command]:
        menu = self._current
        dial = menu.direct_dial
        if self._digits:
            if len(key) == 1 and key in DIGITS:
                self._digits += key
                assert dial is not None
                if len(self._digits) >= dial.digits:
                    return self._dial_number()
                return [self._start_timer(dial.inter_digit_timeout, _TimerKind.DIGITS)]
            # * or # ends the number early.
            return self._end_of_number()
        if dial is not None and dial.enabled and key in dial.first_digits:
            self._digits = key
            return [self._start_timer(dial.inter_digit_timeout, _TimerKind.DIGITS)]
        return self._choose(key)

    def _end_of_number(self) -> list[Command]:
        digits, self._digits = self._digits, ""
        if len(digits) == 1:
            # A first digit that is also an option, and nothing followed: the option.
            return self._choose(digits)
        return self._failure(INVALID_PREFIX + digits, self._current.invalid_prompt)

    def _dial_number(self) -> list[Command]:
        number, self._digits = self._digits, ""
        dial = self._current.direct_dial
        if dial is not None and dial.category is not None:
            self._category = dial.category
        self._path.append(number)
        self._steps += 1
        return [self._finish(ExtensionAction(extension=number), RouteReason.DIRECT_DIAL)]

    def _choose(self, key: str) -> list[Command]:
        action = self._current.options.get(key)
        if action is None:
            return self._failure(INVALID_PREFIX + key, self._current.invalid_prompt)
        if isinstance(action, BackAction) and not self._came_from:
            # Validation forbids back on the start menu; be safe if reached anyway.
            return self._failure(INVALID_PREFIX + key, self._current.invalid_prompt)
        self._path.append(key)
        self._steps += 1
        if action.category is not None:
            self._category = action.category
        if action.language is not None:
            self._language = action.language
        if not isinstance(action, MenuAction | BackAction | RepeatAction):
            return [self._finish(action, RouteReason.CHOSEN)]
        if self._steps > self._config.max_steps:
            return [self._finish_by_default(RouteReason.STEP_LIMIT)]
        if isinstance(action, RepeatAction):
            return [self._menu_prompt(())]
        if isinstance(action, MenuAction):
            self._came_from.append(self._menu_name)
            self._enter(action.menu)
        else:
            self._enter(self._came_from.pop())
        return [self._menu_prompt(())]

    def _failure(self, step: str, prompt: str | None) -> list[Command]:
        self._path.append(step)
        self._steps += 1
        self._failures += 1
        if self._failures > self._current.max_retries:
            return [self._finish_by_default(RouteReason.RETRIES_EXHAUSTED)]
        if self._steps > self._config.max_steps:
            return [self._finish_by_default(RouteReason.STEP_LIMIT)]
        return [self._menu_prompt((prompt,) if prompt else ())]

    def _enter(self, name: str) -> None:
        self._menu_name = name
        self._failures = 0
        self._path.append(name)

    def _finish_by_default(self, reason: RouteReason) -> Route:
        default = self._current.default
        self._path.append(DEFAULT_STEP)
        if default.category is not None:
            self._category = default.category
        if default.language is not None:
            self._language = default.language
        return self._finish(default, reason)

    def _finish(self, action: TerminalActionType, reason: RouteReason) -> Route:
        self._route = Route(
            action=action,
            category=self._category,
            menu_path=tuple(self._path),
            language=self._language,
            reason=reason,
            fallback=self._current.default,
        )
        return self._route

    # ---- commands ---------------------------------------------------------------------

    def _new_ref(self) -> int:
        self._last_ref += 1
        return self._last_ref

    def _play(self, prompts: tuple[str, ...], *, interruptible: bool) -> Play:
        ref = self._new_ref()
        self._playing.append(_Playback(ref, interruptible))
        return Play(prompts, interruptible, ref, self._language)

    def _menu_prompt(self, before: tuple[str, ...]) -> Play:
        menu = self._current
        return self._play((*before, menu.prompt), interruptible=menu.barge_in)

    def _start_timer(self, seconds: float, kind: _TimerKind) -> StartTimer:
        self._timer = _Timer(self._new_ref(), kind)
        return StartTimer(seconds, self._timer.ref)

"""Whatever the caller does, the menus end at a person or a voicemail, in bounded steps.

Random event sequences (keys, prompt ends, timer expiries, stale events, in any order) drive
sessions of the shipped menu, the full example and random menus that pass validation. After
the sequence the caller goes quiet; the session must still route. Throughout, the session
must wait on exactly one thing (prompts or a timer), and barge-in must stop prompts before
anything else happens.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pbx_service.calls.ivr import (
    CancelTimer,
    Command,
    IvrSession,
    StopPlayback,
    max_events,
)
from pbx_service.config.ivr import (
    KEYS,
    PERSON_ACTIONS,
    BackAction,
    IvrConfig,
    MenuAction,
    RepeatAction,
    SelfServiceAction,
    default_ivr,
)

from .helpers import FULL, Executor, ivr

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)

# Keys a phone can send: the menu keys and DTMF A-D.
PRESSABLE = [*KEYS, "A", "D"]

Event = tuple[str, int]

events = st.lists(
    st.one_of(
        st.tuples(st.just("key"), st.integers(0, len(PRESSABLE) - 1)),
        st.tuples(st.just("finish"), st.just(0)),
        st.tuples(st.just("finish_any"), st.integers(0, 3)),
        st.tuples(st.just("timeout"), st.just(0)),
        st.tuples(st.just("stale_finish"), st.integers(0, 50)),
        st.tuples(st.just("stale_timeout"), st.integers(0, 50)),
    ),
    max_size=80,
)

SHIPPED = default_ivr({"sales", "hr", "partners"})
SHIPPED_WITH_NOTICE = default_ivr({"sales"}, recording_notice="recording-notice")
EXAMPLE = ivr(FULL)


def check_order(commands: list[Command]) -> None:
    """Stops and cancels come first: the old prompt is silent before anything new starts."""
    kinds = [isinstance(c, StopPlayback | CancelTimer) for c in commands]
    assert kinds == sorted(kinds, reverse=True), commands


def drive(config: IvrConfig, script: list[Event]) -> Executor:
    executor = Executor(IvrSession(config, language="ru"))
    executor.start()
    session = executor.session
    for kind, n in script:
        if kind == "key":
            check_order(executor.press(PRESSABLE[n]))
        elif kind == "finish" and executor.playing:
            executor.finish_playback()
        elif kind == "finish_any" and executor.playing:
            ref = executor.playing.pop(n % len(executor.playing))
            executor.run(session.on_playback_finished(ref))
        elif kind == "timeout" and executor.timer is not None:
            check_order(executor.fire_timer())
        elif kind == "stale_finish":
            # Asterisk reports stopped playbacks as finished; or a ref never seen.
            ref = executor.stopped.pop(n % len(executor.stopped)) if executor.stopped else -n
            assert session.on_playback_finished(ref) == []
        elif kind == "stale_timeout" and n != executor.timer:
            assert session.on_timeout(n) == []
        assert session.finished or executor.waiting()
        assert executor.changes <= max_events(config)
    executor.idle(max_events(config))
    assert executor.changes <= max_events(config)
    return executor


def check_route(config: IvrConfig, executor: Executor, *, self_service: bool) -> None:
    route = executor.route
    session = executor.session
    assert route is not None and session.finished and session.route is route
    assert isinstance(route.fallback, PERSON_ACTIONS)
    if self_service:
        assert isinstance(route.action, (*PERSON_ACTIONS, SelfServiceAction))
    else:
        assert isinstance(route.action, PERSON_ACTIONS)
    assert route.menu_path == session.menu_path
    assert route.menu_path[0] == config.start
    assert route.category == session.category
    assert route.language == session.language
    assert len(route.menu_path) <= 1 + 3 * (config.max_steps + 1)
    event(f"route: {route.reason}")


@PROPERTY_SETTINGS
@given(events)
def test_the_shipped_menu_always_reaches_a_person(script: list[Event]) -> None:
    for config in (SHIPPED, SHIPPED_WITH_NOTICE):
        check_route(config, drive(config, script), self_service=False)


@PROPERTY_SETTINGS
@given(events)
def test_the_full_example_always_routes(script: list[Event]) -> None:
    check_route(EXAMPLE, drive(EXAMPLE, script), self_service=True)


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(PRESSABLE), min_size=50, max_size=50))
def test_fifty_random_keys_then_silence(keys: list[str]) -> None:
    for config in (SHIPPED, EXAMPLE):
        executor = Executor(IvrSession(config, language="ru"))
        executor.start()
        for key in keys:
            if executor.playing and not executor.session.finished and len(executor.playing) > 1:
                executor.finish_playback()  # let the recording notice end
            check_order(executor.press(key))
        executor.idle(max_events(config))
        check_route(config, executor, self_service=config is EXAMPLE)


def test_silence_alone_routes_to_the_default() -> None:
    for config in (SHIPPED, SHIPPED_WITH_NOTICE, EXAMPLE):
        executor = drive(config, [])
        assert executor.route is not None
        assert executor.route.action == config.menus[config.start].default


# ---- random menus -------------------------------------------------------------------------

PERSON_KINDS = ["team", "voicemail", "operator", "extension"]
KINDS = [*PERSON_KINDS, "self_service", "menu", "repeat", "back"]


@st.composite
def actions(draw: st.DrawFn, kinds: list[str], names: list[str]) -> dict[str, Any]:
    kind = draw(st.sampled_from(kinds))
    action: dict[str, Any]
    if kind == "team":
        action = {"team": draw(st.sampled_from(["sales", "hr"]))}
    elif kind == "extension":
        action = {"extension": draw(st.sampled_from(["101", "7"]))}
    elif kind == "menu":
        action = {"menu": draw(st.sampled_from(names))}
    else:
        fixed: dict[str, dict[str, Any]] = {
            "voicemail": {"voicemail": "general"},
            "self_service": {"self_service": "order_status"},
            "operator": {"operator": True},
            "repeat": {"repeat": True},
            "back": {"back": True},
        }
        action = dict(fixed[kind])
    category = draw(st.sampled_from([None, "customer", "partner", "other"]))
    if category:
        action["category"] = category
    language = draw(st.sampled_from([None, None, "en", "de"]))
    if language:
        action["language"] = language
    return action


@st.composite
def ivr_configs(draw: st.DrawFn) -> IvrConfig:
    names = [f"m{i}" for i in range(draw(st.integers(1, 4)))]
    menus: dict[str, Any] = {}
    for index, name in enumerate(names):
        kinds = KINDS if index else [k for k in KINDS if k != "back"]
        keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6))
        direct_dial = draw(
            st.none()
            | st.fixed_dictionaries(
                {
                    "enabled": st.booleans(),
                    "digits": st.integers(2, 4),
                    "first": st.sampled_from(["1-9", "0-3", "5", "2,4-6"]),
                    "inter_digit_timeout": st.just(1.5),
                }
            )
        )
        menus[name] = {
            "prompt": f"prompt-{name}",
            "timeout": draw(st.sampled_from([1, 5, 7.5])),
            "max_retries": draw(st.integers(0, 3)),
            "barge_in": draw(st.booleans()),
            "invalid_prompt": draw(st.sampled_from(["invalid", None])),
            "options": {key: draw(actions(kinds, names)) for key in keys},
            "default": draw(actions(PERSON_KINDS, names)),
            "direct_dial": direct_dial,
        }
    data = {
        "start": "m0",
        "recording_notice": draw(st.sampled_from([None, "recording-notice"])),
        "max_steps": draw(st.integers(1, 12)),
        "menus": menus,
    }
    try:
        return IvrConfig.model_validate(data)
    except ValidationError:
        reject()


# Generating menus is the slow part; fewer examples keep the test within seconds.
RANDOM_MENU_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=150)


@RANDOM_MENU_SETTINGS
@given(ivr_configs(), events)
def test_random_valid_menus_always_route(config: IvrConfig, script: list[Event]) -> None:
    check_route(config, drive(config, script), self_service=True)


@RANDOM_MENU_SETTINGS
@given(ivr_configs(), st.lists(st.sampled_from(PRESSABLE), max_size=60))
def test_random_menus_with_a_caller_who_only_presses_keys(
    config: IvrConfig, keys: list[str]
) -> None:
    # Prompts always end before the next key: every key is heard by a menu.
    executor = Executor(IvrSession(config, language="ru"))
    executor.start()
    for key in keys:
        executor.listen()
        check_order(executor.press(key))
    executor.idle(max_events(config))
    check_route(config, executor, self_service=True)
    assert executor.changes <= max_events(config)


@RANDOM_MENU_SETTINGS
@given(ivr_configs(), st.lists(st.integers(0, 11), min_size=1))
def test_a_caller_wandering_through_menus_forever_is_routed(
    config: IvrConfig, picks: list[int]
) -> None:
    # Only keys that keep the caller in the menus: repeat, back, another menu.
    executor = Executor(IvrSession(config, language="ru"))
    executor.start()
    session = executor.session
    turn = 0
    while not session.finished:
        assert turn < 10 * max_events(config), "the caller is never routed"
        menu = config.menus[session.menu]
        wandering = sorted(
            key
            for key, action in menu.options.items()
            if isinstance(action, MenuAction | RepeatAction | BackAction)
        )
        key = wandering[picks[turn % len(picks)] % len(wandering)] if wandering else "A"
        executor.listen()
        executor.press(key)
        if executor.timer is not None and not session.finished:
            executor.fire_timer()  # the key began an internal number: let it be the option
        turn += 1
    assert executor.changes <= max_events(config)
    check_route(config, executor, self_service=True)

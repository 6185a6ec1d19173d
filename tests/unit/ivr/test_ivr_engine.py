"""The IVR engine, event by event: prompts, keys, timers, retries, submenus, direct dial."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pbx_service.calls.ivr import (
    CancelTimer,
    IvrSession,
    Play,
    Route,
    RouteReason,
    StartTimer,
    StopPlayback,
    max_events,
)
from pbx_service.config.ivr import (
    ExtensionAction,
    IvrConfig,
    OperatorAction,
    SelfServiceAction,
    TeamAction,
    VoicemailAction,
    default_ivr,
)

from .helpers import FULL, Executor, ivr, ivr_from

SHIPPED = default_ivr({"sales", "hr", "partners", "reception"})
REPEAT_OR_TEAM = {"1": {"team": "a"}, "9": {"repeat": True}}


def started(config: IvrConfig, language: str = "ru") -> Executor:
    executor = Executor(IvrSession(config, language=language))
    executor.start()
    return executor


def full() -> Executor:
    executor = started(ivr(FULL))
    executor.listen()
    return executor


def only_route(commands: Sequence[object]) -> Route:
    routes = [c for c in commands if isinstance(c, Route)]
    assert len(routes) == 1
    return routes[0]


# ---- the shipped menu ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "action", "category"),
    [
        ("1", TeamAction(team="sales", category="customer"), "customer"),
        ("2", TeamAction(team="hr", category="job_applicant"), "job_applicant"),
        ("3", TeamAction(team="partners", category="partner"), "partner"),
        ("0", OperatorAction(), None),
    ],
)
def test_every_path_of_the_shipped_menu(
    key: str, action: TeamAction | OperatorAction, category: str | None
) -> None:
    executor = started(SHIPPED)
    play = executor.commands[0]
    assert play == Play(("main-menu",), True, 1, "ru")
    assert executor.press(key) == [
        StopPlayback(1),
        Route(
            action=action,
            category=category,
            menu_path=("main", key),
            language="ru",
            reason=RouteReason.CHOSEN,
            fallback=OperatorAction(),
        ),
    ]
    assert executor.session.finished
    assert executor.session.category == category
    assert executor.session.menu_path == ("main", key)


def test_the_shipped_menu_after_the_prompt_ends() -> None:
    executor = started(SHIPPED)
    assert executor.finish_playback() == [StartTimer(5.0, 2)]
    commands = executor.press("2")
    assert commands[0] == CancelTimer(2)
    assert only_route(commands).action == TeamAction(team="hr", category="job_applicant")


def test_the_shipped_menu_without_such_teams_rings_the_operator_with_the_category() -> None:
    config = default_ivr({"reception"})
    executor = started(config)
    route = only_route(executor.press("2"))
    assert route.action == OperatorAction(category="job_applicant")
    assert route.category == "job_applicant"


def test_the_shipped_menu_picks_the_first_team_that_exists() -> None:
    options = default_ivr({"orders", "support", "recruiting", "suppliers"}).menus["main"].options
    assert options["1"] == TeamAction(team="orders", category="customer")
    assert options["2"] == TeamAction(team="recruiting", category="job_applicant")
    assert options["3"] == TeamAction(team="suppliers", category="partner")


def test_the_shipped_menu_with_a_recording_notice() -> None:
    executor = started(default_ivr({"sales"}, recording_notice="recording-notice"))
    assert executor.commands == [
        Play(("recording-notice",), False, 1, "ru"),
        Play(("main-menu",), True, 2, "ru"),
    ]


# ---- prompts and timers -------------------------------------------------------------------


def test_start_plays_the_notice_then_the_menu_and_only_once() -> None:
    session = IvrSession(ivr(FULL), language="en")
    assert session.start() == [
        Play(("recording-notice",), False, 1, "en"),
        Play(("main-menu",), True, 2, "en"),
    ]
    assert session.start() == []
    assert session.menu_path == ("main",)
    assert session.menu == "main"
    assert session.language == "en"
    assert session.category is None
    assert not session.finished
    assert session.route is None


def test_the_timer_starts_when_the_last_prompt_ends() -> None:
    executor = started(ivr(FULL))
    assert executor.finish_playback() == []  # the notice; the menu prompt still plays
    assert executor.finish_playback() == [StartTimer(5.0, 3)]


def test_keys_during_the_recording_notice_are_ignored() -> None:
    executor = started(ivr(FULL))
    assert executor.press("0123456789*#") == []
    executor.finish_playback()
    assert executor.press("0")[:1] == [StopPlayback(2)]


def test_events_before_start_and_unknown_refs_are_ignored() -> None:
    session = IvrSession(ivr(FULL), language="ru")
    assert session.on_digit("1") == []
    assert session.on_timeout(1) == []
    assert session.on_playback_finished(1) == []
    session.start()
    assert session.on_playback_finished(99) == []
    assert session.on_timeout(1) == []  # a playback's ref is not a timer


def test_a_stopped_prompts_finish_and_a_cancelled_timer_are_ignored() -> None:
    executor = full()
    timer = executor.timer
    assert timer is not None
    commands = executor.press("4")  # direct dial: cancels the menu timer, starts its own
    assert commands[0] == CancelTimer(timer)
    assert executor.session.on_timeout(timer) == []
    executor.fire_timer()  # "4" is no option: invalid, menu again
    replay = executor.playing[0]
    assert executor.press("0")[0] == StopPlayback(replay)
    assert executor.session.on_playback_finished(replay) == []


def test_a_replaced_timer_is_stale() -> None:
    executor = full()
    first = executor.timer
    assert first is not None
    executor.fire_timer()
    executor.listen()
    assert executor.timer not in (None, first)
    assert executor.session.on_timeout(first) == []


def test_timeout_plays_the_timeout_prompt_and_the_menu_again() -> None:
    executor = full()
    commands = executor.fire_timer()
    assert commands == [Play(("timeout", "main-menu"), True, 4, "ru")]
    assert executor.session.menu_path == ("main", "timeout")


def test_silence_until_retries_run_out_routes_to_the_default() -> None:
    executor = full()
    for _ in range(3):
        assert isinstance(executor.fire_timer()[0], Play)
        executor.listen()
    route = only_route(executor.fire_timer())
    assert route.action == OperatorAction()
    assert route.reason is RouteReason.RETRIES_EXHAUSTED
    assert route.path_text == "main>timeout>timeout>timeout>timeout>default"


def test_idle_caller_needs_few_events() -> None:
    executor = started(ivr(FULL))
    # notice, then 4 x (prompt ends, timer fires)
    assert executor.idle(max_events(ivr(FULL))) == 1 + 4 * 2


# ---- keys ---------------------------------------------------------------------------------


def test_barge_in_stops_the_prompt_before_anything_else() -> None:
    executor = started(ivr(FULL))
    executor.finish_playback()
    commands = executor.press("9")
    assert commands == [StopPlayback(2), Play(("main-menu",), True, 3, "ru")]


def test_an_invalid_key_plays_invalid_then_the_menu_counting_a_retry() -> None:
    executor = full()
    commands = executor.press("#")
    assert commands[1:] == [Play(("invalid", "main-menu"), True, 4, "ru")]
    assert executor.session.menu_path == ("main", "invalid:#")


def test_a_key_during_the_invalid_prompt_barges_in() -> None:
    executor = full()
    executor.press("#")
    replay = executor.playing[0]
    commands = executor.press("0")
    assert commands[0] == StopPlayback(replay)
    assert only_route(commands).action == OperatorAction()


def test_wrong_keys_and_timeouts_share_the_retries() -> None:
    executor = full()
    executor.press("#")
    executor.listen()
    executor.fire_timer()
    executor.listen()
    executor.press("A")  # DTMF A-D exist on some phones; no menu offers them
    executor.listen()
    route = only_route(executor.press("#"))
    assert route.reason is RouteReason.RETRIES_EXHAUSTED
    assert route.menu_path == ("main", "invalid:#", "timeout", "invalid:A", "invalid:#", "default")


def test_max_retries_zero_routes_at_the_first_mistake() -> None:
    config = ivr_from(
        {"menus": {"main": {"prompt": "p", "max_retries": 0, "options": {"1": {"team": "a"}}}}}
    )
    executor = started(config)
    assert only_route(executor.press("2")).reason is RouteReason.RETRIES_EXHAUSTED


def test_without_barge_in_keys_wait_for_the_prompt_to_end() -> None:
    executor = full()
    executor.press("3")
    executor.fire_timer()  # "3" is a first digit of direct dial: resolves as the option
    executor.listen()
    executor.press("3")  # partners: 3 → deep, barge_in: false
    deep_prompt = executor.playing[0]
    assert executor.commands[-1] == Play(("deep-menu",), False, deep_prompt, "ru")
    assert executor.press("1") == []
    assert executor.finish_playback() == [StartTimer(5.0, deep_prompt + 1)]
    route = only_route(executor.press("1"))
    assert route.action == ExtensionAction(extension="101")
    assert route.path_text == "main>3>partners>3>deep>1"


def test_invalid_prompt_none_replays_only_the_menu() -> None:
    config = ivr_from(
        {
            "menus": {
                "main": {
                    "prompt": "p",
                    "invalid_prompt": None,
                    "timeout_prompt": "sound:beep",
                    "options": {"1": {"team": "a"}},
                }
            }
        }
    )
    executor = started(config)
    assert executor.press("5")[1] == Play(("p",), True, 2, "ru")
    executor.listen()
    assert executor.fire_timer() == [Play(("sound:beep", "p"), True, 4, "ru")]


# ---- submenus, back, repeat, language, category -------------------------------------------


def enter_partners(executor: Executor) -> None:
    executor.press("3")
    executor.fire_timer()  # inter-digit timeout: "3" alone is the option
    executor.listen()


def test_a_submenu_then_a_team_gives_path_and_category() -> None:
    executor = full()
    enter_partners(executor)
    assert executor.session.menu == "partners"
    assert executor.session.category == "partner"
    route = only_route(executor.press("2"))
    assert route.action == TeamAction(team="logistics", category="supplier")
    assert route.category == "supplier"  # the deeper choice is more precise
    assert route.path_text == "main>3>partners>2"
    assert route.fallback == VoicemailAction(voicemail="partners")


def test_back_returns_to_the_menu_the_caller_came_from() -> None:
    executor = full()
    enter_partners(executor)
    commands = executor.press("*")
    assert isinstance(commands[-1], Play)
    assert commands[-1].prompts == ("main-menu",)
    assert executor.session.menu == "main"
    assert executor.session.menu_path == ("main", "3", "partners", "*", "main")
    executor.listen()
    executor.fire_timer()
    assert ">".join(executor.session.menu_path) == "main>3>partners>*>main>timeout"


def test_back_through_two_levels_and_a_loop_to_the_start() -> None:
    executor = full()
    enter_partners(executor)
    executor.press("3")
    executor.listen()
    executor.press("#")  # deep → main (a menu option, not back)
    executor.listen()
    assert executor.session.menu == "main"
    enter_partners(executor)
    executor.press("*")
    assert executor.session.menu == "main"
    executor.listen()
    route = only_route(executor.press("0"))
    assert route.path_text == "main>3>partners>3>deep>#>main>3>partners>*>main>0"


def test_entering_a_menu_resets_its_retries() -> None:
    executor = full()
    enter_partners(executor)
    executor.fire_timer()  # partners allows 1 retry
    executor.listen()
    executor.press("*")  # back to main: a fresh start there
    executor.listen()
    enter_partners(executor)
    executor.fire_timer()
    executor.listen()
    route = only_route(executor.fire_timer())
    assert route.reason is RouteReason.RETRIES_EXHAUSTED
    assert route.action == VoicemailAction(voicemail="partners")
    assert route.menu_path[-3:] == ("timeout", "timeout", "default")


def test_repeat_replays_the_menu() -> None:
    executor = full()
    commands = executor.press("9")
    assert commands[1:] == [Play(("main-menu",), True, 4, "ru")]
    assert executor.session.menu_path == ("main", "9")


def test_repeat_with_a_language_switches_the_prompts() -> None:
    executor = full()
    executor.press("5")
    executor.fire_timer()  # "5" is a direct-dial first digit too
    play = executor.commands[-1]
    assert isinstance(play, Play)
    assert (play.prompts, play.language) == (("main-menu",), "en")
    assert executor.session.language == "en"
    executor.listen()
    route = only_route(executor.press("0"))
    assert route.language == "en"


def test_the_default_sets_its_own_category_and_language() -> None:
    config = ivr_from(
        {
            "menus": {
                "main": {
                    "prompt": "p",
                    "max_retries": 0,
                    "options": {"1": {"team": "a", "category": "customer"}},
                    "default": {"voicemail": "general", "category": "other", "language": "en"},
                }
            }
        }
    )
    executor = started(config)
    executor.listen()
    route = only_route(executor.fire_timer())
    assert (route.category, route.language) == ("other", "en")


def test_self_service_hands_over_with_the_default_as_fallback() -> None:
    executor = full()
    route = only_route(executor.press("7") + executor.fire_timer())
    assert route.action == SelfServiceAction(self_service="order_status", category="customer")
    assert route.fallback == OperatorAction()
    assert route.reason is RouteReason.CHOSEN


def test_voicemail_option() -> None:
    executor = full()
    route = only_route(executor.press("8") + executor.fire_timer())
    assert route.action == VoicemailAction(voicemail="general", category="other")
    assert route.category == "other"


def test_too_many_steps_route_to_the_default() -> None:
    config = ivr_from(
        {
            "max_steps": 3,
            "menus": {"main": {"prompt": "p", "options": REPEAT_OR_TEAM}},
        }
    )
    executor = started(config)
    for _ in range(3):
        assert isinstance(executor.press("9")[-1], Play)
    route = only_route(executor.press("9"))
    assert route.reason is RouteReason.STEP_LIMIT
    assert route.path_text == "main>9>9>9>9>default"


def test_a_terminal_choice_is_honoured_at_the_step_limit() -> None:
    config = ivr_from(
        {
            "max_steps": 1,
            "menus": {"main": {"prompt": "p", "options": REPEAT_OR_TEAM}},
        }
    )
    executor = started(config)
    executor.press("9")
    route = only_route(executor.press("1"))
    assert route.reason is RouteReason.CHOSEN


def test_nothing_happens_after_the_route() -> None:
    executor = full()
    executor.press("0")
    session = executor.session
    route = session.route
    assert route is not None
    assert session.on_digit("1") == []
    assert session.on_timeout(99) == []
    assert session.on_playback_finished(3) == []
    assert session.start() == []
    assert session.route is route


# ---- direct dial --------------------------------------------------------------------------


def test_direct_dial_collects_the_number() -> None:
    executor = full()
    timer = executor.timer
    commands = executor.press("1")
    assert commands == [CancelTimer(timer or 0), StartTimer(2.0, 4)]
    assert executor.press("0") == [CancelTimer(4), StartTimer(2.0, 5)]
    commands = executor.press("2")
    assert commands[0] == CancelTimer(5)
    route = only_route(commands)
    assert route.action == ExtensionAction(extension="102")
    assert route.reason is RouteReason.DIRECT_DIAL
    assert route.path_text == "main>102"
    assert route.fallback == OperatorAction()


def test_direct_dial_barges_in_too() -> None:
    executor = started(ivr(FULL))
    executor.finish_playback()
    assert executor.press("4") == [StopPlayback(2), StartTimer(2.0, 3)]


def test_a_first_digit_alone_is_the_option() -> None:
    executor = full()
    executor.press("1")
    route = only_route(executor.fire_timer())
    assert route.action == TeamAction(team="sales", category="customer")
    assert route.path_text == "main>1"


def test_hash_ends_the_number_early() -> None:
    executor = full()
    route = only_route(executor.press("1#"))
    assert route.action == TeamAction(team="sales", category="customer")


def test_a_short_number_is_invalid() -> None:
    executor = full()
    executor.press("12")
    commands = executor.fire_timer()
    assert commands == [Play(("invalid", "main-menu"), True, 6, "ru")]
    assert executor.session.menu_path == ("main", "invalid:12")


def test_a_first_digit_that_is_no_option_is_invalid_alone() -> None:
    executor = full()
    executor.press("4")
    executor.fire_timer()
    assert executor.session.menu_path == ("main", "invalid:4")


def test_star_ends_the_number_and_counts_as_wrong() -> None:
    executor = full()
    executor.press("12*")
    assert executor.session.menu_path == ("main", "invalid:12")


def test_digits_outside_first_are_options_at_once() -> None:
    executor = full()
    assert isinstance(executor.press("9")[-1], Play)
    assert executor.timer is None


def test_direct_dial_sets_its_category() -> None:
    config = ivr_from(
        {
            "menus": {
                "main": {
                    "prompt": "p",
                    "direct_dial": {"digits": 2, "first": "2-3", "category": "colleague"},
                }
            }
        }
    )
    executor = started(config)
    route = only_route(executor.press("25"))
    assert (route.action, route.category) == (ExtensionAction(extension="25"), "colleague")


def test_disabled_direct_dial_takes_single_keys() -> None:
    config = ivr_from(
        {
            "menus": {
                "main": {
                    "prompt": "p",
                    "direct_dial": {"enabled": False},
                    "options": {"1": {"team": "a"}},
                }
            }
        }
    )
    executor = started(config)
    assert only_route(executor.press("1")).action == TeamAction(team="a")


def test_the_bound_counts_direct_dial_digits() -> None:
    config = ivr(FULL)
    assert max_events(config) == 2 + 31 * 5
    assert max_events(default_ivr({"sales"})) == 2 + 31 * 3

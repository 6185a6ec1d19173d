"""The ivr: config section: the documented shape, the shipped menu, and every error."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pbx_service.config import ivr as ivr_module
from pbx_service.config.ivr import (
    BackAction,
    DirectDial,
    ExtensionAction,
    IvrConfig,
    MenuAction,
    OperatorAction,
    RepeatAction,
    SelfServiceAction,
    TeamAction,
    VoicemailAction,
    check_references,
    default_ivr,
    find_duplicate_keys,
    parse_first_digits,
)

from .helpers import FULL, errors_of, ivr, ivr_from

DOC = ivr_module.__doc__ or ""


def doc_block(after: str) -> str:
    """The indented YAML block that follows `after` in the module docstring."""
    text = DOC.split(after, 1)[1]
    lines = []
    for line in text.splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return "\n".join(lines)


def menu(**fields: Any) -> dict[str, Any]:
    return {"prompt": "p", "options": {"1": {"team": "a"}}, **fields}


# ---- the documented shape -----------------------------------------------------------------


def test_the_documented_example_parses() -> None:
    config = ivr(doc_block("all under ``ivr:``::"))
    main = config.menus["main"]
    assert config.start == "main"
    assert config.recording_notice == "recording-notice"
    assert main.options["1"] == TeamAction(team="sales", category="customer")
    assert main.options["3"] == MenuAction(menu="partners", category="partner")
    assert main.options["0"] == OperatorAction()
    assert main.options["9"] == RepeatAction()
    assert main.options["5"] == RepeatAction(language="en")
    assert main.options["8"] == VoicemailAction(voicemail="general", category="other")
    assert main.options["7"] == SelfServiceAction(self_service="order_status", category="customer")
    assert main.options["6"] == ExtensionAction(extension="101")
    assert config.menus["partners"].options["*"] == BackAction()
    assert main.direct_dial == DirectDial(digits=3, first="1-8", inter_digit_timeout=2)
    assert main.direct_dial.first_digits == frozenset("12345678")
    assert (main.timeout, main.max_retries, main.barge_in) == (5, 3, True)


def test_the_documented_shipped_menu_is_what_default_ivr_builds() -> None:
    documented = ivr(doc_block("The shipped menu (also what `default_ivr` builds"))
    assert documented == default_ivr({"sales", "hr", "partners"})


def test_defaults() -> None:
    operator = {"0": {"operator": True}}
    config = ivr_from({"menus": {"main": {"prompt": "main-menu", "options": operator}}})
    main = config.menus["main"]
    assert (config.start, config.recording_notice, config.max_steps) == ("main", None, 30)
    assert (main.timeout, main.max_retries, main.barge_in) == (5.0, 3, True)
    assert (main.invalid_prompt, main.timeout_prompt) == ("invalid", "timeout")
    assert main.default == OperatorAction()
    assert main.direct_dial is None


def test_yaml_integer_keys_and_names_become_text() -> None:
    config = ivr("ivr: {menus: {main: {prompt: p, options: {1: {extension: 101}, 2: {team: 7}}}}}")
    options = config.menus["main"].options
    assert options == {"1": ExtensionAction(extension="101"), "2": TeamAction(team="7")}


def test_a_dump_validates_back_to_the_same_config() -> None:
    config = ivr(FULL)
    assert IvrConfig.model_validate(config.model_dump()) == config
    assert IvrConfig.model_validate(config.model_dump(mode="json")) == config
    assert config.model_dump()["menus"]["main"]["options"]["0"] == {"operator": True}


def test_actions_built_in_python_are_accepted() -> None:
    config = IvrConfig(menus={"main": {"prompt": "p", "options": {"1": TeamAction(team="a")}}})
    assert config.menus["main"].options["1"] == TeamAction(team="a")


def test_prompt_names_lists_our_prompts_only() -> None:
    config = ivr(FULL)
    assert config.prompt_names() == [
        "deep-menu",
        "invalid",
        "main-menu",
        "partners-menu",
        "recording-notice",
        "timeout",
    ]
    media = ivr_from({"menus": {"main": menu(prompt="sound:hello-world", invalid_prompt=None)}})
    assert media.prompt_names() == ["timeout"]


def test_languages_lists_the_switches() -> None:
    assert ivr(FULL).languages() == ["en"]
    assert default_ivr({"sales"}).languages() == []


def test_parse_first_digits() -> None:
    assert parse_first_digits("1-8") == frozenset("12345678")
    assert parse_first_digits("2, 5-7") == frozenset("2567")
    assert parse_first_digits("0") == frozenset("0")


# ---- errors -------------------------------------------------------------------------------


def only(errors: list[tuple[str, str]]) -> tuple[str, str]:
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("key", ["12", "a", "**", " 1", "", "10"])
def test_a_key_that_is_not_a_phone_key(key: str) -> None:
    path, message = only(errors_of({"menus": {"main": menu(options={key: {"team": "a"}})}}))
    assert path == f"ivr.menus.main.options.{key}"
    assert "not a phone key" in message and "0-9, * or #" in message


def test_an_integer_key_that_is_not_a_phone_key() -> None:
    path, message = only(errors_of({"menus": {"main": menu(options={10: {"team": "a"}})}}))
    assert path == "ivr.menus.main.options.10"
    assert "10 is not a phone key" in message


def test_a_key_bound_twice_as_number_and_text() -> None:
    options = {1: {"team": "a"}, "1": {"team": "b"}}
    path, message = only(errors_of({"menus": {"main": menu(options=options)}}))
    assert path == "ivr.menus.main.options.1"
    assert "bound twice" in message and "keep one" in message


def test_an_option_pointing_at_a_missing_menu() -> None:
    options = {"1": {"team": "a"}, "3": {"menu": "partner"}}
    data = {"menus": {"main": menu(options=options), "partners": menu()}}
    path, message = only(errors_of(data))
    assert path == "ivr.menus.main.options.3.menu"
    assert "no menu named 'partner'" in message and "did you mean 'partners'" in message


@pytest.mark.parametrize(
    "default", [{"menu": "main"}, {"repeat": True}, {"back": True}, {"self_service": "x"}]
)
def test_a_default_that_is_not_a_person_or_voicemail(default: dict[str, Any]) -> None:
    path, message = only(errors_of({"menus": {"main": menu(default=default)}}))
    assert path == "ivr.menus.main.default"
    assert "person or a voicemail" in message and "{operator: true}" in message


def test_a_menu_from_which_nobody_can_be_reached() -> None:
    data = {
        "menus": {
            "main": menu(options={"1": {"menu": "a"}, "2": {"team": "t"}}),
            "a": menu(options={"1": {"menu": "b"}, "9": {"repeat": True}, "*": {"back": True}}),
            "b": menu(options={"1": {"menu": "a"}, "2": {"self_service": "x"}}),
        }
    }
    errors = errors_of(data)
    assert [path for path, _ in errors] == ["ivr.menus.a.options", "ivr.menus.b.options"]
    assert "no option leads to a person or a voicemail" in errors[0][1]


def test_a_menu_reaching_a_person_through_submenus_is_fine() -> None:
    data = {
        "menus": {
            "main": menu(options={"1": {"menu": "a"}}),
            "a": menu(options={"1": {"menu": "b"}, "*": {"back": True}}),
            "b": menu(options={"1": {"voicemail": "general"}}),
        }
    }
    assert ivr_from(data).menus["a"].options["*"] == BackAction()


def test_direct_dial_reaches_a_person() -> None:
    data = {"menus": {"main": {"prompt": "p", "direct_dial": {"digits": 3}}}}
    assert ivr_from(data).menus["main"].dials_directly
    off = {"menus": {"main": {"prompt": "p", "direct_dial": {"enabled": False}}}}
    assert only(errors_of(off))[0] == "ivr.menus.main.options"


def test_the_start_menu_missing() -> None:
    path, message = only(errors_of({"start": "mian", "menus": {"main": menu()}}))
    assert path == "ivr.start"
    assert "no menu named 'mian'" in message and "did you mean 'main'" in message


def test_back_on_the_start_menu() -> None:
    options = {"1": {"team": "a"}, "*": {"back": True}}
    path, message = only(errors_of({"menus": {"main": menu(options=options)}}))
    assert path == "ivr.menus.main.options.*"
    assert "back on the start menu" in message


def test_all_graph_problems_are_reported_at_once() -> None:
    data = {
        "start": "begin",
        "menus": {"main": menu(options={"1": {"menu": "x"}}), "other": menu()},
    }
    paths = [path for path, _ in errors_of(data)]
    assert paths == ["ivr.start", "ivr.menus.main.options.1.menu", "ivr.menus.main.options"]


@pytest.mark.parametrize(
    ("option", "path", "words"),
    [
        ({"team": "a", "menu": "b"}, "", "exactly one of"),
        ({"category": "customer"}, "", "found none"),
        ("operator", "", "not an action"),
        ({"team": "a", "colour": "red"}, ".colour", "Extra inputs"),
        ({"team": "a", "category": "Customer"}, ".category", "not a category name"),
        ({"team": "a", "language": "english"}, ".language", "not a language"),
        ({"team": "sales team"}, ".team", "not a name"),
        ({"extension": "10a"}, ".extension", "not an internal number"),
        ({"repeat": False}, ".repeat", "True"),
    ],
)
def test_a_bad_option(option: object, path: str, words: str) -> None:
    errors = errors_of({"menus": {"main": menu(options={"1": {"team": "a"}, "2": option})}})
    where, message = only(errors)
    assert where == "ivr.menus.main.options.2" + path
    assert words in message


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"prompt": "Main Menu"}, "prompt", "not a prompt name"),
        ({"invalid_prompt": "x.wav"}, "invalid_prompt", "not a prompt name"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"max_retries": -1}, "max_retries", "greater than or equal to 0"),
        ({"direct_dial": {"first": "1-x"}}, "direct_dial.first", "'1-x' is not a digit or a range"),
        ({"direct_dial": {"first": "8-1"}}, "direct_dial.first", "runs backwards"),
        ({"direct_dial": {"digits": 1}}, "direct_dial.digits", "greater than or equal to 2"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_a_bad_menu_setting(fields: dict[str, Any], path: str, words: str) -> None:
    where, message = only(errors_of({"menus": {"main": menu(**fields)}}))
    assert where == f"ivr.menus.main.{path}"
    assert words in message


def test_a_bad_menu_name_and_no_menus() -> None:
    where, message = only(errors_of({"menus": {"a>b": menu()}}))
    assert (where, "not a menu name" in message) == ("ivr.menus.a>b", True)
    assert only(errors_of({"menus": {}}))[0] == "ivr.menus"
    assert only(errors_of({"recording_notice": "Notice", "menus": {"main": menu()}}))[0] == (
        "ivr.recording_notice"
    )


# ---- duplicate keys -----------------------------------------------------------------------


def test_find_duplicate_keys_in_options() -> None:
    text = """
ivr:
  menus:
    main:
      prompt: p
      options:
        "1": {team: sales}
        "2": {team: hr}
        "1": {team: partners}
"""
    assert find_duplicate_keys(text) == [("ivr.menus.main.options", "1")]
    # What the loader would do without the check: keep the last, silently.
    assert ivr(text).menus["main"].options["1"] == TeamAction(team="partners")


def test_find_duplicate_keys_anywhere() -> None:
    text = """
lines:
  - {did: "1", label: a, label: b}
teams: {}
teams: {}
ivr: {menus: {main: {options: {1: x, "1": y, 1: z, true: a, 1.0: b}}}}
"""
    assert find_duplicate_keys(text) == [
        ("", "teams"),
        ("lines[0]", "label"),
        ("ivr.menus.main.options", "1"),
    ]


def test_find_duplicate_keys_with_no_duplicates_aliases_and_bad_yaml() -> None:
    assert find_duplicate_keys(FULL) == []
    assert find_duplicate_keys("") == []
    assert find_duplicate_keys("a: [1, 2\n") == []  # not YAML: the loader says so
    aliases = "base: &b {x: 1, y: 2}\nuse: {<<: *b, x: 3}\nagain: *b\nloop: &l [*l]\n"
    assert find_duplicate_keys(aliases) == []
    complex_keys = "? [a, b]\n: 1\n? [a, b]\n: 2\n"
    assert find_duplicate_keys(complex_keys) == []
    assert yaml.safe_load(FULL)  # the fixture itself is YAML


# ---- references to the rest of the config -------------------------------------------------


def test_check_references_finds_every_unknown_name() -> None:
    config = ivr(FULL)
    shipped = {"main-menu", "invalid", "timeout", "recording-notice", "partners-menu"}
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return name in shipped

    problems = check_references(
        config,
        team_names={"sales", "hr", "purchasing"},
        voicemail_boxes={"general"},
        prompt_exists=exists,
        self_services={"order_history"},
    )
    assert problems == [
        "ivr.menus.main.options.7.self_service: no self-service flow named 'order_status'; "
        "did you mean 'order_history'? (or define 'order_status' under the self-service flows)",
        "ivr.menus.partners.options.2.team: no team named 'logistics'; "
        "define it under teams: or use one of ['hr', 'purchasing', 'sales']",
        "ivr.menus.partners.default.voicemail: no voicemail box named 'partners'; "
        "define it under the voicemail boxes or use one of ['general']",
        "ivr.menus.deep.prompt: no prompt file for 'deep-menu'; add "
        "ivr_prompts/<lang>/deep-menu.wav (see ivr_prompts/README.md) or fix the name",
    ]
    assert sorted(asked) == sorted(set(asked))  # each prompt looked up once


def test_check_references_when_all_is_there() -> None:
    config = ivr(FULL)
    problems = check_references(
        config,
        team_names={"sales", "hr", "purchasing", "logistics"},
        voicemail_boxes={"general", "partners"},
        prompt_exists=lambda name: True,
    )
    assert problems == []


def test_check_references_checks_defaults_and_skips_media_uris() -> None:
    config = ivr_from(
        {
            "recording_notice": "sound:beep",
            "menus": {"main": menu(default={"team": "salse"}, timeout_prompt="sound:x")},
        }
    )
    problems = check_references(config, {"a", "sales"}, set(), lambda name: name == "p")
    assert problems == [
        "ivr.menus.main.invalid_prompt: no prompt file for 'invalid'; add "
        "ivr_prompts/<lang>/invalid.wav (see ivr_prompts/README.md) or fix the name",
        "ivr.menus.main.default.team: no team named 'salse'; did you mean 'sales'? "
        "(or define 'salse' under teams:)",
    ]

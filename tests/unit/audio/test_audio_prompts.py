"""The prompt catalogue and the names it turns into paths and media URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx_service.audio import REQUIRED_PROMPTS, PromptNameError, media_uri, prompt_path
from pbx_service.audio.prompts import check_lang, prompt_text_path

# The prompts the call flow plays (issue "IVR menus and prompts").
EXPECTED = {
    "greeting", "recording-notice", "please-hold", "all-busy", "leave-message",
    "voicemail-thanks", "closed-night", "closed-holiday", "callback-promise",
        "callback-after-opening", "main-menu",
    "invalid", "timeout", "goodbye", "press-1-callback", "callback-confirmed",
    "agent-logged-in", "agent-logged-out", "agent-paused", "agent-unpaused",
    "callback-no-tasks", "position", "connecting",
}  # fmt: skip


def test_catalogue_has_every_prompt_with_a_purpose() -> None:
    assert set(REQUIRED_PROMPTS) == EXPECTED
    for name, purpose in REQUIRED_PROMPTS.items():
        assert purpose.strip(), name


def test_catalogue_cannot_be_changed_by_accident() -> None:
    with pytest.raises(TypeError):
        REQUIRED_PROMPTS["extra"] = "x"  # type: ignore[index]


def test_every_catalogue_name_is_a_valid_file_name() -> None:
    for name in REQUIRED_PROMPTS:
        assert media_uri(name) == f"sound:pbx/{name}"


def test_prompt_path() -> None:
    assert prompt_path(Path("/p"), "ru", "main-menu") == Path("/p/ru/main-menu.wav")
    assert prompt_path(Path("/p"), "en_GB", "goodbye") == Path("/p/en_GB/goodbye.wav")
    assert prompt_text_path(Path("/p"), "ru", "main-menu") == Path("/p/ru/main-menu.txt")


def test_media_uri() -> None:
    assert media_uri("press-1-callback") == "sound:pbx/press-1-callback"


@pytest.mark.parametrize(
    "name", ["", "Greeting", "main menu", "../x", "a/b", "x.wav", "-lead", "trail-", "a--b"]
)
def test_bad_prompt_names_are_refused(name: str) -> None:
    with pytest.raises(PromptNameError) as caught:
        media_uri(name)
    assert caught.value.error_id == "audio-bad-prompt-name"
    assert "'main-menu'" in str(caught.value)  # shows a good example


@pytest.mark.parametrize("lang", ["", "RU", "russian", "r", "en-GB", "../en"])
def test_bad_languages_are_refused(lang: str) -> None:
    with pytest.raises(PromptNameError, match="Asterisk language code"):
        check_lang(lang)

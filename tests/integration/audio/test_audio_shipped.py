"""The prompts the project ships in ivr_prompts/: complete, playable, and exactly as built.

Needs neither ffmpeg nor espeak-ng.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pbx_service.audio import (
    REQUIRED_PROMPTS,
    SHIPPED_LANGS,
    build_prompts,
    check_prompts,
    prompt_text_path,
    render_problems,
)
from tests.conftest import REPO_ROOT

PROMPTS_DIR = REPO_ROOT / "ivr_prompts"
# Several seconds is a long prompt; the menu has four choices to read out.
LONGEST_S = {"main-menu": 13.0, "leave-message": 13.0}


def test_every_required_prompt_is_shipped_and_playable() -> None:
    problems = check_prompts(PROMPTS_DIR, SHIPPED_LANGS, REQUIRED_PROMPTS)

    assert problems == [], render_problems(problems)


@pytest.mark.parametrize("lang", SHIPPED_LANGS)
def test_every_prompt_has_its_words(lang: str) -> None:
    for name in REQUIRED_PROMPTS:
        text = prompt_text_path(PROMPTS_DIR, lang, name).read_text(encoding="utf-8").strip()
        assert text, name
        if lang == "ru":
            assert re.search("[а-яё]", text, re.IGNORECASE), (name, text)
            assert not re.search("[a-z]", text, re.IGNORECASE), (name, text)
        else:
            assert text.isascii(), (name, text)


def test_greeting_wording() -> None:
    ru = prompt_text_path(PROMPTS_DIR, "ru", "greeting").read_text(encoding="utf-8").strip()
    assert ru == "Здравствуйте! Вы позвонили в компанию."


def test_shipped_files_are_small() -> None:
    for lang in SHIPPED_LANGS:
        for wav in (PROMPTS_DIR / lang).glob("*.wav"):
            seconds = (wav.stat().st_size - 44) / 16000
            assert 0.5 < seconds < LONGEST_S.get(wav.stem, 8.0), wav


def test_nothing_unexpected_is_shipped() -> None:
    for lang in SHIPPED_LANGS:
        names = {p.name for p in (PROMPTS_DIR / lang).iterdir()}
        expected = {f"{n}.{ext}" for n in REQUIRED_PROMPTS for ext in ("wav", "txt")}
        assert names == expected


def test_shipped_wavs_are_what_the_build_makes(tmp_path: Path) -> None:
    # The manifest holds the SHA-256 of each text and of the WAV built from it: a rebuild that
    # finds everything unchanged proves no WAV was edited by hand or left behind by a text
    # change. (Needs no espeak-ng: an unchanged prompt is not spoken again.)
    copy = tmp_path / "ivr_prompts"
    shutil.copytree(PROMPTS_DIR, copy)

    report = build_prompts(copy, copy, espeak=False)

    assert report.counts() == {
        "converted": 0,
        "generated": 0,
        "unchanged": len(SHIPPED_LANGS) * len(REQUIRED_PROMPTS),
        "failed": 0,
    }, [r for r in report.results if r.action != "unchanged"]

"""check_prompts on WAV files written in a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pbx_service.audio import PromptNameError, check_prompts, render_problems
from pbx_service.audio.check import PromptProblem

from .wavfiles import silence, tone, write_wav

GOOD_SECONDS = 1.0


def _good(root: Path, lang: str, name: str) -> Path:
    return write_wav(root / lang / f"{name}.wav", tone(GOOD_SECONDS, 8000))


def _only(problems: list[PromptProblem]) -> PromptProblem:
    assert len(problems) == 1, problems
    return problems[0]


def test_good_prompts_have_no_problems(tmp_path: Path) -> None:
    for lang in ("ru", "en"):
        for name in ("greeting", "main-menu"):
            _good(tmp_path, lang, name)

    assert check_prompts(tmp_path, ["ru", "en"], ["greeting", "main-menu"]) == []


def test_missing_file_is_named_with_the_fix(tmp_path: Path) -> None:
    _good(tmp_path, "ru", "greeting")

    problem = _only(check_prompts(tmp_path, ["ru"], ["greeting", "goodbye"]))

    assert (problem.lang, problem.name, problem.kind) == ("ru", "goodbye", "missing")
    assert problem.path == tmp_path / "ru" / "goodbye.wav"
    assert str(problem.path) in problem.message
    assert "goodbye.txt" in problem.message
    assert "pbx-service prompts build" in problem.message


def test_a_missing_language_folder_reports_every_prompt(tmp_path: Path) -> None:
    problems = check_prompts(tmp_path, ["en"], ["greeting", "goodbye"])

    assert [(p.name, p.kind) for p in problems] == [("greeting", "missing"), ("goodbye", "missing")]


@pytest.mark.parametrize(
    ("rate", "channels", "width", "described"),
    [
        (16000, 1, 2, "16000 Hz, mono, 16-bit"),
        (44100, 1, 2, "44100 Hz, mono, 16-bit"),
        (8000, 2, 2, "8000 Hz, stereo, 16-bit"),
        (8000, 1, 1, "8000 Hz, mono, 8-bit"),
        (8000, 1, 3, "8000 Hz, mono, 24-bit"),
    ],
)
def test_wrong_format_says_what_it_is_and_what_asterisk_needs(
    tmp_path: Path, rate: int, channels: int, width: int, described: str
) -> None:
    frames = bytes(rate * channels * width)  # 1 s; format is checked before content
    path = write_wav(
        tmp_path / "ru" / "greeting.wav", frames, rate=rate, channels=channels, width=width
    )

    problem = _only(check_prompts(tmp_path, ["ru"], ["greeting"]))

    assert problem.kind == "wrong-format"
    assert problem.message.startswith(f"{path}: {described};")
    assert "8000 Hz mono 16-bit" in problem.message
    assert "pbx-service prompts build" in problem.message


@pytest.mark.parametrize("seconds", [0.0, 0.05, 0.19])
def test_empty_or_too_short(tmp_path: Path, seconds: float) -> None:
    write_wav(tmp_path / "en" / "invalid.wav", tone(seconds, 8000))

    problem = _only(check_prompts(tmp_path, ["en"], ["invalid"]))

    assert problem.kind == "too-short"
    assert f"{seconds:.2f} s" in problem.message


def test_just_long_enough_passes(tmp_path: Path) -> None:
    write_wav(tmp_path / "en" / "invalid.wav", tone(0.2, 8000))

    assert check_prompts(tmp_path, ["en"], ["invalid"]) == []


def test_silent_file(tmp_path: Path) -> None:
    write_wav(tmp_path / "en" / "goodbye.wav", silence(2.0, 8000))

    problem = _only(check_prompts(tmp_path, ["en"], ["goodbye"]))

    assert problem.kind == "silent"
    assert "2.00 s of silence" in problem.message


def test_very_quiet_but_audible_is_not_silent(tmp_path: Path) -> None:
    write_wav(tmp_path / "en" / "goodbye.wav", tone(1.0, 8000, dbfs=-45.0))

    assert check_prompts(tmp_path, ["en"], ["goodbye"]) == []


@pytest.mark.parametrize(
    "content",
    [b"", b"not a wav file at all, just text", b"RIFF\x24\x00\x00\x00WAVEfmt "],
    ids=["empty-file", "text", "truncated-header"],
)
def test_unreadable_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ru" / "timeout.wav"
    path.parent.mkdir()
    path.write_bytes(content)

    problem = _only(check_prompts(tmp_path, ["ru"], ["timeout"]))

    assert problem.kind == "unreadable"
    assert str(path) in problem.message
    assert "pbx-service prompts build" in problem.message


def test_truncated_data_counts_what_is_really_there(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "ru" / "timeout.wav", tone(1.0, 8000))
    # Keep the header (which promises 1 s) and 0.1 s of samples.
    path.write_bytes(path.read_bytes()[: 44 + 1600])

    problem = _only(check_prompts(tmp_path, ["ru"], ["timeout"]))

    assert problem.kind == "too-short"


def test_a_directory_in_place_of_the_file_is_missing(tmp_path: Path) -> None:
    (tmp_path / "ru" / "greeting.wav").mkdir(parents=True)

    assert _only(check_prompts(tmp_path, ["ru"], ["greeting"])).kind == "missing"


def test_names_are_checked_before_they_become_paths(tmp_path: Path) -> None:
    with pytest.raises(PromptNameError, match=re.escape("bad prompt name '../etc/passwd'")):
        check_prompts(tmp_path, ["ru"], ["../etc/passwd"])
    with pytest.raises(PromptNameError, match=re.escape("bad language 'RU/..'")):
        check_prompts(tmp_path, ["RU/.."], ["greeting"])


def test_names_may_be_any_iterable(tmp_path: Path) -> None:
    _good(tmp_path, "ru", "greeting")
    _good(tmp_path, "en", "greeting")

    assert check_prompts(tmp_path, ["ru", "en"], (n for n in ["greeting"])) == []


def test_render_problems_lists_each_and_says_how_to_recheck(tmp_path: Path) -> None:
    write_wav(tmp_path / "ru" / "greeting.wav", silence(1.0, 8000))
    problems = check_prompts(tmp_path, ["ru"], ["greeting", "goodbye"])

    text = render_problems(problems)

    lines = text.splitlines()
    assert lines[0] == "2 prompt problems:"
    assert lines[1].startswith(f"  [silent] {tmp_path / 'ru' / 'greeting.wav'}:")
    assert lines[2].startswith(f"  [missing] {tmp_path / 'ru' / 'goodbye.wav'}:")
    assert "pbx-service prompts check" in lines[-1]


def test_render_no_problems() -> None:
    assert render_problems([]).startswith("All prompts are present")

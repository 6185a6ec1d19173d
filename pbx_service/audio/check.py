"""Check that the prompt files are where Asterisk looks and in a format it plays natively.

Uses only the stdlib ``wave`` module: fast, and works on a host without ffmpeg.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pbx_service.audio import pcm
from pbx_service.audio.prompts import (
    PROMPT_CHANNELS,
    PROMPT_RATE_HZ,
    PROMPT_SAMPLE_WIDTH,
    prompt_path,
)

ProblemKind = Literal["missing", "unreadable", "wrong-format", "too-short", "silent"]

MIN_DURATION_S: Final = 0.2
BUILD_HINT: Final = "run `pbx-service prompts build`"
# Longer than any sane prompt; stops a runaway file from being read whole.
_MAX_CHECKED_S: Final = 600


@dataclass(frozen=True, slots=True)
class PromptProblem:
    """One thing wrong with one prompt file."""

    lang: str
    name: str
    path: Path
    kind: ProblemKind
    message: str
    """Names the file, says what is wrong and how to fix it."""


def check_prompts(
    prompts_dir: Path, langs: Sequence[str], names: Iterable[str]
) -> list[PromptProblem]:
    """Check ``<prompts_dir>/<lang>/<name>.wav`` for every language and name.

    Reports files that are missing, unreadable, not 8 kHz mono 16-bit PCM WAV, shorter than
    0.2 s, or silent. An empty list means Asterisk can play every prompt. Raises
    `PromptNameError` for a language or name that cannot be a file name.
    """
    name_list = list(names)
    problems: list[PromptProblem] = []
    for lang in langs:
        for name in name_list:
            problem = _check_file(lang, name, prompt_path(Path(prompts_dir), lang, name))
            if problem is not None:
                problems.append(problem)
    return problems


def _check_file(lang: str, name: str, path: Path) -> PromptProblem | None:
    def problem(kind: ProblemKind, what: str, fix: str = BUILD_HINT) -> PromptProblem:
        return PromptProblem(lang, name, path, kind, f"{path}: {what}; {fix}")

    if not path.is_file():
        return problem(
            "missing",
            "missing",
            f"record it (or write {name}.txt with its words) and {BUILD_HINT}",
        )
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
            # Count what is really there: a truncated file's header promises more.
            frames = wav.readframes(min(wav.getnframes(), _MAX_CHECKED_S * max(rate, 1)))
    except (OSError, EOFError, wave.Error) as exc:
        return problem(
            "unreadable",
            f"not a readable PCM WAV ({exc or type(exc).__name__})",
            f"Asterisk needs plain PCM WAV: {BUILD_HINT} to convert it",
        )
    if (rate, channels, width) != (PROMPT_RATE_HZ, PROMPT_CHANNELS, PROMPT_SAMPLE_WIDTH):
        return problem(
            "wrong-format",
            f"{rate} Hz, {_channels(channels)}, {8 * width}-bit; Asterisk plays "
            f"{PROMPT_RATE_HZ} Hz mono {8 * PROMPT_SAMPLE_WIDTH}-bit PCM without transcoding",
        )
    duration = len(frames) / (rate * channels * width)
    if duration < MIN_DURATION_S:
        return problem(
            "too-short",
            f"{duration:.2f} s of audio (empty or cut off; at least {MIN_DURATION_S} s expected)",
        )
    if pcm.peak_dbfs(frames) < pcm.SILENCE_FLOOR_DBFS:
        return problem(
            "silent",
            f"{duration:.2f} s of silence, no sound above {pcm.SILENCE_FLOOR_DBFS:.0f} dBFS",
        )
    return None


def _channels(count: int) -> str:
    return {1: "mono", 2: "stereo"}.get(count, f"{count} channels")

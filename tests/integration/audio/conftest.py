"""Fixtures for the audio integration tests: the real ffmpeg and espeak-ng, or a loud failure.

These tests never skip when a tool is missing: CI installs ffmpeg and espeak-ng, and a silent
skip would hide that the prompt build is untested.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def ffmpeg() -> str:
    """The path of the real ffmpeg (ffprobe must be there too)."""
    path = shutil.which("ffmpeg")
    if path is None or shutil.which("ffprobe") is None:
        pytest.fail(
            "ffmpeg is not installed: this test needs the real ffmpeg and ffprobe; "
            "install them with `apt-get install ffmpeg`"
        )
    return path


@pytest.fixture
def espeak_ng() -> str:
    """The path of the real espeak-ng."""
    path = shutil.which("espeak-ng")
    if path is None:
        pytest.fail("espeak-ng is not installed: install it with `apt-get install espeak-ng`")
    return path


Encode = Callable[[Path, Path], Path]


@pytest.fixture
def encode(ffmpeg: str) -> Encode:
    """Encode a WAV into the format named by the target's extension, with the real ffmpeg."""
    codecs = {".mp3": "libmp3lame", ".ogg": "libvorbis", ".flac": "flac"}

    def run(wav: Path, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [ffmpeg, "-nostdin", "-y", "-loglevel", "error", "-i", str(wav),
             "-c:a", codecs[target.suffix], str(target)],
            check=True,
            timeout=30,
        )  # fmt: skip
        return target

    return run


@pytest.fixture
def no_tools_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH where neither ffmpeg nor espeak-ng can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

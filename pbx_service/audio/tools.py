"""The outside programs and libraries the prompt tools lean on, found lazily.

pydub is imported on first use inside a warnings guard: at import time it warns when ffmpeg is
not on PATH (and Python 3.11+ warns about its ``audioop``), which would be an error in the test
suite and is noise for WAV-only work. We check
for ffmpeg ourselves and fail with an install hint instead.
"""

from __future__ import annotations

import shutil
import warnings
from typing import Any

from pbx_service.audio.errors import AudioToolMissing


def audio_segment() -> Any:
    """The ``pydub.AudioSegment`` class."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # its own import of audioop
        from pydub import AudioSegment
    return AudioSegment


def find_tool(tool: str) -> str | None:
    """The path of `tool` on PATH, or None."""
    return shutil.which(tool)


def require_ffmpeg(why: str) -> None:
    """Raise `AudioToolMissing` unless ffmpeg and ffprobe (pydub runs both) are installed."""
    for tool in ("ffmpeg", "ffprobe"):
        if shutil.which(tool) is None:
            # ffprobe comes in Debian's ffmpeg package, so the hint always names ffmpeg.
            raise AudioToolMissing("ffmpeg", why)


def require_espeak(why: str) -> str:
    """The path of espeak-ng, or raise `AudioToolMissing`."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise AudioToolMissing("espeak-ng", why)
    return path

"""Errors raised by the prompt tools.

The tree (every class carries a stable kebab-case ``error_id``)::

    PbxError                      pbx_service.errors
    └── AudioError                audio-error: root of everything this package raises
        ├── AudioToolMissing      audio-tool-missing: ffmpeg / espeak-ng is not installed
        ├── AudioSourceError      audio-bad-source: a source file or folder missing or unreadable
        ├── PromptNameError       audio-bad-prompt-name: a prompt or language name we cannot use
        └── AudioConversionError  audio-conversion: ffmpeg or espeak-ng failed on a file

``build_prompts`` does not raise these for a single prompt: it records the failure in its report
and goes on with the next prompt, so one bad recording does not block the rest.
"""

from __future__ import annotations

from pbx_service.errors import PbxError


class AudioError(PbxError):
    """Root of every error raised by the prompt tools."""

    error_id = "audio-error"


class AudioToolMissing(AudioError):
    """An external program the operation needs is not installed."""

    error_id = "audio-tool-missing"

    def __init__(self, tool: str, why: str) -> None:
        self.tool = tool
        super().__init__(
            f"{tool} is not installed ({why}): install {tool} (apt-get install {tool})"
        )


class AudioSourceError(AudioError):
    """A source file or folder is missing, unreadable or not audio."""

    error_id = "audio-bad-source"


class PromptNameError(AudioError):
    """A prompt or language name that is not a plain lowercase name (it becomes a file path)."""

    error_id = "audio-bad-prompt-name"


class AudioConversionError(AudioError):
    """ffmpeg or espeak-ng ran but could not produce the audio."""

    error_id = "audio-conversion"

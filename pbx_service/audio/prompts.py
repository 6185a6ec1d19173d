"""The prompt catalogue: which prompts the call flow plays and where their files live.

Asterisk plays a prompt as ``sound:pbx/<name>``; it looks for
``/var/lib/asterisk/sounds/<lang>/pbx/<name>.wav`` in the channel's language. The project ships
``ivr_prompts/<lang>/<name>.wav`` (8 kHz mono 16-bit PCM, what Asterisk plays without
transcoding) and ``ivr_prompts/<lang>/<name>.txt`` with the words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from pbx_service.audio.errors import PromptNameError

# The subfolder of Asterisk's sounds directory our prompts are installed into.
ASTERISK_SOUNDS_SUBDIR: Final = "pbx"
ASTERISK_SOUNDS_DIR: Final = Path("/var/lib/asterisk/sounds")

# Languages the project ships a complete set for.
SHIPPED_LANGS: Final = ("ru", "en")

# Audio a source folder may hold for a prompt, in the order they are looked for.
SOURCE_AUDIO_EXTENSIONS: Final = ("wav", "mp3", "ogg", "flac")

# What Asterisk plays natively; `check_prompts` insists on it.
PROMPT_RATE_HZ: Final = 8000
PROMPT_CHANNELS: Final = 1
PROMPT_SAMPLE_WIDTH: Final = 2

REQUIRED_PROMPTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "greeting": "first words a caller hears: the company greets them",
        "recording-notice": "tells the caller the call may be recorded",
        "please-hold": "asks the caller to stay on the line while we connect them",
        "all-busy": "every agent is busy; asks the caller to keep holding",
        "leave-message": "nobody can answer: name, number and message after the tone, # to finish",
        "voicemail-thanks": "after a voicemail: thanks, we will call back as soon as possible",
        "closed-night": "outside business hours: the office is closed",
        "closed-holiday": "on a public holiday: the office is closed for the holiday",
        "callback-promise": "we will call the caller back",
        "callback-after-opening": "the callback promise: after we open, at <time>",
        "main-menu": "1 customer, 2 job applicant, 3 partner or supplier, 0 operator",
        "invalid": "the caller pressed a key the menu does not offer",
        "timeout": "the caller pressed nothing in time",
        "goodbye": "thanks for calling, goodbye; played before we hang up",
        "press-1-callback": "offer while queued: press 1 to be called back and keep your place",
        "callback-confirmed": "the callback request is registered; we will call back",
        "agent-logged-in": "an agent's feature code: they now receive queue calls",
        "agent-logged-out": "an agent's feature code: they no longer receive queue calls",
        "agent-paused": "an agent's feature code: pause on, no new calls",
        "agent-unpaused": "an agent's feature code: pause off, calls resume",
        "callback-no-tasks": "an agent asked for the next callback and none is waiting",
        "position": "'your position in the queue is', followed by the number said by Asterisk",
        "connecting": "played just before the caller is bridged to an agent",
    }
)

_NAME_RE = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_LANG_RE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z0-9]{2,8})?")


def check_prompt_name(name: str) -> str:
    """Return `name` if it can be a prompt's file name, else raise `PromptNameError`.

    Names become file paths and ARI media URIs, so only lowercase letters, digits, ``-`` and
    ``_`` are allowed (no dots, slashes or spaces).
    """
    if not _NAME_RE.fullmatch(name):
        raise PromptNameError(
            f"bad prompt name {name!r}: use lowercase letters, digits and '-', e.g. 'main-menu'"
        )
    return name


def check_lang(lang: str) -> str:
    """Return `lang` if it is a language folder name Asterisk understands, else raise."""
    if not _LANG_RE.fullmatch(lang):
        raise PromptNameError(
            f"bad language {lang!r}: use an Asterisk language code such as 'ru', 'en' or 'en_GB'"
        )
    return lang


def is_lang_dir_name(name: str) -> bool:
    """True if a folder with this name holds one language's prompts."""
    return _LANG_RE.fullmatch(name) is not None


def prompt_path(prompts_dir: Path, lang: str, name: str) -> Path:
    """The WAV file Asterisk plays for prompt `name` in language `lang`."""
    return Path(prompts_dir) / check_lang(lang) / f"{check_prompt_name(name)}.wav"


def prompt_text_path(prompts_dir: Path, lang: str, name: str) -> Path:
    """The ``.txt`` file holding the words of prompt `name` in language `lang`."""
    return Path(prompts_dir) / check_lang(lang) / f"{check_prompt_name(name)}.txt"


def media_uri(name: str) -> str:
    """The ARI media URI that plays prompt `name` in the channel's language."""
    return f"sound:{ASTERISK_SOUNDS_SUBDIR}/{check_prompt_name(name)}"


def shipped_prompts_dir() -> Path:
    """The ``ivr_prompts/`` folder that ships with this checkout or image."""
    return Path(__file__).resolve().parents[2] / "ivr_prompts"

"""Voice prompts: the catalogue, building them from recordings or texts, checking, encoding.

Asterisk plays prompt ``<name>`` as ``sound:pbx/<name>`` from
``/var/lib/asterisk/sounds/<lang>/pbx/<name>.wav``; the project ships them in ``ivr_prompts/``.
"""

from pbx_service.audio.build import BuildReport, PromptBuildResult, build_prompts
from pbx_service.audio.check import PromptProblem, check_prompts
from pbx_service.audio.convert import to_mp3, to_ogg
from pbx_service.audio.errors import (
    AudioConversionError,
    AudioError,
    AudioSourceError,
    AudioToolMissing,
    PromptNameError,
)
from pbx_service.audio.prompts import (
    REQUIRED_PROMPTS,
    SHIPPED_LANGS,
    media_uri,
    prompt_path,
    prompt_text_path,
    shipped_prompts_dir,
)
from pbx_service.audio.render import render_build_report, render_problems

__all__ = [
    "REQUIRED_PROMPTS",
    "SHIPPED_LANGS",
    "AudioConversionError",
    "AudioError",
    "AudioSourceError",
    "AudioToolMissing",
    "BuildReport",
    "PromptBuildResult",
    "PromptNameError",
    "PromptProblem",
    "build_prompts",
    "check_prompts",
    "media_uri",
    "prompt_path",
    "prompt_text_path",
    "render_build_report",
    "render_problems",
    "shipped_prompts_dir",
    "to_mp3",
    "to_ogg",
]

"""Encode WAV recordings for people rather than Asterisk (voicemail e-mail attachments).

Needs ffmpeg (through pydub). Voice at 8 kHz is small: a minute is about 240 KB in MP3 at
32 kbit/s.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

from pbx_service.audio.errors import AudioConversionError, AudioSourceError
from pbx_service.audio.tools import audio_segment, require_ffmpeg

DEFAULT_BITRATE: Final = "32k"


def to_mp3(wav_path: Path, *, bitrate: str = DEFAULT_BITRATE) -> bytes:
    """The WAV at `wav_path` encoded as MP3 (LAME)."""
    return _encode(Path(wav_path), "mp3", "libmp3lame", bitrate)


def to_ogg(wav_path: Path, *, bitrate: str = DEFAULT_BITRATE) -> bytes:
    """The WAV at `wav_path` encoded as Ogg Vorbis."""
    return _encode(Path(wav_path), "ogg", "libvorbis", bitrate)


def _encode(wav_path: Path, fmt: str, codec: str, bitrate: str) -> bytes:
    require_ffmpeg(f"needed to encode {fmt}")
    segment_class = audio_segment()
    try:
        # Given a path, pydub leaves the WAV open; given a file it reads it natively.
        with wav_path.open("rb") as file:
            segment = segment_class.from_file(file, format="wav")
    except OSError as exc:
        raise AudioSourceError(f"cannot read {wav_path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # pydub raises bare Exception subclasses of many kinds
        raise AudioSourceError(f"{wav_path} is not a readable WAV file: {exc}") from exc
    out = io.BytesIO()
    try:
        handle = segment.export(out, format=fmt, codec=codec, bitrate=bitrate)
    except Exception as exc:  # pydub's CouldntEncodeError derives from bare Exception
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise AudioConversionError(
            f"ffmpeg could not encode {wav_path} as {fmt} ({codec}, {bitrate}): "
            f"{lines[-1] if lines else exc}"
        ) from exc
    if handle is not out:
        handle.close()
    return out.getvalue()

"""Tiny signal and WAV writers for the audio tests (stdlib only)."""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path


def tone(
    seconds: float, rate: int, *, freq: float = 440.0, dbfs: float = -20.0, channels: int = 1
) -> bytes:
    """A sine as little-endian 16-bit PCM, `channels` interleaved copies, RMS at `dbfs`."""
    # A sine's RMS is its amplitude / sqrt(2).
    amplitude = 32768 * 10 ** (dbfs / 20) * math.sqrt(2)
    samples = array.array("h")
    for i in range(int(seconds * rate)):
        value = max(-32768, min(32767, round(amplitude * math.sin(2 * math.pi * freq * i / rate))))
        samples.extend([value] * channels)
    return samples.tobytes()


def silence(seconds: float, rate: int, *, channels: int = 1, width: int = 2) -> bytes:
    """Digital silence (8-bit WAV silence is 128, not 0)."""
    fill = b"\x80" if width == 1 else b"\x00"
    return fill * (int(seconds * rate) * channels * width)


def write_wav(
    path: Path, frames: bytes, *, rate: int = 8000, channels: int = 1, width: int = 2
) -> Path:
    """Write a PCM WAV and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def read_wav(path: Path) -> tuple[wave._wave_params, bytes]:
    """The parameters and frames of a PCM WAV."""
    with wave.open(str(path), "rb") as wav:
        return wav.getparams(), wav.readframes(wav.getnframes())

"""to_mp3 / to_ogg with the real ffmpeg (needed: fails, not skips, without it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pbx_service.audio import AudioSourceError, AudioToolMissing, to_mp3, to_ogg
from tests.unit.audio.wavfiles import tone, write_wav


def _probe(ffmpeg: str, data: bytes, tmp_path: Path, ext: str) -> tuple[str, float]:
    """The codec name and duration ffprobe finds in `data`."""
    path = tmp_path / f"probe.{ext}"
    path.write_bytes(data)
    ffprobe = str(Path(ffmpeg).with_name("ffprobe"))
    out = subprocess.run(
        [ffprobe, "-v", "error", "-select_streams", "a:0",
         "-show_entries", "stream=codec_name:format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split()  # fmt: skip
    return out[0].strip(","), float(out[1])


def test_to_mp3(tmp_path: Path, ffmpeg: str) -> None:
    wav = write_wav(tmp_path / "voicemail.wav", tone(3.0, 8000))

    data = to_mp3(wav)

    assert data[:3] == b"ID3" or data[:2] in (b"\xff\xf3", b"\xff\xe3", b"\xff\xfb")
    codec, duration = _probe(ffmpeg, data, tmp_path, "mp3")
    assert codec == "mp3"
    # MP3 frames at 8 kHz are 72 ms; the encoder pads the start and the end.
    assert duration == pytest.approx(3.0, abs=0.25)
    assert len(data) < wav.stat().st_size / 3


def test_to_ogg(tmp_path: Path, ffmpeg: str) -> None:
    wav = write_wav(tmp_path / "voicemail.wav", tone(3.0, 8000))

    data = to_ogg(wav)

    assert data[:4] == b"OggS"
    codec, duration = _probe(ffmpeg, data, tmp_path, "ogg")
    assert codec == "vorbis"
    assert duration == pytest.approx(3.0, abs=0.15)


def test_missing_wav(tmp_path: Path, ffmpeg: str) -> None:
    with pytest.raises(AudioSourceError, match=r"cannot read .*nothing\.wav"):
        to_mp3(tmp_path / "nothing.wav")


def test_not_a_wav(tmp_path: Path, ffmpeg: str) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"hello")
    with pytest.raises(AudioSourceError, match="not a readable WAV"):
        to_ogg(path)


def test_without_ffmpeg_says_how_to_install(tmp_path: Path, no_tools_on_path: None) -> None:
    wav = write_wav(tmp_path / "voicemail.wav", tone(1.0, 8000))

    with pytest.raises(AudioToolMissing, match=r"install ffmpeg \(apt-get install ffmpeg\)"):
        to_mp3(wav)

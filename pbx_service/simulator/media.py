"""Media: sound lookup and durations, playbacks, live and stored recordings, WAV files.

Sounds resolve like Asterisk's file lookup: `sound:NAME` -> `<dir>/<lang>/NAME.wav`, falling
back to `en`; `sound_dirs` maps a name prefix (`""` for core sounds, `"pbx"` for
`sound:pbx/NAME`) to a directory. A small built-in table of core sounds with their real
durations makes `sound:beep`, `digits:`, `number:` work without files.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import pathlib
import struct
import wave
from collections.abc import Sequence
from typing import Any

# Durations (seconds) of Asterisk core sounds, measured from the recorded traces or the
# shipped files. Every entry exists in `en` and `ru` unless listed in _ONLY_IN.
CORE_SOUNDS: dict[str, float] = {
    "beep": 0.42,
    "hello-world": 1.40,
    "demo-congrats": 30.29,
    "demo-thanks": 4.50,  # > 3.65 s (still playing in trace 03)
    "vm-intro": 5.65,
    "vm-goodbye": 0.85,
    "vm-theperson": 1.15,
    "vm-isunavail": 1.70,
    "vm-nobodyavail": 2.40,
    "vm-review": 4.80,
    "vm-msgsaved": 1.35,
    "vm-received": 0.80,
    "vm-message": 0.60,
    "vm-youhave": 0.85,
    "queue-periodic-announce": 7.84,
    "queue-thankyou": 1.90,
    "queue-callswaiting": 1.30,
    "queue-holdtime": 1.60,
    "queue-minutes": 0.75,
    "pls-hold-while-try": 2.20,
    "ss-noservice": 4.94,
    "tt-weasels": 3.10,
    "tt-allbusy": 2.50,
    "agent-loginok": 0.95,
    "conf-now-unmuted": 1.10,
    "minute": 0.68,
    "minutes": 0.75,
    "phone": 0.64,
    "silence/1": 1.0,
    "silence/2": 2.0,
    "silence/3": 3.0,
    "silence/5": 5.0,
    "silence/10": 10.0,
    "auth-thankyou": 1.00,
    "goodbye": 0.70,
    "please-try-again": 1.20,
    "transfer": 0.60,
    "pbx-invalid": 1.60,
    "invalid": 1.00,
    "digits/hundred": 0.60,
    "digits/thousand": 0.70,
    "digits/million": 0.65,
    "digits/star": 0.55,
    "digits/pound": 0.55,
    "digits/minus": 0.55,
}
for _digit in range(20):
    CORE_SOUNDS[f"digits/{_digit}"] = 0.83
for _tens in range(20, 100, 10):
    CORE_SOUNDS[f"digits/{_tens}"] = 0.86
for _letter in "abcdefghijklmnopqrstuvwxyz":
    CORE_SOUNDS[f"letters/{_letter}"] = 0.55
# Date and time words of the core sound packages (say.c uses them for dates and times).
for _day in range(7):
    CORE_SOUNDS[f"digits/day-{_day}"] = 0.75
for _month in range(12):
    CORE_SOUNDS[f"digits/mon-{_month}"] = 0.70
for _ordinal in range(1, 32):
    CORE_SOUNDS[f"digits/h-{_ordinal}"] = 0.80
CORE_SOUNDS.update(
    {
        "digits/today": 0.60,
        "digits/tomorrow": 0.70,
        "digits/yesterday": 0.75,
        "digits/oclock": 0.60,
        "digits/oh": 0.40,
        "digits/a-m": 0.65,
        "digits/p-m": 0.65,
        "digits/at": 0.35,
        "digits/and": 0.35,
        "digits/billion": 0.65,
        "hours": 0.55,
        "hour": 0.50,
        "seconds": 0.70,
        "second": 0.60,
        "at": 0.35,
        "vm-and": 0.35,
        "vm-minutes": 0.70,
        "vm-seconds": 0.75,
        "vm-then-pound": 2.30,
        "vm-rec-name": 2.60,
        "beeperr": 0.50,
    }
)
_ONLY_IN: dict[str, tuple[str, ...]] = {"minute": ("en",), "phone": ("ru",)}
CORE_LANGUAGES = ("ru", "en")  # the order GET /sounds/{id} lists them in

SUPPORTED_SCHEMES = ("sound", "recording", "number", "digits", "characters", "tone")
RECORDING_FORMATS: dict[str, str] = {
    "wav": "wav",
    "wav16": "wav16",
    "sln": "sln",
    "slin": "sln",
    "ulaw": "ulaw",
    "alaw": "alaw",
    "gsm": "gsm",
}
CONTENT_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "wav16": "audio/wav",
    "sln": "audio/sln",
    "ulaw": "audio/basic",
    "alaw": "audio/alaw",
    "gsm": "audio/gsm",
}


class SoundLibrary:
    """Resolves media URIs to durations (seconds of simulated time)."""

    def __init__(self, sound_dirs: list[tuple[str, pathlib.Path]], recordings_dir: pathlib.Path):
        self.sound_dirs = sound_dirs
        self.recordings_dir = recordings_dir
        self._cache: dict[pathlib.Path, float] = {}

    def _file_duration(self, path: pathlib.Path) -> float | None:
        if path in self._cache:
            return self._cache[path]
        try:
            with wave.open(str(path), "rb") as wav:
                duration = wav.getnframes() / float(wav.getframerate())
        except (OSError, wave.Error, EOFError):
            return None
        self._cache[path] = duration
        return duration

    def sound_languages(self, name: str) -> list[tuple[str, str]]:
        """(language, format) pairs available for a sound id, like `GET /sounds/{id}`."""
        found: list[tuple[str, str]] = []
        for prefix, directory in self.sound_dirs:
            rel = _strip_prefix(name, prefix)
            if rel is None or not directory.is_dir():
                continue
            for lang_dir in sorted(directory.iterdir(), reverse=True):
                if (lang_dir / f"{rel}.wav").is_file():
                    found.append((lang_dir.name, "slin"))
        if name in CORE_SOUNDS:
            for lang in _ONLY_IN.get(name, CORE_LANGUAGES):
                if (lang, "slin") not in found:
                    found.append((lang, "slin"))
        return found

    def all_sounds(self, lang: str | None) -> list[dict[str, Any]]:
        names: set[str] = set(CORE_SOUNDS)
        for prefix, directory in self.sound_dirs:
            if not directory.is_dir():
                continue
            for path in directory.glob("*/**/*.wav"):
                rel = path.relative_to(directory)
                stem = str(rel.with_suffix("")).split("/", 1)[1]
                names.add(f"{prefix}/{stem}" if prefix else stem)
        result = []
        for name in sorted(names):
            formats = [
                {"language": lg, "format": fmt}
                for lg, fmt in self.sound_languages(name)
                if lang is None or lg == lang
            ]
            if formats:
                result.append({"id": name, "formats": formats})
        return result

    def sound_duration(self, name: str, language: str) -> float | None:
        """Duration of `sound:NAME` in `language` with Asterisk's fallback to `en`."""
        languages = [language] if language == "en" else [language, "en"]
        for lang in languages:
            for prefix, directory in self.sound_dirs:
                rel = _strip_prefix(name, prefix)
                if rel is None:
                    continue
                duration = self._file_duration(directory / lang / f"{rel}.wav")
                if duration is not None:
                    return duration
            if name in CORE_SOUNDS and lang in _ONLY_IN.get(name, CORE_LANGUAGES):
                return CORE_SOUNDS[name]
        return None

    def media_duration(self, uri: str, language: str) -> float | None:
        """Seconds a media URI plays; None when the file is missing (playback fails).

        `math.inf` for tones, which play until stopped.
        """
        scheme, _, rest = uri.partition(":")
        if scheme == "sound":
            return self.sound_duration(rest, language)
        if scheme == "digits":
            return self._sequence([_digit_sound(ch) for ch in rest], language)
        if scheme == "characters":
            return self._sequence([_char_sound(ch) for ch in rest.lower()], language)
        if scheme == "number":
            try:
                value = int(rest)
            except ValueError:
                return None
            return self._sequence(_number_sounds(value), language)
        if scheme == "recording":
            stored = find_stored(self.recordings_dir, rest)
            if stored is None:
                return None
            return self._file_duration(stored) if stored.suffix == ".wav" else 1.0
        if scheme == "tone":
            return math.inf
        return None

    def _sequence(self, sounds: Sequence[str | None], language: str) -> float | None:
        total = 0.0
        for sound in sounds:
            if sound is None:
                continue
            duration = self.sound_duration(sound, language)
            if duration is None:
                return None
            total += duration
        return total


def _strip_prefix(name: str, prefix: str) -> str | None:
    if not prefix:
        return name
    if name.startswith(prefix + "/"):
        return name[len(prefix) + 1 :]
    return None


def _digit_sound(ch: str) -> str | None:
    if ch.isdigit():
        return f"digits/{ch}"
    return {"*": "digits/star", "#": "digits/pound", "-": "digits/minus"}.get(ch)


def _char_sound(ch: str) -> str | None:
    if ch.isalpha():
        return f"letters/{ch}"
    return _digit_sound(ch)


def _number_sounds(value: int) -> list[str]:
    if value < 0:
        return ["digits/minus", *_number_sounds(-value)]
    if value < 20:
        return [f"digits/{value}"]
    if value < 100:
        tens, ones = divmod(value, 10)
        return [f"digits/{tens * 10}"] + ([f"digits/{ones}"] if ones else [])
    for size, word in ((1_000_000, "digits/million"), (1000, "digits/thousand")):
        if value >= size:
            high, low = divmod(value, size)
            return [*_number_sounds(high), word] + (_number_sounds(low) if low else [])
    hundreds, low = divmod(value, 100)
    return [f"digits/{hundreds}", "digits/hundred"] + (_number_sounds(low) if low else [])


# -- playbacks ---------------------------------------------------------------------------


class PlaybackStopped(Exception):
    """DELETE /playbacks/{id}."""


@dataclasses.dataclass
class Playback:
    """One `play` request: a list of media played in order."""

    id: str
    media: list[str]
    target_uri: str
    language: str
    state: str = "queued"
    index: int = 0
    skipms: int = 3000
    paused: bool = False
    stopped: bool = False
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    pending_jump: float = 0.0
    restart: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "media_uri": self.media[self.index]}
        if self.index + 1 < len(self.media):
            body["next_media_uri"] = self.media[self.index + 1]
        body.update({"target_uri": self.target_uri, "language": self.language, "state": self.state})
        return body

    def poke(self) -> None:
        self.changed.set()

    async def play_for(self, duration: float, time_scale: float) -> None:
        """Sleep through one media item honouring pause, skips, restart and stop."""
        loop = asyncio.get_running_loop()
        position = 0.0
        while True:
            if self.stopped:
                raise PlaybackStopped(self.id)
            if self.restart:
                self.restart = False
                position = 0.0
            if self.pending_jump:
                position = max(0.0, position + self.pending_jump)
                self.pending_jump = 0.0
            remaining = duration - position
            if remaining <= 0:
                return
            self.changed.clear()
            if self.paused:
                await self.changed.wait()
                continue
            started = loop.time()
            wait = None if math.isinf(remaining) else remaining * time_scale
            try:
                await asyncio.wait_for(self.changed.wait(), wait)
            except TimeoutError:
                return
            position += (loop.time() - started) / time_scale if time_scale else remaining


# -- recordings --------------------------------------------------------------------------


@dataclasses.dataclass
class LiveRecording:
    """One live recording (`/recordings/live/{name}`)."""

    name: str
    format: str
    target_uri: str
    max_duration: float = 0.0
    max_silence: float = 0.0
    terminate_on: str = "none"
    if_exists: str = "fail"
    beep: bool = False
    state: str = "queued"
    cause: str | None = None
    muted: bool = False
    paused: bool = False
    started_at: float = 0.0
    paused_total: float = 0.0
    paused_since: float | None = None
    finish: asyncio.Future[str] | None = None  # resolved with "done" or "cancel"
    # (kind, seconds) of simulated audio captured so far; kind is TALK, SILENCE or NO_MEDIA
    segments: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    duration: float = 0.0
    talking_duration: float = 0.0
    silence_duration: float = 0.0
    report_silence: bool = False
    write_failed: bool = False
    fail_at_once: bool = False
    audio_now: str = "none"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "state": self.state,
            "target_uri": self.target_uri,
        }
        if self.cause is not None:
            body["cause"] = self.cause
        return body

    def finished_json(self) -> dict[str, Any]:
        body = self.to_json()
        body["duration"] = int(self.duration)
        if self.report_silence:
            body["talking_duration"] = int(self.talking_duration)
            body["silence_duration"] = int(self.silence_duration)
        return body


def recording_path(recordings_dir: pathlib.Path, name: str, fmt: str) -> pathlib.Path:
    return recordings_dir / f"{name}.{fmt}"


def inside(base: pathlib.Path, path: pathlib.Path) -> bool:
    try:
        path.resolve().relative_to(base.resolve())
    except (ValueError, OSError):
        return False
    return True


def _is_file(path: pathlib.Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # e.g. a name longer than the file system allows
        return False


def find_stored(recordings_dir: pathlib.Path, name: str) -> pathlib.Path | None:
    """The stored file of a recording name (the newest format wins, like Asterisk)."""
    candidates = [
        path
        for fmt in RECORDING_FORMATS.values()
        if _is_file(path := recording_path(recordings_dir, name, fmt))
        and inside(recordings_dir, path)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda path: path.stat().st_mtime_ns)


def list_stored(recordings_dir: pathlib.Path) -> list[dict[str, str]]:
    result: list[dict[str, str]] = []
    if not recordings_dir.is_dir():
        return result
    known = set(RECORDING_FORMATS.values())
    for path in sorted(recordings_dir.rglob("*")):
        fmt = path.suffix.lstrip(".")
        if path.is_file() and fmt in known:
            name = str(path.relative_to(recordings_dir).with_suffix(""))
            result.append({"name": name, "format": fmt})
    return result


TALK = "talk"
SILENCE = "silence"
NO_MEDIA = "none"


def render_audio(segments: list[tuple[str, float]], rate: int) -> bytes:
    """16-bit mono PCM: a quiet 440 Hz tone where someone talks, zeros for silence frames,
    nothing at all while no media frames arrive (Asterisk writes nothing then)."""
    frames = bytearray()
    for kind, seconds in segments:
        count = round(seconds * rate)
        if kind == NO_MEDIA:
            continue
        if kind == SILENCE:
            frames += bytes(2 * count)
            continue
        step = 2 * math.pi * 440 / rate
        frames += b"".join(struct.pack("<h", int(3000 * math.sin(step * i))) for i in range(count))
    return bytes(frames)


def write_recording(
    path: pathlib.Path, fmt: str, segments: list[tuple[str, float]], append: bool
) -> None:
    """Write (or append to) a recording file in one of Asterisk's formats."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 16000 if fmt == "wav16" else 8000
    pcm = render_audio(segments, rate)
    if fmt in ("wav", "wav16"):
        previous = b""
        if append and path.is_file():
            with (
                contextlib.suppress(wave.Error, EOFError, OSError),
                wave.open(str(path), "rb") as old,
            ):
                previous = old.readframes(old.getnframes())
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(previous + pcm)
        return
    samples = len(pcm) // 2
    if fmt == "sln":
        data = pcm
    elif fmt in ("ulaw", "alaw"):
        data = (b"\xff" if fmt == "ulaw" else b"\xd5") * samples
    else:  # gsm: 33-byte frames per 20 ms; silent frames, the content is not meaningful
        data = bytes(33 * (samples // 160))
    with path.open("ab" if append else "wb") as handle:
        handle.write(data)


def wav_duration(path: pathlib.Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / float(wav.getframerate())

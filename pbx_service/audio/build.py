"""Build the prompts Asterisk plays from recordings and texts.

A source folder holds ``<lang>/<name>.<wav|mp3|ogg|flac>`` recordings and
``<lang>/<name>.txt`` texts. Each prompt becomes ``<out>/<lang>/<name>.wav``: 8 kHz mono 16-bit
PCM, leading and trailing silence trimmed to 100 ms, loudness normalised. A recording wins over
a text; a prompt with only a text is spoken by espeak-ng.

The source and output folders may be the same (the project's ``ivr_prompts/`` is built in
place). ``<out>/build-manifest.json`` records, per prompt, which source made which output (by
SHA-256), so that a rebuild skips prompts whose source did not change and an in-place
``<name>.wav`` we generated from ``<name>.txt`` is not mistaken for a new recording.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tempfile
import wave
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from pbx_service.audio import pcm
from pbx_service.audio.errors import (
    AudioConversionError,
    AudioError,
    AudioSourceError,
    AudioToolMissing,
    PromptNameError,
)
from pbx_service.audio.prompts import (
    PROMPT_RATE_HZ,
    SOURCE_AUDIO_EXTENSIONS,
    check_lang,
    check_prompt_name,
    is_lang_dir_name,
)
from pbx_service.audio.tools import audio_segment, require_espeak, require_ffmpeg

BuildAction = Literal["converted", "generated", "unchanged", "failed"]

MANIFEST_NAME: Final = "build-manifest.json"
SLN16_RATE_HZ: Final = 16000
# Bump when the signal chain changes, so every prompt is rebuilt once.
PIPELINE_VERSION: Final = 2
# espeak-ng's default 175 words a minute is hurried over a phone line.
ESPEAK_SPEED_WPM: Final = 150
_ESPEAK_TIMEOUT_S: Final = 60.0
_TEXT_EXTENSION: Final = "txt"


@dataclass(frozen=True, slots=True)
class PromptBuildResult:
    """What the build did for one prompt."""

    lang: str
    name: str
    action: BuildAction
    source: Path | None
    """The recording or text the prompt was made from (None if none could be chosen)."""
    output: Path | None
    """The WAV written or kept (None when the prompt failed)."""
    duration_s: float | None
    detail: str
    """Why: what the source was, the gain applied, or what went wrong and how to fix it."""


@dataclass(frozen=True, slots=True)
class BuildReport:
    """Every prompt the build looked at, in language then name order."""

    source_dir: Path
    out_dir: Path
    results: tuple[PromptBuildResult, ...] = field(default=())

    @property
    def failed(self) -> tuple[PromptBuildResult, ...]:
        """The prompts that could not be built."""
        return tuple(r for r in self.results if r.action == "failed")

    @property
    def ok(self) -> bool:
        """True when no prompt failed."""
        return not self.failed

    def counts(self) -> dict[str, int]:
        """How many prompts ended with each action."""
        counts = {"converted": 0, "generated": 0, "unchanged": 0, "failed": 0}
        for result in self.results:
            counts[result.action] += 1
        return counts


def build_prompts(
    source_dir: Path,
    out_dir: Path,
    *,
    langs: Sequence[str] | None = None,
    target_dbfs: float = -20.0,
    espeak: bool = True,
    sln16: bool = False,
) -> BuildReport:
    """Build ``<out_dir>/<lang>/<name>.wav`` for every prompt found in `source_dir`.

    `langs` limits the build to those language folders (default: every folder named like a
    language code). `target_dbfs` is the RMS loudness to normalise to. With `espeak` off, a
    prompt that has only a text fails instead of being spoken by espeak-ng. With `sln16`, a raw
    16 kHz signed-linear ``<name>.sln16`` is written next to each WAV, for wideband phones.

    A prompt that cannot be built is reported as ``failed`` with the reason; the others are
    still built. Raises `AudioSourceError` if `source_dir` or a requested language folder does
    not exist.
    """
    source_dir = Path(source_dir)
    out_dir = Path(out_dir)
    if not source_dir.is_dir():
        raise AudioSourceError(
            f"prompt source folder {source_dir} does not exist: "
            "create it with one subfolder per language (ru/, en/) holding recordings or .txt texts"
        )
    if not -60.0 <= target_dbfs <= -3.0:
        raise AudioError(f"target_dbfs must be between -60 and -3 dBFS, got {target_dbfs}")
    lang_list = _languages(source_dir, langs)
    manifest = _Manifest.load(out_dir)
    in_place = source_dir.resolve() == out_dir.resolve()
    builder = _Builder(
        source_dir=source_dir,
        # One spelling of the folder, so a source and the output compare equal as paths.
        out_dir=source_dir if in_place else out_dir,
        target_dbfs=target_dbfs,
        espeak=espeak,
        sln16=sln16,
        manifest=manifest,
        in_place=in_place,
    )
    results: list[PromptBuildResult] = []
    for lang in lang_list:
        results.extend(builder.build_language(lang))
    if any(r.action in ("converted", "generated") for r in results) or manifest.changed:
        manifest.save(out_dir)
    return BuildReport(source_dir=source_dir, out_dir=out_dir, results=tuple(results))


def _languages(source_dir: Path, langs: Sequence[str] | None) -> list[str]:
    if langs is None:
        return sorted(
            p.name for p in source_dir.iterdir() if p.is_dir() and is_lang_dir_name(p.name)
        )
    for lang in langs:
        check_lang(lang)
        if not (source_dir / lang).is_dir():
            raise AudioSourceError(
                f"no prompts for language {lang!r}: folder {source_dir / lang} does not exist"
            )
    return list(langs)


@dataclass(slots=True)
class _Produced:
    wav: bytes
    sln16: bytes | None
    duration_s: float
    detail: str


@dataclass(slots=True)
class _Manifest:
    """Per prompt (``"<lang>/<name>"``): source, its SHA-256, settings and the output's SHA-256."""

    entries: dict[str, dict[str, Any]]
    changed: bool = False

    @classmethod
    def load(cls, out_dir: Path) -> _Manifest:
        path = out_dir / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            prompts = data["prompts"]
            if not isinstance(prompts, dict):
                raise TypeError("'prompts' is not an object")
        except FileNotFoundError:
            return cls(entries={})
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged manifest only costs a full rebuild; it is rewritten afterwards.
            return cls(entries={}, changed=True)
        return cls(entries={k: v for k, v in prompts.items() if isinstance(v, dict)})

    def save(self, out_dir: Path) -> None:
        data = {
            "about": "written by `pbx-service prompts build`: which source made each prompt",
            "prompts": dict(sorted(self.entries.items())),
        }
        text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        _write_atomically(out_dir / MANIFEST_NAME, text.encode("utf-8"))


@dataclass(slots=True)
class _Builder:
    source_dir: Path
    out_dir: Path
    target_dbfs: float
    espeak: bool
    sln16: bool
    manifest: _Manifest
    in_place: bool

    def build_language(self, lang: str) -> list[PromptBuildResult]:
        folder = self.source_dir / lang
        stems: dict[str, list[Path]] = {}
        for path in sorted(folder.iterdir()):
            ext = path.suffix[1:].lower()
            if (
                path.is_file()
                and not path.name.startswith(".")
                and (ext in SOURCE_AUDIO_EXTENSIONS or ext == _TEXT_EXTENSION)
            ):
                stems.setdefault(path.stem, []).append(path)
        results = []
        for stem, files in sorted(stems.items()):
            try:
                check_prompt_name(stem)
            except PromptNameError as exc:
                results.append(_failed(lang, stem, files[0], f"{exc}; rename {files[0].name}"))
                continue
            results.append(self.build_prompt(lang, stem, files))
        return results

    def build_prompt(self, lang: str, name: str, files: list[Path]) -> PromptBuildResult:
        key = f"{lang}/{name}"
        out_wav = self.out_dir / lang / f"{name}.wav"
        entry = self.manifest.entries.get(key)
        recordings = [p for p in files if p.suffix[1:].lower() in SOURCE_AUDIO_EXTENSIONS]
        texts = [p for p in files if p.suffix[1:].lower() == _TEXT_EXTENSION]
        source = files[0]
        try:
            if self.in_place and entry is not None and out_wav in recordings:
                built_from = entry.get("source")
                if built_from != self._rel(out_wav) and _sha256(out_wav) == entry.get(
                    "output_sha256"
                ):
                    # Our own output from another source (the text, an mp3), not a recording.
                    recordings.remove(out_wav)
                    if not recordings and not texts:
                        return PromptBuildResult(
                            lang, name, "unchanged", out_wav, out_wav, _wav_duration(out_wav),
                            f"built from {built_from}, which is gone; keeping {out_wav.name}",
                        )  # fmt: skip
            if len(recordings) > 1:
                names = ", ".join(p.name for p in recordings)
                return _failed(lang, name, recordings[0], f"several recordings ({names}): keep one")
            if recordings:
                source, kind = recordings[0], "recording"
            else:
                source, kind = texts[0], "text"
            settings = self._settings(lang, kind)
            source_sha = _sha256(source)
            if self._unchanged(entry, source, source_sha, settings, out_wav):
                return PromptBuildResult(
                    lang, name, "unchanged", source, out_wav, _wav_duration(out_wav),
                    f"{source.name} did not change since the last build",
                )  # fmt: skip
            if kind == "recording":
                produced = self._convert(source)
                action: BuildAction = "converted"
            else:
                produced = self._generate(source, lang)
                action = "generated"
        except (AudioError, OSError) as exc:
            return _failed(lang, name, source, str(exc))
        wav_sha = hashlib.sha256(produced.wav).hexdigest()
        # Rewrite only on a real change: keeps timestamps (and rsync to Asterisk) quiet.
        if not (out_wav.is_file() and _sha256(out_wav) == wav_sha):
            _write_atomically(out_wav, produced.wav)
        new_entry: dict[str, Any] = {
            "source": self._rel(source),
            # Converted in place, the source is now the output itself.
            "source_sha256": wav_sha if source == out_wav else source_sha,
            "output_sha256": wav_sha,
            "settings": settings,
        }
        if produced.sln16 is not None:
            out_sln = out_wav.with_suffix(".sln16")
            _write_atomically(out_sln, produced.sln16)
            new_entry["sln16_sha256"] = hashlib.sha256(produced.sln16).hexdigest()
        self.manifest.entries[key] = new_entry
        self.manifest.changed = True
        return PromptBuildResult(
            lang, name, action, source, out_wav, produced.duration_s, produced.detail
        )

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.source_dir).as_posix()

    def _settings(self, lang: str, kind: str) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "pipeline": PIPELINE_VERSION,
            "target_dbfs": self.target_dbfs,
            "sln16": self.sln16,
        }
        if kind == "text":
            settings["espeak_voice"] = _espeak_voice(lang)
            settings["espeak_speed"] = ESPEAK_SPEED_WPM
        return settings

    def _unchanged(
        self,
        entry: Mapping[str, Any] | None,
        source: Path,
        source_sha: str,
        settings: Mapping[str, Any],
        out_wav: Path,
    ) -> bool:
        if entry is None or not out_wav.is_file():
            return False
        if (
            entry.get("source") != self._rel(source)
            or entry.get("source_sha256") != source_sha
            or entry.get("settings") != settings
            or _sha256(out_wav) != entry.get("output_sha256")
        ):
            return False
        if self.sln16:
            out_sln = out_wav.with_suffix(".sln16")
            return out_sln.is_file() and _sha256(out_sln) == entry.get("sln16_sha256")
        return True

    def _convert(self, source: Path) -> _Produced:
        audio, rate, described = _load_mono16(source)
        return self._finish(audio, rate, f"from {source.name} ({described})")

    def _generate(self, text_file: Path, lang: str) -> _Produced:
        text = " ".join(text_file.read_text(encoding="utf-8").split())
        if not text:
            raise AudioSourceError(f"{text_file} is empty: write the prompt's words in it")
        if not self.espeak:
            raise AudioSourceError(
                f"{text_file.name} has no recording and espeak generation is off: "
                f"drop a {text_file.stem}.wav/.mp3/.ogg next to it, or build with espeak"
            )
        espeak = require_espeak(f"needed to speak {text_file.name}")
        voice = _espeak_voice(lang)
        with tempfile.TemporaryDirectory(prefix="pbx-prompt-") as tmp:
            spoken = Path(tmp) / "espeak.wav"
            try:
                done = subprocess.run(
                    [
                        espeak,
                        "-v",
                        voice,
                        "-s",
                        str(ESPEAK_SPEED_WPM),
                        "-w",
                        str(spoken),
                        "--",
                        text,
                    ],
                    capture_output=True,
                    timeout=_ESPEAK_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise AudioConversionError(
                    f"espeak-ng took over {_ESPEAK_TIMEOUT_S:.0f} s on {text_file}"
                ) from exc
            stderr = done.stderr.decode("utf-8", "replace").strip()
            if done.returncode != 0 or not spoken.is_file():
                raise AudioConversionError(
                    f"espeak-ng failed on {text_file} with voice {voice!r} "
                    f"(exit {done.returncode}): {stderr or 'no audio written'}; "
                    "`espeak-ng --voices` lists the voices installed"
                )
            audio, rate, _ = _load_mono16(spoken)
        return self._finish(
            audio, rate, f"spoken by espeak-ng (voice {voice}) from {text_file.name}"
        )

    def _finish(self, audio: bytes, rate: int, detail: str) -> _Produced:
        trimmed = pcm.trim_silence(audio, rate)
        if not trimmed:
            raise AudioSourceError(f"the audio is silent ({detail}): record it again")
        wav_pcm, gain, limited = pcm.normalise(
            pcm.fade_edges(pcm.resample(trimmed, rate, PROMPT_RATE_HZ), PROMPT_RATE_HZ),
            self.target_dbfs,
        )
        sln = None
        if self.sln16:
            sln, _, _ = pcm.normalise(
                pcm.fade_edges(pcm.resample(trimmed, rate, SLN16_RATE_HZ), SLN16_RATE_HZ),
                self.target_dbfs,
            )
        level = f"{pcm.rms_dbfs(wav_pcm):.1f} dBFS (gain {gain:+.1f} dB"
        if limited:
            level += f", held back to keep peaks under {pcm.PEAK_CEILING_DBFS:.0f} dBFS"
        level += ")"
        return _Produced(
            wav=_wav_bytes(wav_pcm, PROMPT_RATE_HZ),
            sln16=sln,
            duration_s=pcm.duration_s(wav_pcm, PROMPT_RATE_HZ),
            detail=f"{detail}; {level}",
        )


def _espeak_voice(lang: str) -> str:
    # Asterisk writes en_GB, espeak-ng calls the voice en-gb.
    return lang.replace("_", "-").lower()


def _load_mono16(path: Path) -> tuple[bytes, int, str]:
    """Decode `path` with pydub into mono 16-bit PCM at its own rate."""
    ext = path.suffix[1:].lower()
    segment_class = audio_segment()
    try:
        if ext == "wav":
            # Given a path, pydub leaves the WAV file open; given a file it reads it natively.
            with path.open("rb") as file:
                segment = segment_class.from_file(file, format="wav")
        else:
            require_ffmpeg(f"needed to read .{ext} files such as {path.name}")
            segment = segment_class.from_file(str(path), format=ext)
    except AudioToolMissing:
        raise
    except FileNotFoundError as exc:
        if exc.filename is not None and Path(str(exc.filename)) == path:
            raise AudioSourceError(f"{path} disappeared while building") from exc
        # pydub hands WAVs it cannot parse (float, odd headers) to ffmpeg.
        raise AudioToolMissing("ffmpeg", f"needed to read {path.name}") from exc
    except Exception as exc:  # pydub raises bare Exception subclasses of many kinds
        raise AudioSourceError(
            f"cannot decode {path}: {_first_line(str(exc))}; is it a {ext} audio file?"
        ) from exc
    described = (
        f"{segment.frame_rate} Hz, {_channels(segment.channels)}, {8 * segment.sample_width}-bit"
    )
    mono = segment.set_channels(1).set_sample_width(pcm.SAMPLE_WIDTH)
    return bytes(mono.raw_data), int(mono.frame_rate), described


def _channels(count: int) -> str:
    return {1: "mono", 2: "stereo"}.get(count, f"{count} channels")


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _wav_bytes(data: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(pcm.SAMPLE_WIDTH)
        out.setframerate(rate)
        out.writeframes(data)
    return buffer.getvalue()


def _wav_duration(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.getnframes() / wav.getframerate()
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    # Asterisk may be playing the old file: it must never see half a new one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _failed(lang: str, name: str, source: Path | None, why: str) -> PromptBuildResult:
    return PromptBuildResult(lang, name, "failed", source, None, None, why)

"""build_prompts on real files with the real ffmpeg and espeak-ng.

Needs ffmpeg (mp3/ogg/flac tests, `encode` fixture) and espeak-ng (text tests); they fail, not
skip, when those are missing.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pbx_service.audio import (
    AudioSourceError,
    BuildReport,
    PromptBuildResult,
    build_prompts,
    check_prompts,
    pcm,
    render_build_report,
)
from pbx_service.audio.build import MANIFEST_NAME
from tests.unit.audio.wavfiles import read_wav, silence, tone, write_wav

from .conftest import Encode

TARGET = -20.0


def _one(report: BuildReport) -> PromptBuildResult:
    assert len(report.results) == 1, report.results
    return report.results[0]


def _assert_prompt_format(path: Path) -> bytes:
    params, frames = read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    return frames


def _padded_tone(rate: int, *, channels: int = 1, dbfs: float = -30.0) -> bytes:
    """1 s silence + 1 s tone + 1 s silence."""
    quiet = silence(1.0, rate, channels=channels)
    return quiet + tone(1.0, rate, channels=channels, dbfs=dbfs) + quiet


def test_wav_44k_stereo_becomes_8k_mono_trimmed_and_normalised(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "greeting.wav", _padded_tone(44100, channels=2), rate=44100, channels=2)

    result = _one(build_prompts(src, out))

    assert result.action == "converted", result.detail
    assert result.source == src / "ru" / "greeting.wav"
    assert result.output == out / "ru" / "greeting.wav"
    assert "44100 Hz, stereo, 16-bit" in result.detail
    frames = _assert_prompt_format(out / "ru" / "greeting.wav")
    # 1 s of tone plus 100 ms kept at each end; the 10 ms trim grid may move each end.
    assert pcm.duration_s(frames, 8000) == pytest.approx(1.2, abs=0.025)
    assert result.duration_s == pytest.approx(pcm.duration_s(frames, 8000))
    assert pcm.rms_dbfs(frames[1600:-1600]) == pytest.approx(TARGET, abs=1.0)
    assert check_prompts(out, ["ru"], ["greeting"]) == []


@pytest.mark.parametrize("ext", ["mp3", "ogg", "flac"])
def test_encoded_sources_are_converted(tmp_path: Path, encode: Encode, ext: str) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    wav = write_wav(tmp_path / "raw.wav", _padded_tone(44100, channels=2), rate=44100, channels=2)
    encode(wav, src / "en" / f"goodbye.{ext}")

    result = _one(build_prompts(src, out))

    assert result.action == "converted", result.detail
    assert result.source == src / "en" / f"goodbye.{ext}"
    assert "44100 Hz, stereo" in result.detail
    frames = _assert_prompt_format(out / "en" / "goodbye.wav")
    # Lossy codecs smear the tone's edges a little.
    assert pcm.duration_s(frames, 8000) == pytest.approx(1.2, abs=0.05)
    assert pcm.rms_dbfs(frames[1600:-1600]) == pytest.approx(TARGET, abs=1.0)
    assert check_prompts(out, ["en"], ["goodbye"]) == []


@pytest.mark.parametrize(("level", "target"), [(-42.0, -20.0), (-4.0, -20.0), (-30.0, -16.0)])
def test_loudness_lands_within_1_db_of_target(tmp_path: Path, level: float, target: float) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "invalid.wav", tone(2.0, 16000, dbfs=level), rate=16000)

    result = _one(build_prompts(src, out, target_dbfs=target))

    frames = _assert_prompt_format(out / "ru" / "invalid.wav")
    assert pcm.rms_dbfs(frames) == pytest.approx(target, abs=1.0), result.detail
    assert pcm.peak_dbfs(frames) <= pcm.PEAK_CEILING_DBFS


def test_loudness_never_clips(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    # Sparse loud clicks: reaching -10 dBFS RMS would need peaks far above full scale.
    clicks = bytearray(silence(1.0, 8000))
    for i in range(0, 8000, 400):
        clicks[2 * i : 2 * i + 4] = (20000).to_bytes(2, "little", signed=True) * 2
    write_wav(src / "ru" / "timeout.wav", bytes(clicks))

    result = _one(build_prompts(src, out, target_dbfs=-10.0))

    frames = _assert_prompt_format(out / "ru" / "timeout.wav")
    assert pcm.peak_dbfs(frames) <= pcm.PEAK_CEILING_DBFS
    assert "held back" in result.detail


def test_8bit_and_8k_sources(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    eight_bit = bytes((s >> 8) + 128 for s in memoryview(tone(1.0, 8000)).cast("h"))
    write_wav(src / "en" / "connecting.wav", eight_bit, width=1)
    write_wav(src / "en" / "position.wav", tone(1.0, 8000, dbfs=-26.0))

    report = build_prompts(src, out)

    assert [r.action for r in report.results] == ["converted", "converted"], report.results
    assert check_prompts(out, ["en"], ["connecting", "position"]) == []
    frames = _assert_prompt_format(out / "en" / "connecting.wav")
    assert pcm.rms_dbfs(frames[800:-800]) == pytest.approx(TARGET, abs=1.0)


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_text_is_spoken_by_espeak(tmp_path: Path, espeak_ng: str, lang: str) -> None:
    words = {"ru": "Спасибо за звонок! До свидания.", "en": "Thank you for calling. Goodbye."}
    src = tmp_path / "prompts"
    (src / lang).mkdir(parents=True)
    (src / lang / "goodbye.txt").write_text(words[lang] + "\n", encoding="utf-8")

    result = _one(build_prompts(src, src))

    assert result.action == "generated", result.detail
    assert f"espeak-ng (voice {lang})" in result.detail
    frames = _assert_prompt_format(src / lang / "goodbye.wav")
    assert result.duration_s is not None and 1.0 < result.duration_s < 5.0
    assert pcm.rms_dbfs(frames) <= TARGET + 0.1
    assert pcm.rms_dbfs(frames) > TARGET - 4.0  # speech peaks may hold the gain back a little
    assert check_prompts(src, [lang], ["goodbye"]) == []


def test_sln16_output(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "greeting.wav", _padded_tone(22050), rate=22050)

    result = _one(build_prompts(src, out, sln16=True))

    raw = (out / "ru" / "greeting.sln16").read_bytes()
    assert result.duration_s is not None
    assert len(raw) / (2 * 16000) == pytest.approx(result.duration_s, abs=0.01)
    assert pcm.rms_dbfs(raw[3200:-3200]) == pytest.approx(TARGET, abs=1.0)
    # Asking again without a change keeps both files.
    assert _one(build_prompts(src, out, sln16=True)).action == "unchanged"
    (out / "ru" / "greeting.sln16").unlink()
    assert _one(build_prompts(src, out, sln16=True)).action == "converted"


# --- what happens when a tool is missing ---------------------------------------------------


def test_mp3_without_ffmpeg_fails_that_prompt_only(
    tmp_path: Path, encode: Encode, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    encode(write_wav(tmp_path / "raw.wav", tone(1.0, 8000)), src / "ru" / "all-busy.mp3")
    write_wav(src / "ru" / "goodbye.wav", tone(1.0, 8000))
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg here

    report = build_prompts(src, out)

    busy, goodbye = report.results
    assert busy.action == "failed"
    assert "install ffmpeg (apt-get install ffmpeg)" in busy.detail
    assert "all-busy.mp3" in busy.detail
    assert goodbye.action == "converted"  # WAV needs no ffmpeg
    assert not report.ok


def test_text_without_espeak_fails_with_install_hint(
    tmp_path: Path, no_tools_on_path: None
) -> None:
    src = tmp_path / "src"
    (src / "en").mkdir(parents=True)
    (src / "en" / "timeout.txt").write_text("We did not hear your choice.", encoding="utf-8")

    result = _one(build_prompts(src, tmp_path / "out"))

    assert result.action == "failed"
    assert "install espeak-ng (apt-get install espeak-ng)" in result.detail
    assert not (tmp_path / "out" / "en" / "timeout.wav").exists()


def test_wav_and_text_need_no_ffmpeg(
    tmp_path: Path, espeak_ng: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_espeak = tmp_path / "bin"
    only_espeak.mkdir()
    (only_espeak / "espeak-ng").symlink_to(espeak_ng)
    monkeypatch.setenv("PATH", str(only_espeak))
    assert shutil.which("ffmpeg") is None
    src = tmp_path / "src"
    (src / "en").mkdir(parents=True)
    (src / "en" / "timeout.txt").write_text("We did not hear your choice.", encoding="utf-8")
    write_wav(src / "en" / "goodbye.wav", tone(1.0, 44100, channels=2), rate=44100, channels=2)

    report = build_prompts(src, src)

    assert [r.action for r in report.results] == ["converted", "generated"], report.results
    assert check_prompts(src, ["en"], ["goodbye", "timeout"]) == []


def test_text_with_espeak_off_says_what_to_do(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "en").mkdir(parents=True)
    (src / "en" / "timeout.txt").write_text("We did not hear your choice.", encoding="utf-8")

    result = _one(build_prompts(src, src, espeak=False))

    assert result.action == "failed"
    assert "espeak generation is off" in result.detail
    assert "timeout.wav" in result.detail


# --- rebuilds and building in place -------------------------------------------------------


def test_rebuild_without_changes_is_unchanged_and_keeps_files(
    tmp_path: Path, espeak_ng: str
) -> None:
    src = tmp_path / "prompts"
    (src / "ru").mkdir(parents=True)
    (src / "ru" / "connecting.txt").write_text("Соединяем вас.", encoding="utf-8")
    write_wav(src / "ru" / "greeting.wav", tone(1.0, 44100), rate=44100)
    first = build_prompts(src, src)
    assert [r.action for r in first.results] == ["generated", "converted"]
    stamps = {p.name: p.stat().st_mtime_ns for p in (src / "ru").iterdir()}

    second = build_prompts(src, src)

    assert [r.action for r in second.results] == ["unchanged", "unchanged"]
    assert {p.name: p.stat().st_mtime_ns for p in (src / "ru").iterdir()} == stamps
    assert second.results[0].duration_s == first.results[0].duration_s


def test_changed_text_is_spoken_again(tmp_path: Path, espeak_ng: str) -> None:
    src = tmp_path / "prompts"
    (src / "en").mkdir(parents=True)
    text = src / "en" / "connecting.txt"
    text.write_text("Connecting you.", encoding="utf-8")
    short = _one(build_prompts(src, src))

    text.write_text("Connecting you now, please hold for a moment.", encoding="utf-8")
    longer = _one(build_prompts(src, src))

    assert longer.action == "generated", longer.detail
    assert longer.duration_s is not None and short.duration_s is not None
    assert longer.duration_s > short.duration_s + 0.5


def test_new_recording_over_a_generated_prompt_wins(tmp_path: Path, espeak_ng: str) -> None:
    src = tmp_path / "prompts"
    (src / "en").mkdir(parents=True)
    (src / "en" / "greeting.txt").write_text("Hello.", encoding="utf-8")
    assert _one(build_prompts(src, src)).action == "generated"

    # Someone records the greeting and drops it over the spoken one.
    write_wav(src / "en" / "greeting.wav", _padded_tone(48000), rate=48000)
    converted = _one(build_prompts(src, src))

    assert converted.action == "converted", converted.detail
    assert converted.source == src / "en" / "greeting.wav"
    frames = _assert_prompt_format(src / "en" / "greeting.wav")
    assert pcm.duration_s(frames, 8000) == pytest.approx(1.2, abs=0.025)
    # The converted recording is now the prompt: not converted again, not replaced by the text.
    converted_bytes = (src / "en" / "greeting.wav").read_bytes()
    again = _one(build_prompts(src, src))
    assert again.action == "unchanged"
    assert (src / "en" / "greeting.wav").read_bytes() == converted_bytes


def test_mp3_in_place_makes_the_wav_which_is_not_a_second_recording(
    tmp_path: Path, encode: Encode
) -> None:
    src = tmp_path / "prompts"
    raw = write_wav(tmp_path / "raw.wav", tone(1.0, 44100), rate=44100)
    encode(raw, src / "ru" / "all-busy.mp3")
    assert _one(build_prompts(src, src)).action == "converted"

    again = _one(build_prompts(src, src))

    assert again.action == "unchanged", again.detail
    assert again.source == src / "ru" / "all-busy.mp3"


def test_two_recordings_for_one_prompt_fail(tmp_path: Path, encode: Encode) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    wav = write_wav(src / "ru" / "greeting.wav", tone(1.0, 8000))
    encode(wav, src / "ru" / "greeting.ogg")

    result = _one(build_prompts(src, out))

    assert result.action == "failed"
    assert "several recordings (greeting.ogg, greeting.wav): keep one" in result.detail


def test_damaged_manifest_only_costs_a_rebuild(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "greeting.wav", tone(1.0, 8000))
    build_prompts(src, out)
    (out / MANIFEST_NAME).write_text("{not json", encoding="utf-8")

    assert _one(build_prompts(src, out)).action == "converted"
    assert json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))["prompts"]
    assert _one(build_prompts(src, out)).action == "unchanged"


def test_changed_target_rebuilds(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "greeting.wav", tone(1.0, 8000))
    build_prompts(src, out)

    result = _one(build_prompts(src, out, target_dbfs=-16.0))

    assert result.action == "converted"
    frames = _assert_prompt_format(out / "ru" / "greeting.wav")
    assert pcm.rms_dbfs(frames) == pytest.approx(-16.0, abs=1.0)


# --- bad sources ------------------------------------------------------------------------------


def test_silent_recording_fails(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_wav(src / "ru" / "greeting.wav", silence(2.0, 8000))

    result = _one(build_prompts(src, tmp_path / "out"))

    assert result.action == "failed"
    assert "silent" in result.detail


def test_undecodable_recording_fails(tmp_path: Path, ffmpeg: str) -> None:
    src = tmp_path / "src"
    (src / "ru").mkdir(parents=True)
    (src / "ru" / "greeting.mp3").write_bytes(b"this is not an mp3" * 100)
    (src / "ru" / "goodbye.wav").write_bytes(b"RIFF....WAVEjunk")

    report = build_prompts(src, tmp_path / "out")

    assert [r.action for r in report.results] == ["failed", "failed"]
    for r in report.results:
        assert re.search(r"cannot decode .*(greeting\.mp3|goodbye\.wav)", r.detail), r.detail


def test_empty_text_fails(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "ru").mkdir(parents=True)
    (src / "ru" / "greeting.txt").write_text("  \n", encoding="utf-8")

    result = _one(build_prompts(src, src))

    assert result.action == "failed"
    assert "is empty" in result.detail


def test_badly_named_source_is_reported_not_ignored(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_wav(src / "ru" / "Main Menu.wav", tone(1.0, 8000))
    (src / "ru" / "notes.md").write_text("ignored: not audio or text", encoding="utf-8")

    result = _one(build_prompts(src, tmp_path / "out"))

    assert result.action == "failed"
    assert "rename Main Menu.wav" in result.detail


def test_missing_source_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(AudioSourceError, match="does not exist"):
        build_prompts(tmp_path / "nowhere", tmp_path / "out")


def test_langs_limits_the_build(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "greeting.wav", tone(1.0, 8000))
    write_wav(src / "en" / "greeting.wav", tone(1.0, 8000))
    (src / "not-a-lang").mkdir()

    assert [r.lang for r in build_prompts(src, out).results] == ["en", "ru"]
    assert [r.lang for r in build_prompts(src, out, langs=["ru"]).results] == ["ru"]
    with pytest.raises(AudioSourceError, match="no prompts for language 'de'"):
        build_prompts(src, out, langs=["de"])


def test_render_build_report(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    write_wav(src / "ru" / "greeting.wav", tone(1.0, 8000))
    write_wav(src / "ru" / "goodbye.wav", silence(1.0, 8000))

    text = render_build_report(build_prompts(src, out))

    lines = text.splitlines()
    assert lines[0] == f"Prompts from {src} into {out}:"
    assert re.match(r"  ru/goodbye\s+failed\s+-\s+the audio is silent", lines[1]), lines[1]
    assert re.match(r"  ru/greeting\s+converted\s+1\.00 s\s+from greeting\.wav", lines[2])
    assert lines[3] == "2 prompts: 1 converted, 1 failed"
    assert "pbx-service prompts build" in lines[4]


def test_in_place_with_another_spelling_of_the_folder(tmp_path: Path, espeak_ng: str) -> None:
    src = tmp_path / "prompts"
    (src / "en").mkdir(parents=True)
    (src / "en" / "goodbye.txt").write_text("Goodbye.", encoding="utf-8")
    assert _one(build_prompts(src, src)).action == "generated"

    # The same folder, spelled differently: the spoken WAV is still not a recording.
    again = _one(build_prompts(src / "en" / "..", src.resolve()))

    assert again.action == "unchanged", again.detail


def test_recording_gone_keeps_its_built_wav(tmp_path: Path, encode: Encode) -> None:
    src = tmp_path / "prompts"
    raw = write_wav(tmp_path / "raw.wav", tone(1.0, 44100), rate=44100)
    encode(raw, src / "ru" / "all-busy.ogg")
    assert _one(build_prompts(src, src)).action == "converted"
    built = (src / "ru" / "all-busy.wav").read_bytes()

    (src / "ru" / "all-busy.ogg").unlink()
    result = _one(build_prompts(src, src))

    assert result.action == "unchanged"
    assert "built from ru/all-busy.ogg, which is gone" in result.detail
    assert (src / "ru" / "all-busy.wav").read_bytes() == built

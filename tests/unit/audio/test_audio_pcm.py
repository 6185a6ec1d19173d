"""The signal steps of the prompt build, on raw PCM bytes."""

from __future__ import annotations

import array
import math

import pytest

from pbx_service.audio import pcm

from .wavfiles import silence, tone


def _samples(data: bytes) -> array.array[int]:
    return array.array("h", data)


def test_dbfs_of_known_signals() -> None:
    assert pcm.rms_dbfs(tone(1.0, 8000, dbfs=-20.0)) == pytest.approx(-20.0, abs=0.05)
    assert pcm.rms_dbfs(silence(1.0, 8000)) == -math.inf
    assert pcm.rms_dbfs(b"") == -math.inf
    assert pcm.peak_dbfs(array.array("h", [0, -32768, 5]).tobytes()) == 0.0


def test_duration() -> None:
    assert pcm.duration_s(tone(1.5, 8000), 8000) == 1.5


def test_trim_keeps_100_ms_each_side() -> None:
    rate = 22050
    data = silence(1.0, rate) + tone(1.0, rate) + silence(1.0, rate)

    trimmed = pcm.trim_silence(data, rate)

    # Sound is found in 10 ms chunks, so the ends may move by one chunk.
    assert pcm.duration_s(trimmed, rate) == pytest.approx(1.2, abs=0.011)


def test_trim_keeps_what_is_there_when_less_than_100_ms() -> None:
    rate = 8000
    data = silence(0.03, rate) + tone(0.5, rate) + silence(0.03, rate)

    assert pcm.trim_silence(data, rate) == data


def test_trim_of_silence_is_empty() -> None:
    assert pcm.trim_silence(silence(1.0, 8000), 8000) == b""
    # Below -55 dBFS counts as silence too.
    assert pcm.trim_silence(tone(1.0, 8000, dbfs=-70.0), 8000) == b""


def test_trim_judges_silence_relative_to_the_loudest_part() -> None:
    rate = 8000
    hiss = tone(0.5, rate, freq=3000.0, dbfs=-50.0)  # 46 dB under the voice: silence
    quiet_start = tone(0.3, rate, dbfs=-30.0)  # a soft syllable 26 dB under: kept
    data = hiss + quiet_start + tone(1.0, rate, dbfs=-4.0) + hiss

    trimmed = pcm.trim_silence(data, rate)

    assert pcm.duration_s(trimmed, rate) == pytest.approx(0.3 + 1.0 + 0.2, abs=0.021)


@pytest.mark.parametrize("level", [-40.0, -26.0, -10.0, -3.5])
def test_normalise_to_target(level: float) -> None:
    out, gain, limited = pcm.normalise(tone(1.0, 8000, dbfs=level), -20.0)

    assert pcm.rms_dbfs(out) == pytest.approx(-20.0, abs=0.1)
    assert gain == pytest.approx(-20.0 - level, abs=0.1)
    assert not limited


def test_normalise_never_clips() -> None:
    # Clicks in silence: quiet on average, full-scale peaks. -20 dBFS RMS would need +30 dB.
    samples = array.array("h", [0] * 8000)
    for i in range(0, 8000, 800):
        samples[i] = 10000
    out, gain, limited = pcm.normalise(samples.tobytes(), -20.0)

    assert limited
    assert pcm.peak_dbfs(out) <= pcm.PEAK_CEILING_DBFS
    assert pcm.peak_dbfs(out) == pytest.approx(pcm.PEAK_CEILING_DBFS, abs=0.1)
    assert gain < 10.0


def test_normalise_leaves_silence_alone() -> None:
    data = silence(0.5, 8000)
    assert pcm.normalise(data, -20.0) == (data, 0.0, False)


# From 11025 Hz the interpolation droops 1.5 dB at 2.5 kHz: acceptable, but not tested as flat.
@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_resample_to_8k_keeps_speech_band(rate: int) -> None:
    for freq in (300.0, 1000.0, 2500.0):
        out = pcm.resample(tone(1.0, rate, freq=freq), rate, 8000)

        assert len(out) == pytest.approx(2 * 8000, abs=4)
        # Skip the filter's edges.
        # audioop.ratecv interpolates linearly, which droops a little towards 3 kHz.
        assert pcm.rms_dbfs(out[800:-800]) == pytest.approx(-20.0, abs=0.5), freq


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_resample_to_8k_removes_what_would_alias(rate: int) -> None:
    for freq in (4500.0, 6000.0, 7900.0):
        out = pcm.resample(tone(1.0, rate, freq=freq), rate, 8000)

        assert pcm.rms_dbfs(out[800:-800]) < -70.0, freq


def test_resample_same_rate_is_a_no_op() -> None:
    data = tone(0.1, 8000)
    assert pcm.resample(data, 8000, 8000) is data


def test_resample_up() -> None:
    out = pcm.resample(tone(1.0, 8000, freq=1000.0), 8000, 16000)
    assert len(out) == pytest.approx(2 * 16000, abs=4)
    assert pcm.rms_dbfs(out) == pytest.approx(-20.0, abs=0.5)


def test_lowpass_keeps_length_and_phase() -> None:
    data = tone(0.5, 22050, freq=500.0)

    out = pcm.lowpass(data, 22050, cutoff_hz=3500.0, transition_hz=1000.0)

    assert len(out) == len(data)
    # Linear phase centred on the input: the filtered sine lines up with the original.
    a, b = _samples(data)[2000:3000], _samples(out)[2000:3000]
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 20


def test_fade_edges() -> None:
    data = tone(0.5, 8000, freq=1000.0, dbfs=-6.0)

    out = _samples(pcm.fade_edges(data, 8000))

    assert out[0] == 0
    assert out[-1] == 0
    assert max(abs(s) for s in out[:20]) < 0.3 * max(abs(s) for s in out[1000:1100])
    assert out[200:-200] == _samples(data)[200:-200]

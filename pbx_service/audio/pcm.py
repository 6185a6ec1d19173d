"""Signal steps on raw PCM: little-endian signed 16-bit mono bytes.

Everything runs through the stdlib ``audioop`` C routines (a 250-tap filter over a few seconds
of audio takes a fraction of a second), so building prompts needs no numpy and no ffmpeg for WAV
sources, and gives byte-identical output on every machine: the committed prompts are exactly
what ``prompts build`` produces.
"""

from __future__ import annotations

import array
import math
import warnings
from typing import Final

with warnings.catch_warnings():
    # Deprecated since 3.11 and gone from 3.13, where the audioop-lts package (a pyproject
    # marker) puts it back; pydub needs it anyway.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_WIDTH: Final = 2
FULL_SCALE: Final = 32768.0
# Quieter than this is "no sound" everywhere in the package.
SILENCE_FLOOR_DBFS: Final = -55.0
# Trim treats as silence whatever is this far below the loudest sample.
TRIM_BELOW_PEAK_DB: Final = 40.0
# Normalising never lifts a peak above this, so later codecs and resamplers do not clip.
PEAK_CEILING_DBFS: Final = -1.0


def duration_s(pcm: bytes, rate: int) -> float:
    """Length of `pcm` in seconds."""
    return len(pcm) / (SAMPLE_WIDTH * rate)


def to_dbfs(amplitude: float) -> float:
    """An amplitude in sample units as dBFS; silence is -inf."""
    if amplitude <= 0:
        return -math.inf
    return 20.0 * math.log10(amplitude / FULL_SCALE)


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of `pcm` as RMS in dBFS (what pydub calls ``dBFS``)."""
    return to_dbfs(audioop.rms(pcm, SAMPLE_WIDTH)) if pcm else -math.inf


def peak_dbfs(pcm: bytes) -> float:
    """The loudest sample of `pcm` in dBFS."""
    return to_dbfs(audioop.max(pcm, SAMPLE_WIDTH)) if pcm else -math.inf


def trim_silence(pcm: bytes, rate: int, *, keep_ms: int = 100) -> bytes:
    """Cut leading and trailing silence, keeping `keep_ms` of it at each end.

    Silence is whatever stays under a threshold: 40 dB below the loudest sample, but at least
    -55 dBFS; it is judged on the peak of each 10 ms chunk. All-silent input comes back empty.
    """
    peak = peak_dbfs(pcm)
    if peak < SILENCE_FLOOR_DBFS:
        return b""
    threshold = FULL_SCALE * 10 ** (max(SILENCE_FLOOR_DBFS, peak - TRIM_BELOW_PEAK_DB) / 20.0)
    chunk = max(1, rate // 100) * SAMPLE_WIDTH
    loud = [
        start
        for start in range(0, len(pcm), chunk)
        if audioop.max(pcm[start : start + chunk], SAMPLE_WIDTH) >= threshold
    ]
    keep = (rate * keep_ms // 1000) * SAMPLE_WIDTH
    begin = max(0, loud[0] - keep)
    end = min(len(pcm), loud[-1] + chunk + keep)
    return pcm[begin:end]


def _lowpass_taps(rate: int, cutoff_hz: float, transition_hz: float) -> list[float]:
    """A Blackman-windowed sinc low-pass: flat below cutoff - transition/2, about -74 dB above
    cutoff + transition/2."""
    count = math.ceil(5.5 * rate / transition_hz) | 1
    middle = count // 2
    fc = cutoff_hz / rate
    taps = []
    for n in range(count):
        x = n - middle
        sinc = 2 * fc if x == 0 else math.sin(2 * math.pi * fc * x) / (math.pi * x)
        window = (
            0.42
            - 0.5 * math.cos(2 * math.pi * n / (count - 1))
            + 0.08 * math.cos(4 * math.pi * n / (count - 1))
        )
        taps.append(sinc * window)
    total = sum(taps)
    return [t / total for t in taps]


def lowpass(pcm: bytes, rate: int, cutoff_hz: float, transition_hz: float) -> bytes:
    """Filter `pcm` with a linear-phase FIR low-pass (same length out as in).

    The sum runs in 32-bit samples with 12 dB of headroom, so rounding in the many
    multiply-adds stays far below the 16-bit noise floor and partial sums cannot saturate.
    """
    if not pcm:
        return pcm
    taps = _lowpass_taps(rate, cutoff_hz, transition_hz)
    wide = audioop.mul(audioop.lin2lin(pcm, SAMPLE_WIDTH, 4), 4, 0.25)
    pad = bytes(4 * (len(taps) // 2))
    padded = pad + wide + pad
    size = len(wide)
    acc = bytes(size)
    for k, tap in enumerate(taps):
        acc = audioop.add(acc, audioop.mul(padded[4 * k : 4 * k + size], 4, tap), 4)
    return audioop.lin2lin(audioop.mul(acc, 4, 4.0), 4, SAMPLE_WIDTH)


def resample(pcm: bytes, rate: int, new_rate: int) -> bytes:
    """Change the sample rate; going down, first remove what would alias.

    ``audioop.ratecv`` alone interpolates without an anti-alias filter, which folds a speech
    voice's hiss above 4 kHz back into the telephone band. Its linear interpolation droops a
    little near the top of the band (0.4 dB at 2.5 kHz from a 22 kHz source), which a phone
    line's own roll-off swamps.
    """
    if rate == new_rate or not pcm:
        return pcm
    if new_rate < rate:
        # Flat to about 0.38 x new_rate, stopband from new_rate / 2.
        pcm = lowpass(pcm, rate, cutoff_hz=0.44 * new_rate, transition_hz=0.12 * new_rate)
    converted, _ = audioop.ratecv(pcm, SAMPLE_WIDTH, 1, rate, new_rate, None)
    return converted


def normalise(pcm: bytes, target_dbfs: float) -> tuple[bytes, float, bool]:
    """Scale `pcm` so its RMS loudness is `target_dbfs`, never letting a peak pass -1 dBFS.

    Returns the audio, the gain applied in dB, and whether the peak ceiling held the gain
    back (then the prompt ends up quieter than the target).
    """
    rms = rms_dbfs(pcm)
    if rms == -math.inf:
        return pcm, 0.0, False
    wanted = target_dbfs - rms
    allowed = PEAK_CEILING_DBFS - peak_dbfs(pcm)
    gain = min(wanted, allowed)
    return audioop.mul(pcm, SAMPLE_WIDTH, 10 ** (gain / 20.0)), gain, allowed < wanted


def fade_edges(pcm: bytes, rate: int, *, fade_ms: int = 10) -> bytes:
    """Ramp the first and last `fade_ms` in and out, so a cut mid-waveform does not click."""
    samples = array.array("h", pcm)
    count = min(len(samples) // 2, rate * fade_ms // 1000)
    for i in range(count):
        scale = i / count
        samples[i] = int(samples[i] * scale)
        samples[-1 - i] = int(samples[-1 - i] * scale)
    return samples.tobytes()

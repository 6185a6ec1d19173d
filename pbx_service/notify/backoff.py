"""When to try a failed delivery again. Pure."""

from __future__ import annotations


def retry_delay(attempt: int, initial: float, maximum: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential: ``initial``, 2×, 4×, ... capped at ``maximum``. For initial 10 s and maximum
    one hour: 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, ...
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if initial <= 0 or maximum < initial:
        raise ValueError(f"need 0 < initial <= maximum, got initial={initial} maximum={maximum}")
    # Past 2**64 the product only overflows toward the cap anyway.
    exponent = min(attempt - 1, 64)
    return float(min(maximum, initial * 2.0**exponent))


def retry_schedule(attempts: int, initial: float, maximum: float) -> list[float]:
    """The delays after failed attempts 1 .. ``attempts - 1``: the last attempt has none."""
    return [retry_delay(n, initial, maximum) for n in range(1, attempts)]

"""The retry schedule: exponential, capped."""

from __future__ import annotations

import pytest

from pbx_service.notify.backoff import retry_delay, retry_schedule


def test_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    assert retry_schedule(12, 10, 3600) == [
        10,
        20,
        40,
        80,
        160,
        320,
        640,
        1280,
        2560,
        3600,
        3600,
    ]


def test_one_attempt_has_no_retry() -> None:
    assert retry_schedule(1, 10, 60) == []


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert retry_delay(10_000, 0.5, 30) == 30


def test_sub_second_delays_for_fast_tests() -> None:
    assert retry_schedule(4, 0.05, 0.15) == [0.05, 0.1, 0.15]


@pytest.mark.parametrize(
    ("attempt", "initial", "maximum"), [(0, 10, 60), (1, 0, 60), (1, 10, 5), (-3, 1, 2)]
)
def test_nonsense_is_refused(attempt: int, initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        retry_delay(attempt, initial, maximum)

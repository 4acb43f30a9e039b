"""The one reconnect and retry backoff (kernel.backoff)."""

from __future__ import annotations

import pytest

from kernel.backoff import Backoff


def test_waits_double_up_to_the_maximum_within_the_upper_half_of_each_step() -> None:
    backoff = Backoff(0.5, 4.0)
    steps = [0.5, 1.0, 2.0, 4.0, 4.0]
    for step in steps:
        assert step / 2 <= backoff.next_delay() <= step
    assert backoff.attempt == len(steps)
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay() <= 0.5


def test_many_failures_stay_at_the_maximum() -> None:
    backoff = Backoff(0.5, 15.0, rng=lambda: 1.0)
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 15.0


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
def test_nonsense_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(initial, maximum)

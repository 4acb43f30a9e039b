"""How long to wait before trying again after a failure: doubling waits with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Waits that double from ``initial`` up to ``maximum`` seconds, each drawn from the upper
    half of its step: never zero, and clients that failed together do not retry in step.

    ``rng`` returns a number in ``[0, 1)`` (``random.random``; tests pass a fixed one). What a
    second is (wall or line time) is the caller's: device links and the store wait in wall
    seconds, because networks and disks recover on wall time.
    """

    def __init__(
        self, initial: float, maximum: float, rng: Callable[[], float] = random.random
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < initial <= maximum")
        self._initial = initial
        self._maximum = maximum
        self._rng = rng
        self._step = initial
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Waits handed out since the last reset (failed attempts)."""
        return self._attempt

    def next_delay(self) -> float:
        """The wait before the next attempt; the step after it doubles, up to ``maximum``."""
        step = self._step
        self._step = min(self._maximum, step * 2)
        self._attempt += 1
        return step * (0.5 + 0.5 * self._rng())

    def reset(self) -> None:
        """An attempt succeeded: the next failure waits ``initial`` again."""
        self._step = self._initial
        self._attempt = 0

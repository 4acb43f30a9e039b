"""Exponential reconnect backoff with jitter, so many clients never retry in lockstep."""

from __future__ import annotations

import random


class Backoff:
    """Delays (wall seconds) of ``initial * 2**n``, capped at ``maximum``, with equal jitter.

    Each delay is drawn from ``[d/2, d]``: never zero, never in step with another client.
    """

    def __init__(
        self, initial: float = 0.5, maximum: float = 15.0, rng: random.Random | None = None
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("need 0 < initial <= maximum")
        self._initial = initial
        self._maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Failed attempts since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        cap = min(self._maximum, self._initial * 2.0**self._attempt)
        self._attempt += 1
        return cap / 2 + self._rng.uniform(0.0, cap / 2)

    def reset(self) -> None:
        self._attempt = 0

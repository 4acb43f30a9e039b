"""A fault that lasts a span of line time (a dropped connection, a frozen controller)."""

from __future__ import annotations

from kernel.clock import Clock

POLL = 0.5  # line seconds: how soon a waiter notices that a fault was lifted early


class TimedFault:
    """Active from :meth:`start` until ``for_seconds`` of line time have passed or until
    :meth:`lift`. Waiters poll the clock, so no task has to own the deadline."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until: float | None = None

    def start(self, for_seconds: float) -> None:
        if for_seconds <= 0:
            raise ValueError(f"a fault needs a positive duration, got {for_seconds!r}")
        self._until = self._clock.now() + for_seconds

    def lift(self) -> None:
        self._until = None

    def remaining(self) -> float:
        if self._until is None:
            return 0.0
        left = self._until - self._clock.now()
        if left <= 0:
            self._until = None
            return 0.0
        return left

    @property
    def active(self) -> bool:
        return self.remaining() > 0

    async def cleared(self) -> None:
        """Return once the fault is over (at once if it is not active)."""
        while (left := self.remaining()) > 0:
            await self._clock.sleep(min(left, POLL))

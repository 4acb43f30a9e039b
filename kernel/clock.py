"""The shared clock: one notion of time for the controller and the simulators.

Everything that waits or timestamps in linectl goes through a :class:`Clock`, never through
``time`` or ``asyncio.sleep`` directly. A :class:`ScaledClock` runs ``time_scale`` times faster
than the wall clock (the demo runs a shift in minutes); a :class:`ManualClock` only moves when a
test calls :meth:`ManualClock.advance`, so tests never sleep on the wall clock.

All durations are in *line seconds* (simulated seconds). ``now()`` is a monotonic reading in line
seconds; ``utcnow()`` is the matching calendar time for timestamps in messages and history.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the controller and the simulators need from time."""

    @property
    def time_scale(self) -> float:
        """Line seconds per wall second."""
        ...

    def now(self) -> float:
        """Monotonic line time in seconds."""
        ...

    def utcnow(self) -> datetime:
        """Calendar time (UTC) matching :meth:`now`."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of line time."""
        ...

    def wall_seconds(self, seconds: float) -> float:
        """How many wall seconds ``seconds`` of line time take (for network timeouts)."""
        ...


class ScaledClock:
    """Line time running ``time_scale`` times faster than the wall clock."""

    def __init__(
        self, time_scale: float = 1.0, origin: tuple[float, datetime] | None = None
    ) -> None:
        """``origin``: another clock's :attr:`origin`, so that two processes on one machine
        tell the same line time (the monotonic clock is the machine's)."""
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale!r}")
        self._scale = float(time_scale)
        self._mono0, self._utc0 = origin or (time.monotonic(), datetime.now(UTC))

    @property
    def origin(self) -> tuple[float, datetime]:
        """Where line time 0 is: the monotonic clock's reading then, and the UTC time."""
        return self._mono0, self._utc0

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return (time.monotonic() - self._mono0) * self._scale

    def utcnow(self) -> datetime:
        return self._utc0 + timedelta(seconds=self.now())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self._scale)

    def wall_seconds(self, seconds: float) -> float:
        return seconds / self._scale


class ManualClock:
    """A clock that only moves when told to; for tests.

    ``sleep`` parks the caller until :meth:`advance` moves time past its deadline. Sleepers wake in
    deadline order, and each wake-up gets a chance to run before time moves further, so a test that
    advances by 10 s sees everything that would have happened in those 10 s, in order.
    """

    def __init__(self, start: datetime | None = None, time_scale: float = 1.0) -> None:
        self._now = 0.0
        self._utc0 = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._scale = time_scale
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._utc0 + timedelta(seconds=self._now)

    def wall_seconds(self, seconds: float) -> float:
        return seconds / self._scale

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    @property
    def pending(self) -> int:
        """Number of callers currently sleeping."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in deadline order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            # let the woken task (and whatever it schedules) run before time moves on
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)

"""Broker link helpers shared by the master control and the robot simulator: the broker address
from an ``mqtt://`` URL (how clients log in is :mod:`devices.vda5050.broker`), jittered
exponential backoff, and outage logging that reports an outage once when it starts and once
when it ends.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from kernel.clock import Clock
from kernel.config.mqtt import url_problem

T = TypeVar("T")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def broker_address(url: str) -> BrokerAddress:
    """``mqtt://host:port`` or ``mqtts://host:port`` to a host, port and TLS flag. A URL with a
    user name or password is refused (the message does not repeat it)."""
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(f"not an MQTT broker URL: {problem}")
    u = urlsplit(url)
    tls = u.scheme == "mqtts"
    return BrokerAddress(u.hostname or "", u.port or (8883 if tls else 1883), tls)


class Backoff:
    """Jittered exponential backoff in wall seconds (network time, not line time)."""

    def __init__(
        self, first: float = 0.2, ceiling: float = 10.0, rng: random.Random | None = None
    ) -> None:
        self.first = first
        self.ceiling = ceiling
        self.attempt = 0
        self._rng = rng or random.Random()

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.ceiling, self.first * 2.0 ** min(self.attempt, 30))
        self.attempt += 1
        return float(base * self._rng.uniform(0.5, 1.0))

    async def wait(self, clock: Clock) -> None:
        """Sleep the next delay through the clock, converted from wall to line seconds."""
        await clock.sleep(self.next_delay() * clock.time_scale)


async def keep_cancellation(call: Awaitable[T]) -> T:
    """Await a broker call without losing a cancellation request.

    aiomqtt waits for acknowledgements with ``asyncio.wait_for``, which on Python 3.11 can
    swallow a cancellation that arrives just as the acknowledgement does (fixed in 3.12). A task
    that lost its cancellation would run on forever and block shutdown, so a cancellation
    requested *during* the call is raised again after it. The count is compared with its value
    before the call: on 3.11 a task group can leave an old request counted on its parent task,
    which must not be mistaken for a new one.
    """
    task = asyncio.current_task()
    before = task.cancelling() if task is not None else 0
    result = await call
    if task is not None and task.cancelling() > before:
        raise asyncio.CancelledError
    return result

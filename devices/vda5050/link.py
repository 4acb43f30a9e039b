"""Broker link helpers shared by the master control and the robot simulator: the broker address
from an ``mqtt://`` URL (how clients log in is :mod:`devices.vda5050.broker`), and broker calls
that keep a cancellation request Python 3.11 would lose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

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

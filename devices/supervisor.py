"""Keeping a device link up: connect, wait between attempts, say when it is (un)available.

A :class:`DeviceSupervisor` runs an adapter's session again and again until it is cancelled.
The session connects and, once connected, calls :meth:`DeviceSupervisor.came_up`; it ends by
returning (the link was lost) or by raising :class:`~devices.errors.DeviceUnavailable` (the
attempt failed, or the link was lost for the reason given). Between attempts the supervisor
waits a jittered, doubling delay in wall seconds (networks recover on wall time), reset by
every connection. Each outage is logged once when it starts and once when it ends
(:class:`~devices.outage.Outage`), never once per retry, and the adapter hears of availability
only when it changes, so the controller's queue never gets one event per retry either.

Two pitfalls of Python 3.11 make a reconnect loop ignore a request to stop. ``asyncio.wait_for``
(which asyncua and aiomqtt connect through) can swallow a cancellation that arrives just as the
attempt ends; and a ``TaskGroup`` whose task fails after the block ended lets the group's error
win over a cancellation of its parent and leaves a stray cancellation request on it. So a
session's tasks run under :func:`until_first_failure` (no task group), which first checks
:func:`stop_if_cancelled` as the supervisor does each round: a session whose set-up lost a
cancellation stops before it settles into waiting for its tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from devices.errors import DeviceUnavailable
from devices.outage import Outage
from kernel.backoff import Backoff
from kernel.clock import Clock

# Told of a change of availability: (available, reason).
Announce = Callable[[bool, str], Awaitable[None]]


class SessionLost(Exception):
    """The current session ended (transport loss, server shutdown): raised by one of its tasks
    to end the session; the supervisor then connects again."""


def stop_if_cancelled() -> None:
    """Raise CancelledError when the current task has a cancellation request pending."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def until_first_failure(
    expected: type[BaseException], *coros: Coroutine[Any, Any, None], names: tuple[str, ...] = ()
) -> None:
    """Run ``coros`` as tasks until one of them ends; then stop the others. An ``expected``
    exception (the session ended) returns normally, any other is raised; a cancellation of the
    caller stops every task and propagates, also one that an earlier step of the session
    swallowed (``wait_for`` on Python 3.11): the tasks then never start."""
    try:
        stop_if_cancelled()
    except asyncio.CancelledError:
        for coro in coros:
            coro.close()  # never started: nothing to wait for
        raise
    tasks = [
        asyncio.create_task(coro, name=names[i] if i < len(names) else None)
        for i, coro in enumerate(coros)
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if task.cancelled():
            continue
        exc = task.exception()
        if exc is not None and not isinstance(exc, expected):
            raise exc


class DeviceSupervisor:
    """One device link's connection attempts, waits, availability and outages."""

    def __init__(self, clock: Clock, backoff: Backoff, outage: Outage) -> None:
        self._clock = clock
        self._backoff = backoff
        self._outage = outage
        self._available: bool | None = None  # last availability announced; None: none yet
        self._announce: Announce | None = None

    @property
    def available(self) -> bool | None:
        """Whether the link is up, as last announced (None before the first attempt ended)."""
        return self._available

    async def run(
        self, session: Callable[[], Awaitable[None]], announce: Announce | None = None
    ) -> None:
        """Run ``session`` until cancelled, waiting the backoff's next delay after each end.

        ``announce`` is told of each change of availability: ``(True, "connected")`` when a
        session comes up, ``(False, reason)`` when the first attempt fails or a link that was
        up is lost; never again while it stays the same."""
        self._announce = announce
        while True:
            stop_if_cancelled()
            try:
                await session()
                reason = "connection lost"
            except DeviceUnavailable as exc:
                reason = str(exc)
            await self.went_down(reason)
            await self._clock.sleep(self._backoff.next_delay() * self._clock.time_scale)

    async def came_up(self) -> None:
        """The session is connected: the outage (if any) ends, waits start short again."""
        self._backoff.reset()
        self._outage.up()
        await self._set(True, "connected")

    async def went_down(self, reason: str) -> None:
        """An attempt failed or the link was lost: the first of a row starts the outage."""
        self._outage.down(reason)
        await self._set(False, reason)

    async def _set(self, available: bool, reason: str) -> None:
        if self._available is available:
            return
        self._available = available
        if self._announce is not None:
            await self._announce(available, reason)

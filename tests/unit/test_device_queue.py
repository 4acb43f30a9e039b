"""A later step waits until the robots' reports received before it are handled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from controller.line.device_queue import DeviceEventQueue
from devices import base as dev


def report(serial: str) -> dev.DeviceEvent:
    return dev.RobotAvailability(serial, True, "", datetime(2026, 12, 4, tzinfo=UTC))


async def test_a_step_waits_for_the_reports_before_it_and_not_for_those_after() -> None:
    queue = DeviceEventQueue()
    queue.put_nowait(report("R01"))
    await queue.put(report("R02"))
    mark = queue.received
    queue.put_nowait(report("R03"))  # after the step: not waited for
    waiting = asyncio.create_task(queue.caught_up(mark))
    await asyncio.sleep(0)
    assert mark == 2 and not waiting.done()
    await queue.get()
    await queue.done()
    await asyncio.sleep(0)
    assert not waiting.done()
    await queue.get()
    await queue.done()
    async with asyncio.timeout(1):
        await waiting
    assert queue.handled == 2 and queue.qsize() == 1


async def test_when_the_consumer_keeps_up_nothing_waits() -> None:
    queue = DeviceEventQueue()
    await queue.caught_up(queue.received)
    queue.put_nowait(report("R01"))
    await queue.get()
    await queue.done()
    await queue.caught_up(queue.received)


async def test_each_robots_reports_not_handled_yet_are_counted() -> None:
    queue = DeviceEventQueue()
    queue.put_nowait(report("R01"))
    queue.put_nowait(report("R02"))
    queue.put_nowait(report("R01"))
    assert (queue.pending("R01"), queue.pending("R02"), queue.pending("R09")) == (2, 1, 0)
    await queue.get()
    assert queue.pending("R01") == 2  # taken, not handled yet
    await queue.done()
    assert queue.pending("R01") == 1
    await queue.get()
    await queue.done()
    await queue.get()
    await queue.done()
    assert (queue.pending("R01"), queue.pending("R02")) == (0, 0)

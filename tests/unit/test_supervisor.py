"""The device supervisor: availability told once per change, an outage logged once when it
starts and once when it ends, waits that start short again after every connection."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devices.errors import DeviceUnavailable
from devices.outage import Outage
from devices.supervisor import DeviceSupervisor
from kernel.backoff import Backoff
from kernel.clock import ScaledClock

log = logging.getLogger("test.supervisor")


async def test_retries_are_one_outage_and_availability_changes_are_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    clock = ScaledClock(1.0)
    backoff = Backoff(0.001, 0.002)
    supervisor = DeviceSupervisor(clock, backoff, Outage(clock, log, "widget", {}))
    told: list[tuple[bool, str]] = []
    settled = asyncio.Event()
    attempts = 0

    async def announce(available: bool, reason: str) -> None:
        told.append((available, reason))

    async def session() -> None:
        nonlocal attempts
        attempts += 1
        if attempts in (1, 2):
            raise DeviceUnavailable("refused")
        if attempts == 4:
            raise DeviceUnavailable("timed out")
        await supervisor.came_up()
        if attempts == 3:
            return  # the link was lost
        assert backoff.attempt == 0  # every connection starts the waits short again
        settled.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervisor.run(session, announce))
    async with asyncio.timeout(5):
        await settled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert told == [
        (False, "refused"),
        (True, "connected"),
        (False, "connection lost"),
        (True, "connected"),
    ]
    assert supervisor.available is True
    lines = [(r.getMessage(), getattr(r, "failed_attempts", None)) for r in caplog.records]
    assert lines == [
        ("widget outage started", None),
        ("widget outage ended", 2),
        ("widget outage started", None),
        ("widget outage ended", 2),
    ]


async def test_an_error_other_than_unavailability_ends_the_supervision() -> None:
    clock = ScaledClock(1.0)
    supervisor = DeviceSupervisor(clock, Backoff(0.001, 0.002), Outage(clock, log, "widget", {}))

    async def session() -> None:
        raise RuntimeError("a bug, not a lost link")

    with pytest.raises(RuntimeError):
        await supervisor.run(session)
    assert supervisor.available is None

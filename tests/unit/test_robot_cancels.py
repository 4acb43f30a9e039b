"""Cancelling a robot's order until the robot confirms it (controller.robots.cancels), on a
manual clock with a fleet that only records the cancels it is asked to send."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.robots.cancels import RobotCancels
from devices import base as dev
from devices.errors import DeviceUnavailable
from kernel.clock import ManualClock

AT = datetime(2026, 1, 1, tzinfo=UTC)


class Fleet:
    """Records cancelOrder requests; ``down`` makes them fail as an unreachable robot's."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False

    async def cancel_order(self, serial: str) -> str:
        if self.down:
            raise DeviceUnavailable(f"robot {serial} is OFFLINE")
        self.sent.append(f"cancel-{len(self.sent)}")
        return self.sent[-1]


def failed(action_id: str, reason: str = "validationError: invalid") -> dev.RobotActionFailed:
    return dev.RobotActionFailed("R01", "job-1", action_id, "cancelOrder", "", reason, AT)


def finished(action_id: str) -> dev.RobotActionFinished:
    return dev.RobotActionFinished("R01", "job-1", action_id, "cancelOrder", "", AT)


def cancels(attempts: int = 3) -> tuple[RobotCancels, Fleet, ManualClock, list[str]]:
    fleet, clock, gave_up = Fleet(), ManualClock(), []

    async def on_gave_up(serial: str, why: str) -> None:
        gave_up.append(f"{serial}: {why}")

    return RobotCancels(fleet, clock, attempts, on_gave_up), fleet, clock, gave_up  # type: ignore[arg-type]


async def test_asking_again_while_a_cancel_awaits_its_answer_sends_nothing() -> None:
    c, fleet, _, _ = cancels()
    first = await c.send("R01")
    assert await c.send("R01") == first
    assert fleet.sent == [first]
    assert c.finished(finished(first)) and not c.waiting("R01")
    assert not c.finished(finished(first))  # followed once


async def test_a_refused_cancel_is_sent_again_with_backoff_then_given_up() -> None:
    c, fleet, clock, gave_up = cancels(attempts=3)
    await c.send("R01")
    assert await c.failed(failed(fleet.sent[-1]))
    await c.retry_due()
    assert len(fleet.sent) == 1  # not before its time
    await clock.advance(2.0)
    await c.retry_due()
    assert len(fleet.sent) == 2
    assert await c.failed(failed(fleet.sent[-1]))
    await clock.advance(2.0)
    await c.retry_due()
    assert len(fleet.sent) == 2  # the second retry waits 4 s
    await clock.advance(2.0)
    await c.retry_due()
    assert len(fleet.sent) == 3
    assert await c.failed(failed(fleet.sent[-1], "no action state within 10 s"))
    assert gave_up == ["R01: cancelOrder failed 3 times (last: no action state within 10 s)"]
    assert not c.waiting("R01")
    await clock.advance(60.0)
    await c.retry_due()
    assert len(fleet.sent) == 3


async def test_an_unreachable_robot_is_tried_again_without_counting_an_attempt() -> None:
    c, fleet, clock, gave_up = cancels(attempts=2)
    await c.send("R01")
    await c.failed(failed(fleet.sent[-1]))
    fleet.down = True
    await clock.advance(2.0)
    await c.retry_due()
    assert len(fleet.sent) == 1 and c.waiting("R01")
    fleet.down = False
    await clock.advance(2.0)
    await c.retry_due()
    assert len(fleet.sent) == 2
    assert gave_up == []


async def test_the_end_of_the_robots_order_ends_the_cancel() -> None:
    c, fleet, clock, gave_up = cancels()
    await c.send("R01")
    await c.failed(failed(fleet.sent[-1]))
    c.order_ended("R01")
    await clock.advance(10.0)
    await c.retry_due()
    assert fleet.sent == ["cancel-0"] and gave_up == []
    assert not await c.failed(failed("cancel-0"))  # no longer followed

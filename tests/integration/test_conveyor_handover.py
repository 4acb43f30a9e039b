"""The robot fleet in one process hands dropped totes to a conveyor simulator in another, over
OPC UA (``linectl sim robots --conveyor``): a tote dropped while the conveyor is away waits at
its induction and goes onto the belt once the conveyor is back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from simulators.induction import RemoteInduction

pytestmark = pytest.mark.integration

WAIT = 10.0  # wall seconds


async def eventually(check: Callable[[], bool], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


@pytest.fixture
async def hand_over(reference_line: LineConfig) -> AsyncIterator[RemoteInduction]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    remote = RemoteInduction(reference_line, endpoint, retry_wall_seconds=0.05)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(remote.run(), name="test.handover")
        yield remote
        task.cancel()


def totes(sim: ConveyorSimulator) -> list[str]:
    return [t.tote_id for t in sim.tracking()]


async def test_totes_wait_at_the_induction_until_the_conveyor_is_back(
    hand_over: RemoteInduction, reference_line: LineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="simulators.induction")
    induction = reference_line.robots.inductions[0]
    await hand_over.on_drop("R01", induction.node, "TOTE-1")
    await hand_over.on_drop("R01", "NOT-AN-INDUCTION", "TOTE-X")  # dropped elsewhere
    await hand_over.on_drop("R02", induction.node, None)  # nothing carried
    assert hand_over.waiting == 1
    await eventually(lambda: "conveyor unreachable" in caplog.text, "the outage is logged")

    clock = ScaledClock(20)
    async with ConveyorSimulator(reference_line, clock, hand_over.endpoint) as sim:
        await eventually(lambda: totes(sim) == ["TOTE-1"], "the waiting tote is handed over")
        assert sim.tracking()[0].zone_id == induction.zone
        await hand_over.on_drop("R02", induction.node, "TOTE-2")
        await eventually(lambda: totes(sim) == ["TOTE-1", "TOTE-2"], "a drop goes on at once")

    await hand_over.on_drop("R01", induction.node, "TOTE-3")  # the conveyor is gone again
    async with ConveyorSimulator(reference_line, clock, hand_over.endpoint) as sim:
        await eventually(lambda: totes(sim) == ["TOTE-3"], "handed over after the restart")
    assert hand_over.waiting == 0
    assert hand_over.delivered == 3
    outages = [r for r in caplog.records if r.getMessage().startswith("conveyor unreachable")]
    assert len(outages) == 2  # once per outage, not once per retry
    assert len([r for r in caplog.records if "reachable again" in r.getMessage()]) == 2

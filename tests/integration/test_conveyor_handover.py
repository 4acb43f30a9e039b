"""The robot fleet in one process hands dropped totes to a conveyor simulator in another, over
OPC UA (``linectl sim robots --conveyor``): a tote dropped while the conveyor is away waits at
its induction and goes onto the belt once the conveyor is back. The AS/RS simulator as a process
does the same with the totes its cranes set down at a P&D output (``linectl sim asrs
--conveyor``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from devices.base import CranesAvailability, DeviceEvent
from devices.opcua.cranes.adapter import OpcUaCranes
from kernel.backoff import Backoff
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from simulators.induction import RemoteInduction
from tests.sim_process import asrs_process

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


async def test_a_retrieved_tote_goes_from_the_asrs_process_onto_the_belt(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    """``linectl sim asrs --conveyor``: a tote the crane sets down at the P&D output goes onto
    the conveyor simulator's belt at the aisle's P&D zone."""
    conveyor = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    asrs = f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/"
    aisle = next(a for a in reference_line.asrs.aisles if a.id == "A1")
    clock = ScaledClock(50)
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    cranes = OpcUaCranes(reference_line, clock, Metrics(), asrs, backoff=Backoff(0.05, 0.2))
    async with (
        ConveyorSimulator(reference_line, clock, conveyor) as sim,
        asrs_process(asrs, tmp_path / "asrs.json", conveyor=conveyor),
        asyncio.TaskGroup() as tg,
    ):
        task = tg.create_task(cranes.run(events), name="test.cranes")
        async with asyncio.timeout(WAIT):
            while not (isinstance(e := await events.get(), CranesAvailability) and e.available):
                pass
        await cranes.retrieve("A1", "r-1", "AS-0001", "A1-R-27-04")
        await eventually(lambda: totes(sim) == ["AS-0001"], "the tote is on the belt", 20.0)
        assert sim.tracking()[0].zone_id == aisle.pd_zone
        task.cancel()

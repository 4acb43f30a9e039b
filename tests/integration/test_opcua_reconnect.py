"""The sorter adapter survives an OPC UA server restart and reports the outage once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devices.base import ConveyorAvailability, DeviceEvent, ItemScanned
from devices.errors import DeviceUnavailable
from devices.opcua import OpcUaSorter
from kernel.backoff import Backoff
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator

pytestmark = pytest.mark.integration

WAIT = 10.0


async def next_of(events: asyncio.Queue[DeviceEvent], kind: type[DeviceEvent]) -> DeviceEvent:
    async with asyncio.timeout(WAIT):
        while True:
            event = await events.get()
            if isinstance(event, kind):
                return event


async def test_server_restart_marks_unavailable_then_recovers(
    reference_line: LineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devices.opcua.sorter")
    clock = ScaledClock(100)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    metrics = Metrics()
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    sorter = OpcUaSorter(
        reference_line, clock, metrics, endpoint, backoff=Backoff(initial=0.05, maximum=0.2)
    )

    def connected() -> float | None:
        return metrics.registry.get_sample_value("linectl_opcua_connected", {"conveyor": "C1"})

    first = ConveyorSimulator(reference_line, clock, endpoint)
    await first.start()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sorter.run(events), name="conveyor[C1].run")
        try:
            up = await next_of(events, ConveyorAvailability)
            assert isinstance(up, ConveyorAvailability) and up.available
        finally:
            await first.stop()

        down = await next_of(events, ConveyorAvailability)
        assert isinstance(down, ConveyorAvailability) and not down.available
        assert connected() == 0
        with pytest.raises(DeviceUnavailable):
            await sorter.divert("C1-000001", "CH-DHL")

        async with ConveyorSimulator(reference_line, clock, endpoint) as second:
            again = await next_of(events, ConveyorAvailability)
            assert isinstance(again, ConveyorAvailability) and again.available
            assert connected() == 1
            item_id = await second.induct("TOTE-1", "Z01")
            scan = await next_of(events, ItemScanned)  # re-subscribed after the restart
            assert isinstance(scan, ItemScanned) and scan.item_id == item_id
            task.cancel()

    messages = [r.getMessage() for r in caplog.records if r.name == "devices.opcua.sorter"]
    assert messages.count("conveyor outage started") == 1
    assert messages.count("conveyor outage ended") == 1
    assert connected() == 0
    # the lost session is one safe-state entry seen from the controller's side
    entries = metrics.registry.get_sample_value(
        "linectl_conveyor_safe_state_total", {"conveyor": "C1", "reason": "comms_lost"}
    )
    assert entries == 1


class CountingBackoff(Backoff):
    """Short delays, and an event once ``target`` retries have been scheduled."""

    def __init__(self, target: int) -> None:
        super().__init__(initial=0.01, maximum=0.02)
        self.target = target
        self.reached = asyncio.Event()

    def next_delay(self) -> float:
        delay = super().next_delay()
        if self.attempt >= self.target:
            self.reached.set()
        return delay


async def test_unreachable_endpoint_is_reported_once(
    reference_line: LineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devices.opcua.sorter")
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    backoff = CountingBackoff(target=5)
    sorter = OpcUaSorter(reference_line, ScaledClock(100), Metrics(), endpoint, backoff=backoff)
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sorter.run(events), name="conveyor[C1].run")
        down = await next_of(events, ConveyorAvailability)
        assert isinstance(down, ConveyorAvailability) and not down.available
        async with asyncio.timeout(WAIT):
            await backoff.reached.wait()  # several failed retries
        task.cancel()
    assert events.empty()  # no repeated availability events
    warnings = [r for r in caplog.records if r.getMessage() == "conveyor outage started"]
    assert len(warnings) == 1

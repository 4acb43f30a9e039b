"""The controller's watchdog counter: the conveyor (the simulator standing in for the PLC) holds
its belts when the counter stops changing, and stays held until a client unholds it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from asyncua import Client

from controller.clock import ScaledClock
from controller.config.model import LineConfig
from controller.metrics import Metrics
from devices.base import ConveyorAvailability, DeviceEvent
from devices.opcua import OpcUaSorter
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator

pytestmark = pytest.mark.integration

TIME_SCALE = 20.0
WATCHDOG = {"period": 0.1, "timeout": 0.5}  # wall seconds, short for the test
WAIT = 10.0  # wall seconds


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def next_availability(events: asyncio.Queue[DeviceEvent]) -> ConveyorAvailability:
    async with asyncio.timeout(WAIT):
        while True:
            event = await events.get()
            if isinstance(event, ConveyorAvailability):
                return event


async def test_belts_are_held_when_the_controller_goes_silent_and_stay_held_after(
    reference_line: LineConfig,
) -> None:
    conveyor = reference_line.conveyor
    watchdog = conveyor.watchdog.model_copy(update=WATCHDOG)
    reference_line = reference_line.model_copy(
        update={"conveyor": conveyor.model_copy(update={"watchdog": watchdog})}
    )
    clock = ScaledClock(TIME_SCALE)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    timeout = reference_line.conveyor.watchdog.timeout
    async with ConveyorSimulator(reference_line, clock, endpoint) as sim, Client(endpoint) as probe:
        idx = await probe.get_namespace_index(reference_line.conveyor.opcua.namespace)
        unit = await probe.nodes.objects.get_child([f"{idx}:Line", f"{idx}:C1"])
        counter = await unit.get_child(f"{idx}:Watchdog")
        tripped = await unit.get_child(f"{idx}:WatchdogTripped")
        state = await unit.get_child(f"{idx}:State")
        zone = await unit.get_child([f"{idx}:Zones", f"{idx}:Z01", f"{idx}:Running"])

        # not armed before a controller writes: a line without a controller yet keeps running
        await asyncio.sleep(timeout * 1.2)
        assert await state.read_value() == "Execute" and not sim.watchdog_tripped

        events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        sorter = OpcUaSorter(reference_line, clock, Metrics(), endpoint)
        task = asyncio.create_task(sorter.run(events))
        try:
            assert (await next_availability(events)).available
            first = await counter.read_value()

            async def counting() -> bool:
                return int(await counter.read_value()) >= first + 3

            await eventually(counting, "the controller does not write its watchdog counter")
            # alive for longer than the timeout: nothing happens
            await asyncio.sleep(timeout * 1.2)
            assert await state.read_value() == "Execute" and not await tripped.read_value()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        silent_at = time.monotonic()

        async def held() -> bool:
            return bool(await tripped.read_value())

        await eventually(held, "the conveyor kept running without its controller")
        # the last write came at most one period before the controller stopped
        assert time.monotonic() - silent_at >= timeout - reference_line.conveyor.watchdog.period
        assert await state.read_value() == "Held"
        assert await zone.read_value() is False
        assert sim.watchdog_tripped

        # the controller comes back: the trip clears, but the belts wait for an Unhold
        sorter = OpcUaSorter(reference_line, clock, Metrics(), endpoint)
        task = asyncio.create_task(sorter.run(events))
        try:

            async def cleared() -> bool:
                return not await tripped.read_value()

            await eventually(cleared, "the watchdog trip did not clear")
            assert await state.read_value() == "Held"
            assert sorter.snapshot().state == "Held"
            await sorter.command("Unhold")
            assert await state.read_value() == "Execute"
            assert await zone.read_value() is True
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

"""The controller's watchdog counter: the conveyor (the simulator standing in for the PLC) holds
its belts when the counter stops changing. A controller that comes back reads the state again,
counts the safe-state entry and resumes the belts, unless configured to leave that to an
operator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from asyncua import Client

from devices.base import ConveyorAvailability, DeviceEvent
from devices.opcua import OpcUaSorter
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests import packml_unit

pytestmark = pytest.mark.integration

TIME_SCALE = 20.0
WATCHDOG = {"period": 0.1, "timeout": 0.5}  # wall seconds, short for the test
WAIT = 10.0  # wall seconds


def short_watchdog(line: LineConfig) -> LineConfig:
    watchdog = line.conveyor.watchdog.model_copy(update=WATCHDOG)
    conveyor = line.conveyor.model_copy(update={"watchdog": watchdog})
    return line.model_copy(update={"conveyor": conveyor})


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def next_availability(events: asyncio.Queue[DeviceEvent]) -> ConveyorAvailability:
    async with asyncio.timeout(WAIT):
        while True:
            event = await events.get()
            if isinstance(event, ConveyorAvailability):
                return event


@asynccontextmanager
async def controller(
    line: LineConfig,
    clock: ScaledClock,
    endpoint: str,
    events: asyncio.Queue[DeviceEvent],
    metrics: Metrics | None = None,
) -> AsyncIterator[OpcUaSorter]:
    """The controller's conveyor adapter, running until the block ends (the controller goes)."""
    sorter = OpcUaSorter(line, clock, metrics or Metrics(), endpoint)
    task = asyncio.create_task(sorter.run(events))
    try:
        yield sorter
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def safe_states(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value(
        "linectl_conveyor_safe_state_total", {"conveyor": "C1", "reason": "controller_silent"}
    )


async def test_belts_are_held_when_the_controller_goes_silent_and_stay_held_after(
    reference_line: LineConfig,
) -> None:
    reference_line = short_watchdog(reference_line)
    clock = ScaledClock(TIME_SCALE)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    timeout = reference_line.conveyor.watchdog.timeout
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with ConveyorSimulator(reference_line, clock, endpoint) as sim, Client(endpoint) as probe:
        idx = await probe.get_namespace_index(reference_line.conveyor.opcua.namespace)
        unit = await probe.nodes.objects.get_child([f"{idx}:Line", f"{idx}:C1"])
        counter = await unit.get_child(f"{idx}:Watchdog")
        tripped = await unit.get_child(f"{idx}:WatchdogTripped")

        async def state() -> str:
            return await packml_unit.state(unit)

        zone = await unit.get_child([f"{idx}:Zones", f"{idx}:Z01", f"{idx}:Running"])

        # not armed before a controller writes: a line without a controller yet keeps running
        await asyncio.sleep(timeout * 1.2)
        assert await state() == "Execute" and not sim.watchdog_tripped

        async with controller(reference_line, clock, endpoint, events):
            assert (await next_availability(events)).available
            first = await counter.read_value()

            async def counting() -> bool:
                return int(await counter.read_value()) >= first + 3

            await eventually(counting, "the controller does not write its watchdog counter")
            # alive for longer than the timeout: nothing happens
            await asyncio.sleep(timeout * 1.2)
            assert await state() == "Execute" and not await tripped.read_value()

        silent_at = time.monotonic()

        async def held() -> bool:
            return bool(await tripped.read_value())

        await eventually(held, "the conveyor kept running without its controller")
        # the last write came at most one period before the controller stopped
        assert time.monotonic() - silent_at >= timeout - reference_line.conveyor.watchdog.period
        assert await state() == "Held"
        pidx = await packml_unit.packml_index(unit)
        reason = await (await unit.get_child([f"{pidx}:Admin", f"{pidx}:StopReason"])).read_value()
        assert (reason.ID, reason.Message, reason.Trigger) == (
            1,
            "controller watchdog expired",
            True,
        )
        assert await zone.read_value() is False
        assert sim.watchdog_tripped

        # a controller that must not resume on its own comes back: it counts the hold, keeps
        # writing its counter, and the belts wait for an operator's Unhold
        manual = reference_line.model_copy(
            update={
                "conveyor": reference_line.conveyor.model_copy(
                    update={"resume_after_comms_loss": False}
                )
            }
        )
        metrics = Metrics()
        async with controller(manual, clock, endpoint, events, metrics) as sorter:

            async def counted() -> bool:
                return safe_states(metrics) == 1.0

            await eventually(counted, "the safe state was not counted")
            await asyncio.sleep(WATCHDOG["timeout"] * 2)  # alive, and still held
            assert await state() == "Held" and await tripped.read_value()
            assert sorter.snapshot().state == "Held"
            assert safe_states(metrics) == 1.0  # once per hold
            await sorter.command("Unhold")
            assert await state() == "Execute"
            assert await zone.read_value() is True
            assert not await tripped.read_value()


async def test_belts_resume_once_the_controller_is_back_and_has_read_the_state(
    reference_line: LineConfig,
) -> None:
    line = short_watchdog(reference_line)
    clock = ScaledClock(TIME_SCALE)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with ConveyorSimulator(line, clock, endpoint) as sim:
        async with controller(line, clock, endpoint, events):
            assert (await next_availability(events)).available

            async def armed() -> bool:
                return sim.watchdog_value is not None

            await eventually(armed, "the controller does not write its watchdog counter")

        async def held() -> bool:
            return sim.watchdog_tripped and sim.state.value == "Held"

        await eventually(held, "the conveyor kept running without its controller")

        metrics = Metrics()
        async with controller(line, clock, endpoint, events, metrics) as sorter:
            assert (await next_availability(events)).available
            # by the time the controller reports the conveyor available, it is running again
            assert sim.state.value == "Execute" and not sim.watchdog_tripped
            assert sorter.snapshot().state == "Execute"
            assert safe_states(metrics) == 1.0


async def test_a_stalled_controller_loop_holds_the_belts_and_resumes_them_when_it_runs_again(
    reference_line: LineConfig,
) -> None:
    line = short_watchdog(reference_line)
    clock = ScaledClock(TIME_SCALE)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    metrics = Metrics()
    async with (
        ConveyorSimulator(line, clock, endpoint) as sim,
        controller(line, clock, endpoint, events, metrics) as sorter,
    ):
        assert (await next_availability(events)).available
        first: int | None = None

        async def writing() -> bool:  # the counter moved a few times
            nonlocal first
            value = sim.watchdog_value
            if value is None:
                return False
            first = value if first is None else first
            return sorter.snapshot().state == "Execute" and value >= first + 3

        await eventually(writing, "the controller does not write its watchdog counter")
        assert safe_states(metrics) is None

        async def counted() -> bool:
            return safe_states(metrics) is not None

        # the whole process stalls (the session stays up). When it runs again, the simulated
        # PLC finds the counter silent for longer than its timeout and holds the belts, unless
        # the controller's next write happens to come first: stall again then
        for _ in range(10):
            time.sleep(WATCHDOG["timeout"] * 2)  # noqa: ASYNC251 - the stall under test
            try:
                await eventually(counted, "", within=WATCHDOG["timeout"])
                break
            except AssertionError:
                continue

        async def resumed() -> bool:
            return safe_states(metrics) == 1.0 and sim.state.value == "Execute"

        await eventually(resumed, "the belts were not held and resumed")
        assert not sim.watchdog_tripped

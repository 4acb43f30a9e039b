"""The cranes adapter against the AS/RS simulator: commands and completion events, refusals,
metrics, a server restart with journal replay, retained state across a killed simulator
process, and the totes waiting at the P&D inputs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

import pytest
from asyncua import Client, ua

from devices.base import (
    CraneCommandFinished,
    CraneContents,
    CranesAvailability,
    DeviceEvent,
    TotesAtPdInput,
)
from devices.errors import CommandRejected, DeviceUnavailable
from devices.opcua.cranes.adapter import OpcUaCranes
from kernel.backoff import Backoff
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.asrs import AsrsSimulator
from simulators.broker import free_port
from tests.sim_process import asrs_process

pytestmark = pytest.mark.integration

WAIT = 15.0


T = TypeVar("T")


async def next_of(events: asyncio.Queue[DeviceEvent], kind: type[T]) -> T:
    async with asyncio.timeout(WAIT):
        while True:
            event = await events.get()
            if isinstance(event, kind):
                return event


async def state_of(cranes: OpcUaCranes, aisle: str, state: str) -> None:
    deadline = time.monotonic() + WAIT
    while cranes.snapshot()[aisle].state != state:
        assert time.monotonic() < deadline, f"crane of {aisle} {state}"
        await asyncio.sleep(0.02)


def endpoint() -> str:
    return f"opc.tcp://127.0.0.1:{free_port()}/linectl/"


@pytest.fixture
async def running(
    reference_line: LineConfig,
) -> AsyncIterator[tuple[AsrsSimulator, OpcUaCranes, asyncio.Queue[DeviceEvent], Metrics]]:
    url = endpoint()
    clock = ScaledClock(200)
    metrics = Metrics()
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    cranes = OpcUaCranes(reference_line, clock, metrics, url, backoff=Backoff(0.05, 0.2))
    async with AsrsSimulator(reference_line, clock, url) as sim, asyncio.TaskGroup() as tg:
        task = tg.create_task(cranes.run(events), name="asrs.run")
        up = await next_of(events, CranesAvailability)
        assert up.available
        yield sim, cranes, events, metrics
        task.cancel()


async def test_commands_and_completions(
    running: tuple[AsrsSimulator, OpcUaCranes, asyncio.Queue[DeviceEvent], Metrics],
) -> None:
    sim, cranes, events, metrics = running
    contents = await next_of(events, CraneContents)
    assert contents.contents["A1"]["A1-R-27-04"] == "AS-0001"
    assert contents.contents["A2"]["A2-L-01-09"] == "AS-0003"
    snap = cranes.snapshot()
    assert set(snap) == {"A1", "A2"} and snap["A1"].connected and snap["A1"].crane == "CR1"
    assert snap["A1"].state == "Idle" and snap["A1"].queue_length == 0

    await sim.arrive_at_pd("T-IN", "A1")
    await cranes.store("A1", "s-1", "T-IN", "A1-L-05-02")
    stored = await next_of(events, CraneCommandFinished)
    assert (stored.crane, stored.aisle, stored.command_id, stored.kind) == (
        "CR1",
        "A1",
        "s-1",
        "Store",
    )
    assert stored.ok and stored.sequence == 1 and not stored.replayed
    await cranes.retrieve("A1", "r-1", "T-IN", "A1-L-05-02")
    retrieved = await next_of(events, CraneCommandFinished)
    assert retrieved.kind == "Retrieve" and retrieved.ok and retrieved.tote == "T-IN"

    await sim.arrive_at_pd("T-2", "A2")
    await cranes.dual("A2", "d-1", "T-2", "A2-L-05-02", "AS-0003", "A2-L-01-09")
    halves = [await next_of(events, CraneCommandFinished) for _ in range(2)]
    assert [(h.kind, h.dual, h.ok) for h in halves] == [
        ("Store", True, True),
        ("Retrieve", True, True),
    ]

    with pytest.raises(CommandRejected, match="BadNoEntryExists"):
        await cranes.retrieve("A1", "r-2", "T-IN", "A1-L-05-02")
    await cranes.retrieve("A1", "r-1", "T-IN", "A1-L-05-02")  # the same again: not executed
    with pytest.raises(DeviceUnavailable):
        await cranes.store("A9", "x", "T", "A9-L-01-01")

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert sample("linectl_asrs_cycles_total", aisle="A1", kind="single_store") == 1
    assert sample("linectl_asrs_cycles_total", aisle="A1", kind="single_retrieve") == 1
    assert sample("linectl_asrs_cycles_total", aisle="A2", kind="dual") == 1
    assert sample("linectl_asrs_cycle_seconds_count", aisle="A2", kind="dual") == 1
    assert sample("linectl_asrs_crane_state", aisle="A1", state="Idle") == 1
    assert sample("linectl_asrs_opcua_connected") == 1
    assert sim.crane("A1").journal.last == 2


async def test_fault_is_seen_in_the_snapshot(
    running: tuple[AsrsSimulator, OpcUaCranes, asyncio.Queue[DeviceEvent], Metrics],
) -> None:
    sim, cranes, _, _ = running
    await sim.set_fault("CR1", "drive overload")
    await state_of(cranes, "A1", "Fault")
    assert cranes.snapshot()["A1"].fault == "drive overload"
    with pytest.raises(CommandRejected, match="BadInvalidState"):
        await cranes.retrieve("A1", "r-1", "AS-0001", "A1-R-27-04")
    await cranes.clear_fault("A1")
    await state_of(cranes, "A1", "Idle")


async def test_restart_replays_the_journal(
    reference_line: LineConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A command in progress when the AS/RS lost power is reported failed ("power loss"),
    read back from the journal after the reconnect; sending it again executes nothing."""
    caplog.set_level(logging.INFO, logger="devices.opcua.cranes")
    url, state = endpoint(), tmp_path / "asrs.json"
    clock = ScaledClock(20)  # a cycle takes about a second: r-2 is still running when held
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    cranes = OpcUaCranes(reference_line, clock, Metrics(), url, backoff=Backoff(0.05, 0.2))
    first = AsrsSimulator(reference_line, clock, url, state_file=state)
    await first.start()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cranes.run(events), name="asrs.run")
        try:
            assert (await next_of(events, CranesAvailability)).available
            await cranes.retrieve("A1", "r-1", "AS-0001", "A1-R-27-04")
            done = await next_of(events, CraneCommandFinished)
            assert done.ok and done.sequence == 1
            await cranes.retrieve("A1", "r-2", "AS-0002", "A1-L-31-09")
            await first.set_fault("CR1", "held for the test")  # r-2 stays in progress
        finally:
            await first.stop()
        assert not (await next_of(events, CranesAvailability)).available

        async with AsrsSimulator(reference_line, clock, url, state_file=state) as second:
            assert (await next_of(events, CranesAvailability)).available
            replayed = await next_of(events, CraneCommandFinished)
            assert (replayed.command_id, replayed.ok, replayed.reason) == (
                "r-2",
                False,
                "power loss",
            )
            assert replayed.replayed and replayed.sequence == 2
            contents = await next_of(events, CraneContents)
            assert "A1-R-27-04" not in contents.contents["A1"]
            assert contents.contents["A1"]["A1-L-31-09"] == "AS-0002"
            await cranes.retrieve("A1", "r-2", "AS-0002", "A1-L-31-09")  # known: not again
            assert second.crane("A1").pending == [] and second.crane("A1").journal.last == 2
            task.cancel()
    messages = [r.getMessage() for r in caplog.records if r.name == "devices.opcua.cranes"]
    assert messages.count("AS/RS outage started") == 1
    assert messages.count("AS/RS outage ended") == 1


async def test_retained_state_across_a_killed_process(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    url, state = endpoint(), tmp_path / "asrs.json"
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    cranes = OpcUaCranes(
        reference_line, ScaledClock(50), Metrics(), url, backoff=Backoff(0.05, 0.2)
    )
    async with asyncio.TaskGroup() as tg:
        async with asrs_process(url, state) as proc:
            task = tg.create_task(cranes.run(events), name="asrs.run")
            assert (await next_of(events, CranesAvailability)).available
            async with Client(url) as client:
                idx = await client.get_namespace_index("urn:linectl:asrs")
                simulation = await client.nodes.objects.get_child(
                    [ua.QualifiedName("Simulation", idx)]
                )
                await simulation.call_method(
                    ua.QualifiedName("ArriveAtPd", idx),
                    ua.Variant("T-KEPT", ua.VariantType.String),
                    ua.Variant("A2", ua.VariantType.String),
                )
            await cranes.store("A2", "s-1", "T-KEPT", "A2-R-03-03")
            stored = await next_of(events, CraneCommandFinished)
            assert stored.ok and stored.sequence == 1
            proc.kill()  # power loss
            await proc.wait()
        assert not (await next_of(events, CranesAvailability)).available

        async with asrs_process(url, state):
            assert (await next_of(events, CranesAvailability)).available
            contents = await next_of(events, CraneContents)
            assert contents.contents["A2"]["A2-R-03-03"] == "T-KEPT"
            assert cranes.last_sequence("A2") == 1
            await cranes.store("A2", "s-1", "T-KEPT", "A2-R-03-03")  # known id: not again
            with pytest.raises(CommandRejected, match="BadAlreadyExists"):
                await cranes.store("A2", "s-1", "T-KEPT", "A2-R-04-03")
            await cranes.retrieve("A2", "r-1", "T-KEPT", "A2-R-03-03")
            retrieved = await next_of(events, CraneCommandFinished)
            assert retrieved.ok and retrieved.sequence == 2 and not retrieved.replayed
            task.cancel()


async def after_contents(events: asyncio.Queue[DeviceEvent]) -> dict[str, TotesAtPdInput]:
    """The TotesAtPdInput of every crane, which follow the CraneContents of a (re)connect."""
    await next_of(events, CraneContents)
    async with asyncio.timeout(WAIT):
        first = [await events.get(), await events.get()]  # nothing comes in between
    assert all(isinstance(e, TotesAtPdInput) for e in first), first
    return {e.aisle: e for e in first if isinstance(e, TotesAtPdInput)}


async def test_totes_at_the_pd_input(
    running: tuple[AsrsSimulator, OpcUaCranes, asyncio.Queue[DeviceEvent], Metrics],
) -> None:
    """A tote set down at the P&D input is reported once, and the emptied list once the crane
    has picked it up; the subscription's first values repeat what was read and are dropped."""
    sim, cranes, events, _ = running
    at_connect = await after_contents(events)
    assert {a: (e.crane, e.totes) for a, e in at_connect.items()} == {
        "A1": ("CR1", ()),
        "A2": ("CR2", ()),
    }

    await sim.arrive_at_pd("T-IN", "A1")
    arrived = await next_of(events, TotesAtPdInput)
    assert (arrived.aisle, arrived.crane, arrived.totes) == ("A1", "CR1", ("T-IN",))
    assert cranes.snapshot()["A1"].pd_input == ("T-IN",)

    await cranes.store("A1", "s-1", "T-IN", "A1-L-05-02")
    seen: list[DeviceEvent] = []
    async with asyncio.timeout(WAIT):
        while not any(isinstance(e, CraneCommandFinished) for e in seen):
            seen.append(await events.get())
    assert [(e.aisle, e.totes) for e in seen if isinstance(e, TotesAtPdInput)] == [("A1", ())]
    assert cranes.snapshot()["A1"].pd_input == ()

    await sim.arrive_at_pd("T-A", "A2")
    await sim.arrive_at_pd("T-B", "A2")
    lists = [(await next_of(events, TotesAtPdInput)).totes]
    if lists[0] != ("T-A", "T-B"):  # the two arrivals may come in one notification or two
        lists.append((await next_of(events, TotesAtPdInput)).totes)
    assert lists in ([("T-A",), ("T-A", "T-B")], [("T-A", "T-B")])
    assert events.empty()


async def test_pd_input_reported_again_after_a_restart(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    """The P&D inputs are retained by the AS/RS: after the reconnect the adapter reports the
    current lists again, even where they did not change."""
    url, state = endpoint(), tmp_path / "asrs.json"
    clock = ScaledClock(200)
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    cranes = OpcUaCranes(reference_line, clock, Metrics(), url, backoff=Backoff(0.05, 0.2))
    first = AsrsSimulator(reference_line, clock, url, state_file=state)
    await first.start()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cranes.run(events), name="asrs.run")
        try:
            assert (await next_of(events, CranesAvailability)).available
            await after_contents(events)
            await first.arrive_at_pd("T-WAIT", "A2")
            assert (await next_of(events, TotesAtPdInput)).totes == ("T-WAIT",)
        finally:
            await first.stop()
        assert not (await next_of(events, CranesAvailability)).available
        assert cranes.snapshot()["A2"].pd_input == ()

        async with AsrsSimulator(reference_line, clock, url, state_file=state):
            assert (await next_of(events, CranesAvailability)).available
            again = await after_contents(events)
            assert again["A2"].totes == ("T-WAIT",) and again["A1"].totes == ()
            assert cranes.snapshot()["A2"].pd_input == ("T-WAIT",)
            task.cancel()

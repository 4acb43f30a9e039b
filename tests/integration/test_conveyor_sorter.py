"""The OPC UA sorter adapter against the conveyor simulator, end to end over loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from asyncua import Client, ua

from devices.base import (
    ConveyorAvailability,
    DeviceEvent,
    ItemDiverted,
    ItemScanned,
    ZoneSnapshot,
)
from devices.errors import CommandRejected, DeviceUnavailable
from devices.opcua import OpcUaSorter
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests import packml_unit

pytestmark = pytest.mark.integration

WAIT = 5.0  # wall seconds; a loop takes 18 line seconds = 0.18 s at time scale 100


def slow_drain(line: LineConfig) -> LineConfig:
    """Chutes that keep what they get for the whole test."""
    sorter = line.conveyor.sorter
    chutes = [c.model_copy(update={"drain_seconds": 100_000.0}) for c in sorter.chutes]
    conveyor = line.conveyor.model_copy(
        update={"sorter": sorter.model_copy(update={"chutes": chutes})}
    )
    return line.model_copy(update={"conveyor": conveyor})


@dataclass
class Line:
    sim: ConveyorSimulator
    sorter: OpcUaSorter
    events: asyncio.Queue[DeviceEvent]
    metrics: Metrics

    async def next(self, kind: type[DeviceEvent]) -> DeviceEvent:
        async with asyncio.timeout(WAIT):
            while True:
                event = await self.events.get()
                if isinstance(event, kind):
                    return event

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        assert value is not None, name
        return value

    async def scan_of(self, item_id: str) -> ItemScanned:
        while True:
            event = await self.next(ItemScanned)
            assert isinstance(event, ItemScanned)
            if event.item_id == item_id:
                return event


@pytest.fixture
async def line(reference_line: LineConfig) -> AsyncIterator[Line]:
    config = slow_drain(reference_line)
    clock = ScaledClock(100)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    metrics = Metrics()
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with ConveyorSimulator(config, clock, endpoint) as sim:
        sorter = OpcUaSorter(config, clock, metrics, endpoint)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(sorter.run(events), name="conveyor[C1].run")
            up = Line(sim, sorter, events, metrics)
            available = await up.next(ConveyorAvailability)
            assert isinstance(available, ConveyorAvailability) and available.available
            yield up
            task.cancel()


async def test_induct_scan_divert_end_to_end(line: Line) -> None:
    assert line.sample("linectl_opcua_connected", conveyor="C1") == 1
    item_id = await line.sim.induct("TOTE-42", "Z01")
    scan = await line.scan_of(item_id)
    assert scan.codes == ("TOTE-42",) and scan.scanner_id == "SCAN1"

    await line.sorter.divert(item_id, "VAS-2")
    done = await line.next(ItemDiverted)
    assert isinstance(done, ItemDiverted)
    assert (done.item_id, done.chute_id, done.divert_id, done.ok) == (item_id, "VAS-2", "D8", True)
    assert done.at > scan.at
    assert line.sim.chute("VAS-2").count == 1
    assert line.sample("linectl_opcua_events_total", kind="scan") >= 1
    assert line.sample("linectl_opcua_events_total", kind="divert") == 1

    # notifications of one subscription arrive in order: once a later read is in, the chute
    # level written before it has reached the snapshot too
    await line.scan_of(await line.sim.induct("TOTE-43", "Z01"))
    snapshot = line.sorter.snapshot()
    assert snapshot.connected and snapshot.state == "Execute"
    assert {c.chute_id: c.count for c in snapshot.chutes}["VAS-2"] == 1


async def test_item_without_divert_recirculates_and_is_scanned_again(
    line: Line, reference_line: LineConfig
) -> None:
    item_id = await line.sim.induct("TOTE-7", "Z03")
    first = await line.scan_of(item_id)
    second = await line.scan_of(item_id)
    conveyor = reference_line.conveyor
    loop_seconds = sum(z.length for z in conveyor.zones) / conveyor.belt_speed
    assert (second.at - first.at).total_seconds() == pytest.approx(loop_seconds, abs=0.01)


async def test_no_read_gives_empty_codes(line: Line) -> None:
    line.sim.set_no_read_rate(1.0)
    item_id = await line.sim.induct("TOTE-8", "Z01")
    scan = await line.scan_of(item_id)
    assert scan.codes == ()


async def test_full_chute_refuses_the_divert(line: Line) -> None:
    await line.sim.set_chute_full("CH-DHL", True)
    item_id = await line.sim.induct("TOTE-9", "Z01")
    await line.scan_of(item_id)
    await line.sorter.divert(item_id, "CH-DHL")
    done = await line.next(ItemDiverted)
    assert isinstance(done, ItemDiverted)
    assert (done.item_id, done.ok) == (item_id, False)
    await line.scan_of(item_id)  # rode on and came round again


async def test_divert_to_unknown_chute_or_item_is_rejected(line: Line) -> None:
    item_id = await line.sim.induct("TOTE-1", "Z01")
    with pytest.raises(CommandRejected) as info:
        await line.sorter.divert(item_id, "NO-SUCH-CHUTE")
    assert isinstance(info.value.__cause__, ua.UaStatusCodeError)
    with pytest.raises(CommandRejected):
        await line.sorter.divert("NO-SUCH-ITEM", "CH-DHL")


async def test_invalid_packml_command_is_a_bad_status_and_the_server_lives_on(
    line: Line,
) -> None:
    async with Client(line.sim.endpoint) as client:
        idx = await client.get_namespace_index("urn:linectl:conveyors")
        conveyor = await client.nodes.objects.get_child([f"{idx}:Line", f"{idx}:C1"])
        with pytest.raises(ua.uaerrors.BadInvalidState):
            await packml_unit.command(conveyor, "Unhold")
        with pytest.raises(ua.uaerrors.BadTooManyArguments):
            await packml_unit.command(conveyor, "Hold", "extra")
        await packml_unit.command(conveyor, "Hold")
        assert await packml_unit.state(conveyor) == "Held"
        running = await conveyor.get_child([f"{idx}:Zones", f"{idx}:Z01", f"{idx}:Running"])
        assert await running.read_value() is False
    with pytest.raises(CommandRejected):
        await line.sorter.command("Hold")
    await line.sorter.command("Unhold")
    assert line.sorter.snapshot().state == "Execute"
    item_id = await line.sim.induct("TOTE-2", "Z01")
    await line.scan_of(item_id)


async def test_divert_while_disconnected_raises_device_unavailable(
    reference_line: LineConfig,
) -> None:
    sorter = OpcUaSorter(reference_line, ScaledClock(100), Metrics(), "opc.tcp://127.0.0.1:1/")
    with pytest.raises(DeviceUnavailable):
        await sorter.divert("C1-000001", "CH-DHL")
    assert sorter.snapshot().state == "Unknown" and not sorter.snapshot().connected


async def test_a_jam_is_one_safe_state_entry_and_shows_in_the_snapshot(line: Line) -> None:
    jams = {"conveyor": "C1", "reason": "jam"}
    await line.sim.set_zone_jammed("Z10", True)
    await eventually(lambda: line.sorter.snapshot().jammed_zones == ("Z10",))
    assert line.sample("linectl_conveyor_safe_state_total", **jams) == 1
    assert line.sample("linectl_conveyor_zone_jammed", conveyor="C1", zone="Z10") == 1
    await line.sim.set_zone_jammed("Z10", False)
    await eventually(lambda: line.sorter.snapshot().jammed_zones == ())
    assert line.sample("linectl_conveyor_zone_jammed", conveyor="C1", zone="Z10") == 0
    await line.sim.set_zone_jammed("Z10", True)
    await eventually(lambda: line.sorter.snapshot().jammed_zones == ("Z10",))
    assert line.sample("linectl_conveyor_safe_state_total", **jams) == 2  # one per jam


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (a snapshot the adapter updates from its subscription)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_jog_runs_one_zone_while_held_and_is_refused_in_execute(line: Line) -> None:
    item_id = await line.sim.induct("TOTE-J", "Z03")
    await eventually(lambda: line.sim.item_position(item_id) is not None)
    with pytest.raises(CommandRejected, match="BadInvalidState"):
        await line.sorter.jog("Z03", 0.5, 1.0)  # producing: no jog
    await line.sorter.command("Hold")
    held_at = line.sim.item_position(item_id)
    assert held_at is not None
    async with Client(line.sim.endpoint) as client:
        idx = await client.get_namespace_index("urn:linectl:conveyors")
        zone = await client.nodes.objects.get_child(
            [f"{idx}:Line", f"{idx}:C1", f"{idx}:Zones", f"{idx}:Z03"]
        )
        speed_actual = await zone.get_child(f"{idx}:SpeedActual")
        with pytest.raises(ua.uaerrors.BadOutOfRange):
            await zone.call_method(f"{idx}:Jog", 99.0, 1.0)  # above the belt speed
        with pytest.raises(ua.uaerrors.BadInvalidArgument):
            await zone.call_method(f"{idx}:Jog", "fast", 1.0)
        await line.sorter.jog("Z03", 0.5, 20.0)  # 20 line s = 0.2 wall s at x100
        assert await speed_actual.read_value() == 0.5
        assert line.sim.zone_running("Z03") and not line.sim.zone_running("Z04")
        await eventually(lambda: not line.sim.zone_running("Z03"))
        assert await speed_actual.read_value() == 0.0
    # the tote moved towards the end of Z03 (4.5 m) and stopped short of it
    moved = line.sim.item_position(item_id)
    assert moved is not None and held_at < moved < 4.5
    with pytest.raises(CommandRejected, match="no zone"):
        await line.sorter.jog("Z99", 0.5, 1.0)
    await line.sorter.command("Unhold")
    await line.scan_of(item_id)  # production carries it on to the scanner


async def test_zones_show_their_belt_photo_eye_and_leading_item(line: Line) -> None:
    def zone(zone_id: str) -> ZoneSnapshot:
        return next(z for z in line.sorter.snapshot().zones if z.zone_id == zone_id)

    await eventually(lambda: all(z.running for z in line.sorter.snapshot().zones))
    assert [z.zone_id for z in line.sorter.snapshot().zones] == [f"Z{i:02}" for i in range(1, 25)]
    assert not zone("Z03").occupied and zone("Z03").item_id is None
    await line.sorter.command("Hold")  # the tote stays where it goes onto the belt
    await eventually(lambda: not zone("Z03").running)
    item_id = await line.sim.induct("TOTE-Z", "Z03")
    await eventually(lambda: zone("Z03").occupied is True)
    assert zone("Z03").item_id == item_id
    # a jam holds its zone and the two before it; the PLC stops their belts
    await line.sorter.command("Unhold")
    await line.sim.set_zone_jammed("Z12", True)
    await eventually(
        lambda: (
            [z.zone_id for z in line.sorter.snapshot().zones if not z.running]
            == ["Z10", "Z11", "Z12"]
        )
    )
    await line.sim.set_zone_jammed("Z12", False)
    await eventually(lambda: all(z.running for z in line.sorter.snapshot().zones))

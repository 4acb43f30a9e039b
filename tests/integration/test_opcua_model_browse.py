"""A generic asyncua client (not our adapter) finds the documented conveyor model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asyncua import Client, Node, ua
from asyncua.common.subscription import OpcEvent

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests import packml_unit

pytestmark = pytest.mark.integration


@pytest.fixture
async def sim(reference_line: LineConfig) -> AsyncIterator[ConveyorSimulator]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(reference_line, ScaledClock(50), endpoint) as s:
        yield s


@pytest.fixture
async def client(
    sim: ConveyorSimulator, reference_line: LineConfig
) -> AsyncIterator[tuple[Client, int]]:
    async with Client(sim.endpoint) as c:
        idx = await c.get_namespace_index(reference_line.conveyor.opcua.namespace)
        yield c, idx


async def names(node: Node) -> set[str]:
    return {(await child.read_browse_name()).Name for child in await node.get_children()}


async def test_browse_tree_matches_the_documented_model(
    client: tuple[Client, int], reference_line: LineConfig
) -> None:
    c, idx = client
    conv = reference_line.conveyor
    objects = c.nodes.objects
    assert {"Line", "Simulation"} <= await names(objects)
    conveyor = await objects.get_child([f"{idx}:Line", f"{idx}:{conv.id}"])
    unit = await names(conveyor)
    assert {"BaseStateMachine", "Status", "Admin", "Watchdog", "WatchdogTripped"} <= unit
    assert {"Zones", "Scanners", "Sorter"} <= unit
    # the state and the commands are OPC 30050's only, as on a vendor's PLC
    assert not {"State", "Start", "Stop", "Hold", "Unhold", "Reset"} & unit
    assert await packml_unit.state(conveyor) == "Execute"

    zones = await conveyor.get_child(f"{idx}:Zones")
    assert await names(zones) == {z.id for z in conv.zones}
    z01 = await zones.get_child(f"{idx}:Z01")
    expected = {"Running", "SpeedSetpoint", "SpeedActual", "Occupied", "ItemId", "Jammed"}
    assert expected <= await names(z01)
    speed = await z01.get_child(f"{idx}:SpeedActual")
    assert await speed.read_data_type_as_variant_type() == ua.VariantType.Double
    assert await (await z01.get_child(f"{idx}:ItemId")).read_value() == ""

    scanner = await conveyor.get_child([f"{idx}:Scanners", f"{idx}:{conv.scanner.id}"])
    notifier = await scanner.read_event_notifier()
    assert ua.EventNotifier.SubscribeToEvents in notifier

    sorter = await conveyor.get_child([f"{idx}:Sorter", f"{idx}:{conv.sorter.id}"])
    divert = await sorter.get_child(f"{idx}:Divert")
    assert await divert.read_node_class() == ua.NodeClass.Method
    inputs = await (await divert.get_child("0:InputArguments")).read_value()
    assert [a.Name for a in inputs] == ["ItemId", "Destination"]

    d1 = await sorter.get_child([f"{idx}:Diverts", f"{idx}:D1"])
    assert await (await d1.get_child(f"{idx}:Chute")).read_value() == "CH-DHL"
    chutes = await sorter.get_child(f"{idx}:Chutes")
    assert await names(chutes) == {ch.id for ch in conv.sorter.chutes}
    enabled = await chutes.get_child([f"{idx}:CH-DHL", f"{idx}:Enabled"])
    assert ua.AccessLevel.CurrentWrite in await enabled.get_access_level()
    count = await chutes.get_child([f"{idx}:CH-DHL", f"{idx}:Count"])
    assert await count.read_data_type_as_variant_type() == ua.VariantType.UInt32

    event_types = await c.nodes.root.get_child(["0:Types", "0:EventTypes", "0:BaseEventType"])
    scan_type = await event_types.get_child(f"{idx}:ScanEventType")
    assert {"ItemId", "Codes", "NoRead", "MultiRead"} <= await names(scan_type)
    divert_type = await event_types.get_child(f"{idx}:DivertCompletedEventType")
    assert {"ItemId", "ChuteId", "DivertId", "Success"} <= await names(divert_type)


async def test_generic_client_inducts_and_receives_the_scan_event(
    client: tuple[Client, int],
) -> None:
    c, idx = client
    scanner = await c.nodes.objects.get_child(
        [f"{idx}:Line", f"{idx}:C1", f"{idx}:Scanners", f"{idx}:SCAN1"]
    )
    scan_type = await c.nodes.root.get_child(
        ["0:Types", "0:EventTypes", "0:BaseEventType", f"{idx}:ScanEventType"]
    )
    async with await c.create_subscription(10, None) as sub:
        await sub.subscribe_events(scanner, scan_type, queuesize=100)
        simulation = await c.nodes.objects.get_child(f"{idx}:Simulation")
        item_id = await simulation.call_method(f"{idx}:Induct", "TOTE-1", "Z03")
        assert isinstance(item_id, str) and item_id
        notification = await sub.next_event(timeout=5)
    assert isinstance(notification, OpcEvent)
    event = notification.event
    assert (event.ItemId, event.Codes, event.NoRead, event.MultiRead) == (
        item_id,
        ["TOTE-1"],
        False,
        False,
    )
    assert event.SourceName == "SCAN1"
    with pytest.raises(ua.UaStatusCodeError):
        await simulation.call_method(f"{idx}:Induct", "TOTE-2", "NO-SUCH-ZONE")


async def test_write_to_enabled_disables_the_chute(
    client: tuple[Client, int], sim: ConveyorSimulator
) -> None:
    c, idx = client
    path = ["Line", "C1", "Sorter", "S1", "Chutes", "CH-DHL", "Enabled"]
    enabled = await c.nodes.objects.get_child([f"{idx}:{name}" for name in path])
    await enabled.write_value(ua.Variant(False, ua.VariantType.Boolean))
    assert await enabled.read_value() is False
    assert sim.chute("CH-DHL").enabled is False
    with pytest.raises(ua.UaStatusCodeError):
        await enabled.write_value(ua.Variant("no", ua.VariantType.String))
    chute = await enabled.get_parent()
    full = await chute.get_child(f"{idx}:Full")
    with pytest.raises(ua.UaStatusCodeError):  # read-only for clients
        await full.write_value(ua.Variant(True, ua.VariantType.Boolean))

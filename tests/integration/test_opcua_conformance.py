"""Both OPC UA simulators where OPC UA is strict and asyncua lenient, through a raw client:
arrays and method argument lists are one-dimensional (ValueRank 1, ArrayDimensions [0]), a write
to a read-only variable answers BadNotWritable, and a client subscribed only to the Server
object receives the scan, divert and crane completion events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asyncua import Client, Node, ua

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.asrs import AsrsSimulator
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator

pytestmark = pytest.mark.integration

WAIT = 10.0
EVENT_TYPES = ["0:Types", "0:EventTypes", "0:BaseEventType"]


@pytest.fixture
async def conveyor(reference_line: LineConfig) -> AsyncIterator[tuple[Client, int]]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with (
        ConveyorSimulator(reference_line, ScaledClock(50), endpoint),
        Client(endpoint) as client,
    ):
        yield client, await client.get_namespace_index(reference_line.conveyor.opcua.namespace)


@pytest.fixture
async def asrs(reference_line: LineConfig) -> AsyncIterator[tuple[Client, int]]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with (
        AsrsSimulator(reference_line, ScaledClock(200), endpoint),
        Client(endpoint) as client,
    ):
        yield client, await client.get_namespace_index(reference_line.asrs.opcua.namespace)


async def at(client: Client, idx: int, *path: str) -> Node:
    return await client.nodes.objects.get_child([f"{idx}:{p}" for p in path])


async def assert_one_dimension(node: Node) -> None:
    rank = await node.read_attribute(ua.AttributeIds.ValueRank)
    dims = await node.read_attribute(ua.AttributeIds.ArrayDimensions)
    assert rank.Value is not None and dims.Value is not None
    assert rank.Value.Value == ua.ValueRank.OneDimension, node
    assert dims.Value.Value == [0], node


async def arguments(method: Node) -> list[Node]:
    return [
        n
        for n in await method.get_properties()
        if (await n.read_browse_name()).Name in ("InputArguments", "OutputArguments")
    ]


class Collected:
    """A subscription handler keeping every event."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        self.events.append(event)

    async def first(self, match: Any, what: str) -> Any:
        async with asyncio.timeout(WAIT):
            while True:
                for event in self.events:
                    if match(event):
                        return event
                await asyncio.sleep(0.01)
        raise AssertionError(what)  # pragma: no cover - the timeout raises first


async def test_conveyor_arrays_and_method_arguments_are_one_dimensional(
    conveyor: tuple[Client, int],
) -> None:
    client, idx = conveyor
    sorter = await at(client, idx, "Line", "C1", "Sorter", "S1")
    checked = 0
    for name in ("Divert", "Tracking", "Journal"):
        for args in await arguments(await sorter.get_child(f"{idx}:{name}")):
            await assert_one_dimension(args)
            checked += 1
    induct = await at(client, idx, "Simulation", "Induct")
    for args in await arguments(induct):
        await assert_one_dimension(args)
        checked += 1
    assert checked == 6  # Divert in; Tracking out; Journal in, out; Induct in, out
    scan_type = await client.nodes.root.get_child([*EVENT_TYPES, f"{idx}:ScanEventType"])
    await assert_one_dimension(await scan_type.get_child(f"{idx}:Codes"))


async def test_asrs_arrays_and_method_arguments_are_one_dimensional(
    asrs: tuple[Client, int],
) -> None:
    client, idx = asrs
    crane = await at(client, idx, "Line", "Asrs", "CR1")
    await assert_one_dimension(await crane.get_child(f"{idx}:PdInput"))
    for name in ("Store", "Journal", "Contents"):
        for args in await arguments(await crane.get_child(f"{idx}:{name}")):
            await assert_one_dimension(args)


async def test_a_write_to_a_read_only_variable_is_not_writable(
    conveyor: tuple[Client, int], asrs: tuple[Client, int]
) -> None:
    client, idx = conveyor
    full = await at(client, idx, "Line", "C1", "Sorter", "S1", "Chutes", "CH-DHL", "Full")
    with pytest.raises(ua.uaerrors.BadNotWritable):
        await full.write_value(ua.Variant(True, ua.VariantType.Boolean))
    tripped = await at(client, idx, "Line", "C1", "WatchdogTripped")
    with pytest.raises(ua.uaerrors.BadNotWritable):
        await tripped.write_value(ua.Variant(True, ua.VariantType.Boolean))
    with pytest.raises(ua.uaerrors.BadNotWritable):  # an attribute other than Value
        await full.write_attribute(
            ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(ua.LocalizedText("x")))
        )
    enabled = await at(client, idx, "Line", "C1", "Sorter", "S1", "Chutes", "CH-DHL", "Enabled")
    await enabled.write_value(ua.Variant(True, ua.VariantType.Boolean))  # writable stays so
    client, idx = asrs
    state = await at(client, idx, "Line", "Asrs", "CR1", "State")
    with pytest.raises(ua.uaerrors.BadNotWritable):
        await state.write_value(ua.Variant("Fault", ua.VariantType.String))


async def test_a_client_subscribed_to_the_server_object_sees_scans_and_diverts(
    conveyor: tuple[Client, int],
) -> None:
    client, idx = conveyor
    scan_type = await client.nodes.root.get_child([*EVENT_TYPES, f"{idx}:ScanEventType"])
    divert_type = await client.nodes.root.get_child(
        [*EVENT_TYPES, f"{idx}:DivertCompletedEventType"]
    )
    collected = Collected()
    sub = await client.create_subscription(10, collected)
    await sub.subscribe_events(client.nodes.server, [scan_type, divert_type], queuesize=1000)
    simulation = await at(client, idx, "Simulation")
    item_id = await simulation.call_method(f"{idx}:Induct", "TOTE-SRV", "Z01")
    scan = await collected.first(lambda e: getattr(e, "ItemId", None) == item_id, "scan")
    assert scan.EventType == scan_type.nodeid and scan.Codes == ["TOTE-SRV"]
    assert scan.SourceName == "SCAN1"
    sorter = await at(client, idx, "Line", "C1", "Sorter", "S1")
    await sorter.call_method(f"{idx}:Divert", item_id, "CH-DHL")
    done = await collected.first(
        lambda e: e.EventType == divert_type.nodeid and e.ItemId == item_id, "divert"
    )
    assert (done.ChuteId, done.Success) == ("CH-DHL", True)
    assert len([e for e in collected.events if e.EventType == scan_type.nodeid]) == 1
    server_refs = await client.nodes.server.get_referenced_nodes(ua.ObjectIds.HasNotifier)
    assert (await at(client, idx, "Line", "C1", "Scanners", "SCAN1")) in server_refs


async def test_a_client_subscribed_to_the_server_object_sees_crane_completions(
    asrs: tuple[Client, int],
) -> None:
    client, idx = asrs
    etype = await client.nodes.root.get_child(
        [*EVENT_TYPES, f"{idx}:CraneCommandCompletedEventType"]
    )
    collected = Collected()
    sub = await client.create_subscription(10, collected)
    await sub.subscribe_events(client.nodes.server, etype, queuesize=1000)
    simulation = await at(client, idx, "Simulation")
    s = ua.VariantType.String
    await simulation.call_method(f"{idx}:ArriveAtPd", ua.Variant("T-SRV", s), ua.Variant("A1", s))
    crane = await at(client, idx, "Line", "Asrs", "CR1")
    await crane.call_method(
        f"{idx}:Store", ua.Variant("c-srv", s), ua.Variant("T-SRV", s), ua.Variant("A1-L-05-02", s)
    )
    done = await collected.first(lambda e: getattr(e, "CommandId", None) == "c-srv", "completion")
    assert done.Success and done.SourceName == "CR1"

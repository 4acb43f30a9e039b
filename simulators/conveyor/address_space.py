"""Builds the conveyor information model (see docs/opcua-model.md) in an asyncua server.

Only node creation lives here; what the methods do and how values change is in
:mod:`simulators.conveyor.bindings`. Every node gets a readable string NodeId
(``ns=<idx>;s=C1.Zones.Z01.Occupied``) for commissioning, but clients are expected to find nodes
by BrowseName paths, never by NodeId.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncua import Node, Server, ua

from controller.config.model import LineConfig
from simulators.conveyor.packml import PackMLCommand

MethodCallback = Callable[..., Awaitable[Any]]

SCAN_EVENT_TYPE = "ScanEventType"
DIVERT_EVENT_TYPE = "DivertCompletedEventType"

SCAN_FIELDS: tuple[tuple[str, ua.VariantType, bool], ...] = (
    ("ItemId", ua.VariantType.String, False),
    ("Codes", ua.VariantType.String, True),
    ("NoRead", ua.VariantType.Boolean, False),
    ("MultiRead", ua.VariantType.Boolean, False),
)
DIVERT_FIELDS: tuple[tuple[str, ua.VariantType, bool], ...] = (
    ("ItemId", ua.VariantType.String, False),
    ("ChuteId", ua.VariantType.String, False),
    ("DivertId", ua.VariantType.String, False),
    ("Success", ua.VariantType.Boolean, False),
    ("Sequence", ua.VariantType.UInt32, False),
)


@dataclass(frozen=True)
class ZoneNodes:
    running: Node
    speed_setpoint: Node
    speed_actual: Node
    occupied: Node
    item_id: Node
    jammed: Node


@dataclass(frozen=True)
class ChuteNodes:
    full: Node
    enabled: Node
    count: Node
    delivered: Node


@dataclass(frozen=True)
class ConveyorNodes:
    """Handles on every node the bindings write to or emit events from."""

    idx: int
    conveyor: Node
    state: Node
    watchdog: Node  # the controller's life-sign counter (written by the client)
    watchdog_tripped: Node
    zones: dict[str, ZoneNodes]
    scanners: dict[str, Node]
    sorter: Node
    diverts: dict[str, Node]
    chutes: dict[str, ChuteNodes]
    simulation: Node
    scan_event_type: Node
    divert_event_type: Node


@dataclass(frozen=True)
class MethodCallbacks:
    """asyncua method callbacks.

    Each is ``async (parent NodeId, *Variant) -> list[Variant] | StatusCode``.
    """

    packml: Callable[[PackMLCommand], MethodCallback]
    divert: MethodCallback
    induct: MethodCallback
    # the reconciliation methods; a server built without them is one that predates them
    tracking: MethodCallback | None = None
    journal: MethodCallback | None = None


def _arg(
    name: str, description: str, data_type: int = ua.ObjectIds.String, array: bool = False
) -> ua.Argument:
    return ua.Argument(
        Name=name,
        DataType=ua.NodeId(data_type),
        ValueRank=ua.ValueRank.OneDimension if array else ua.ValueRank.Scalar,
        ArrayDimensions=[0] if array else [],
        Description=ua.LocalizedText(description),
    )


def _array(name: str, description: str, data_type: int = ua.ObjectIds.String) -> ua.Argument:
    return _arg(name, description, data_type, array=True)


_UINT32 = ua.ObjectIds.UInt32
_BOOLEAN = ua.ObjectIds.Boolean


class _Builder:
    def __init__(self, server: Server, idx: int) -> None:
        self.server = server
        self.idx = idx

    def nid(self, path: Sequence[str]) -> ua.NodeId:
        return ua.NodeId(".".join(path), self.idx)

    def qn(self, name: str) -> ua.QualifiedName:
        return ua.QualifiedName(name, self.idx)

    async def obj(self, parent: Node, path: Sequence[str], folder: bool = False) -> Node:
        otype = ua.ObjectIds.FolderType if folder else ua.ObjectIds.BaseObjectType
        return await parent.add_object(self.nid(path), self.qn(path[-1]), objecttype=otype)

    async def var(
        self,
        parent: Node,
        path: Sequence[str],
        value: Any,
        vtype: ua.VariantType,
        writable: bool = False,
    ) -> Node:
        node = await parent.add_variable(
            self.nid(path), self.qn(path[-1]), value, varianttype=vtype
        )
        if writable:
            await node.set_writable()
        return node

    async def prop(
        self,
        parent: Node,
        path: Sequence[str],
        value: Any,
        vtype: ua.VariantType = ua.VariantType.String,
    ) -> Node:
        return await parent.add_property(
            self.nid(path), self.qn(path[-1]), value, varianttype=vtype
        )

    async def method(
        self,
        parent: Node,
        path: Sequence[str],
        callback: MethodCallback,
        inputs: Sequence[ua.Argument] = (),
        outputs: Sequence[ua.Argument] = (),
    ) -> Node:
        return await parent.add_method(
            self.nid(path), self.qn(path[-1]), callback, list(inputs), list(outputs)
        )

    async def event_type(
        self, name: str, fields: Sequence[tuple[str, ua.VariantType, bool]]
    ) -> Node:
        base = self.server.get_node(ua.ObjectIds.BaseEventType)
        etype = await base.add_object_type(self.nid(["Types", name]), self.qn(name))
        for field_name, vtype, is_array in fields:
            value: Any = [] if is_array else ua.get_default_value(vtype)
            prop = await etype.add_property(
                self.nid(["Types", name, field_name]), self.qn(field_name), value, varianttype=vtype
            )
            if is_array:
                await prop.write_attribute(
                    ua.AttributeIds.ValueRank,
                    ua.DataValue(ua.Variant(ua.ValueRank.OneDimension, ua.VariantType.Int32)),
                )
                await prop.write_attribute(
                    ua.AttributeIds.ArrayDimensions,
                    ua.DataValue(ua.Variant([0], ua.VariantType.UInt32)),
                )
            await prop.set_modelling_rule(True)
        return etype


async def build_address_space(
    server: Server, config: LineConfig, callbacks: MethodCallbacks
) -> ConveyorNodes:
    """Create the conveyor model under Objects and return handles on its nodes."""
    conv = config.conveyor
    idx = await server.register_namespace(conv.opcua.namespace)
    b = _Builder(server, idx)
    scan_type = await b.event_type(SCAN_EVENT_TYPE, SCAN_FIELDS)
    divert_type = await b.event_type(DIVERT_EVENT_TYPE, DIVERT_FIELDS)

    objects = server.nodes.objects
    line = await b.obj(objects, ["Line"], folder=True)
    root = [conv.id]
    conveyor = await b.obj(line, root)
    state = await b.var(conveyor, [*root, "State"], "Execute", ua.VariantType.String)
    watchdog = await b.var(conveyor, [*root, "Watchdog"], 0, ua.VariantType.UInt32, writable=True)
    await b.prop(conveyor, [*root, "WatchdogTimeout"], conv.watchdog.timeout, ua.VariantType.Double)
    watchdog_tripped = await b.var(
        conveyor, [*root, "WatchdogTripped"], False, ua.VariantType.Boolean
    )
    for command in PackMLCommand:
        await b.method(conveyor, [*root, command.value], callbacks.packml(command))

    zones_folder = await b.obj(conveyor, [*root, "Zones"], folder=True)
    zones: dict[str, ZoneNodes] = {}
    for zone in conv.zones:
        zp = [*root, "Zones", zone.id]
        z = await b.obj(zones_folder, zp)
        zones[zone.id] = ZoneNodes(
            running=await b.var(z, [*zp, "Running"], True, ua.VariantType.Boolean),
            speed_setpoint=await b.var(
                z, [*zp, "SpeedSetpoint"], conv.belt_speed, ua.VariantType.Double
            ),
            speed_actual=await b.var(
                z, [*zp, "SpeedActual"], conv.belt_speed, ua.VariantType.Double
            ),
            occupied=await b.var(z, [*zp, "Occupied"], False, ua.VariantType.Boolean),
            item_id=await b.var(z, [*zp, "ItemId"], "", ua.VariantType.String),
            jammed=await b.var(z, [*zp, "Jammed"], False, ua.VariantType.Boolean),
        )

    scanners_folder = await b.obj(conveyor, [*root, "Scanners"], folder=True)
    sp = [*root, "Scanners", conv.scanner.id]
    scanner = await b.obj(scanners_folder, sp)
    await b.prop(scanner, [*sp, "Zone"], conv.scanner.zone)

    sorter_folder = await b.obj(conveyor, [*root, "Sorter"], folder=True)
    sop = [*root, "Sorter", conv.sorter.id]
    sorter = await b.obj(sorter_folder, sop)
    await b.method(
        sorter,
        [*sop, "Divert"],
        callbacks.divert,
        [_arg("ItemId", "Tracking id of the item"), _arg("Destination", "Chute id")],
    )
    if callbacks.tracking is not None:
        await b.method(
            sorter,
            [*sop, "Tracking"],
            callbacks.tracking,
            [],
            [
                _array("ItemIds", "Tracking id of every item the loop knows"),
                _array("ToteIds", "Tote of each item"),
                _array("Zones", "Zone of the item's front; induction zone while waiting"),
                _array("OnBelt", "False while the tote waits at its induction", _BOOLEAN),
                _array("Requested", "Chute of a pending Divert request, empty if none"),
            ],
        )
    if callbacks.journal is not None:
        await b.method(
            sorter,
            [*sop, "Journal"],
            callbacks.journal,
            [_arg("Since", "Entries with a higher sequence number are returned", _UINT32)],
            [
                _arg("Last", "Highest sequence number so far", _UINT32),
                _array("Sequences", "Sequence number of each entry", _UINT32),
                _array("ItemIds", "Item of each entry"),
                _array("ToteIds", "Tote of each entry"),
                _array("ChuteIds", "Chute of each entry"),
                _array("Ok", "The item left into the chute (false: refused, it rode on)", _BOOLEAN),
            ],
        )
    diverts_folder = await b.obj(sorter, [*sop, "Diverts"], folder=True)
    diverts: dict[str, Node] = {}
    for divert in conv.sorter.diverts:
        dp = [*sop, "Diverts", divert.id]
        d = diverts[divert.id] = await b.obj(diverts_folder, dp)
        await b.prop(d, [*dp, "Chute"], divert.chute)
        await b.prop(d, [*dp, "Zone"], divert.zone)
    chutes_folder = await b.obj(sorter, [*sop, "Chutes"], folder=True)
    chutes: dict[str, ChuteNodes] = {}
    for chute in conv.sorter.chutes:
        cp = [*sop, "Chutes", chute.id]
        c = await b.obj(chutes_folder, cp)
        await b.prop(c, [*cp, "Kind"], chute.kind.value)
        chutes[chute.id] = ChuteNodes(
            full=await b.var(c, [*cp, "Full"], False, ua.VariantType.Boolean),
            enabled=await b.var(c, [*cp, "Enabled"], True, ua.VariantType.Boolean, writable=True),
            count=await b.var(c, [*cp, "Count"], 0, ua.VariantType.UInt32),
            delivered=await b.var(c, [*cp, "Delivered"], 0, ua.VariantType.UInt32),
        )

    simulation = await b.obj(objects, ["Simulation"])
    await b.method(
        simulation,
        ["Simulation", "Induct"],
        callbacks.induct,
        [_arg("ToteId", "Code on the tote"), _arg("ZoneId", "Zone the tote is placed on")],
        [_arg("ItemId", "Tracking id the conveyor gives the item")],
    )
    return ConveyorNodes(
        idx=idx,
        conveyor=conveyor,
        state=state,
        watchdog=watchdog,
        watchdog_tripped=watchdog_tripped,
        zones=zones,
        scanners={conv.scanner.id: scanner},
        sorter=sorter,
        diverts=diverts,
        chutes=chutes,
        simulation=simulation,
        scan_event_type=scan_type,
        divert_event_type=divert_type,
    )

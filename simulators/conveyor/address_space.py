"""Builds the conveyor information model (see docs/opcua-model.md) in an asyncua server.

Only node creation lives here; what the methods do and how values change is in
:mod:`simulators.conveyor.bindings`. The unit itself is an OPC 30050 ``PackMLBaseObjectType``
(:mod:`simulators.conveyor.packml_unit`); linectl's own nodes are added under it. The Server object
is the notifier of the scanners and diverts (HasNotifier), so a client subscribed to the Server
object alone sees every scan and divert event. Every node gets a readable string NodeId
(``ns=<idx>;s=C1.Zones.Z01.Occupied``) for commissioning, but clients are expected to find nodes by
BrowseName paths, never by NodeId.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asyncua import Node, Server, ua

from kernel.config.model import LineConfig
from simulators.conveyor.packml_unit import PackMLCallbacks, PackMLUnitNodes, build_packml_unit
from simulators.opcua_nodes import Builder, MethodCallback, answer_not_writable, arg, array

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
    packml: PackMLUnitNodes
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

    packml: PackMLCallbacks
    divert: MethodCallback
    induct: MethodCallback
    # the reconciliation methods; a server built without them is one that predates them
    tracking: MethodCallback | None = None
    journal: MethodCallback | None = None
    jog: Callable[[str], MethodCallback] | None = None  # per zone id


_arg = arg
_array = array
_Builder = Builder
_UINT32 = ua.ObjectIds.UInt32
_BOOLEAN = ua.ObjectIds.Boolean
_DOUBLE = ua.ObjectIds.Double


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
    conveyor, packml = await build_packml_unit(
        server, line, b.nid(root), b.qn(conv.id), conv.belt_speed, callbacks.packml
    )
    answer_not_writable(server)
    watchdog = await b.var(conveyor, [*root, "Watchdog"], 0, ua.VariantType.UInt32, writable=True)
    await b.prop(conveyor, [*root, "WatchdogTimeout"], conv.watchdog.timeout, ua.VariantType.Double)
    watchdog_tripped = await b.var(
        conveyor, [*root, "WatchdogTripped"], False, ua.VariantType.Boolean
    )

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
        if callbacks.jog is not None:
            await b.method(
                z,
                [*zp, "Jog"],
                callbacks.jog(zone.id),
                [
                    _arg("Speed", "Belt speed in m/s, above 0 and at most belt_speed", _DOUBLE),
                    _arg("Duration", "Seconds to run, above 0 and at most 60", _DOUBLE),
                ],
            )

    scanners_folder = await b.obj(conveyor, [*root, "Scanners"], folder=True)
    sp = [*root, "Scanners", conv.scanner.id]
    scanner = await b.obj(scanners_folder, sp)
    await b.prop(scanner, [*sp, "Zone"], conv.scanner.zone)
    await b.notifier(server.nodes.server, scanner)

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
        await b.notifier(server.nodes.server, d)
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
        packml=packml,
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

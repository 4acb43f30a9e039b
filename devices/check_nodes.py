"""The OPC UA nodes a commissioning check expects: the model docs/opcua-model.md describes.

:func:`expected_nodes` lists every node the conveyor's server must offer for the configured
zones, scanner, sorter, diverts and chutes (``Simulation`` is simulator-only and not expected);
:func:`expected_crane_nodes` every node of the configured AS/RS cranes. Each :class:`Expected`
says where the node is (by browse path under Objects, or under the event types), its node class
and, for variables, its data type. The conveyor unit's state machine, commands and status are
OPC 30050's (PackML): their steps are :class:`Std` names, in the PackML namespace or OPC UA's.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncua import ua

from devices.opcua.browse import DIVERT_EVENT_TYPE, SCAN_EVENT_TYPE
from devices.opcua.packml import COMMAND_LEVELS, LEVEL_PATHS, PACKML_NAMESPACE, Level
from kernel.config.model import LineConfig

OPCUA_NAMESPACE = "http://opcfoundation.org/UA/"


@dataclass(frozen=True)
class Std:
    """A BrowseName in a standard namespace (``uri``) rather than the line's."""

    name: str
    uri: str = PACKML_NAMESPACE

    def __str__(self) -> str:
        return self.name


Step = str | Std
ZONE_VARIABLES = (
    ("Running", ua.VariantType.Boolean),
    ("SpeedSetpoint", ua.VariantType.Double),
    ("SpeedActual", ua.VariantType.Double),
    ("Occupied", ua.VariantType.Boolean),
    ("ItemId", ua.VariantType.String),
    ("Jammed", ua.VariantType.Boolean),
)
CHUTE_VARIABLES = (
    ("Kind", ua.VariantType.String),
    ("Full", ua.VariantType.Boolean),
    ("Enabled", ua.VariantType.Boolean),
    ("Count", ua.VariantType.UInt32),
    ("Delivered", ua.VariantType.UInt32),
)
EVENT_FIELDS = {
    SCAN_EVENT_TYPE: (
        ("ItemId", ua.VariantType.String),
        ("Codes", ua.VariantType.String),
        ("NoRead", ua.VariantType.Boolean),
        ("MultiRead", ua.VariantType.Boolean),
    ),
    DIVERT_EVENT_TYPE: (
        ("ItemId", ua.VariantType.String),
        ("ChuteId", ua.VariantType.String),
        ("DivertId", ua.VariantType.String),
        ("Success", ua.VariantType.Boolean),
        ("Sequence", ua.VariantType.UInt32),
    ),
}
CRANE_VARIABLES = (
    ("Aisle", ua.VariantType.String),
    ("State", ua.VariantType.String),
    ("PositionX", ua.VariantType.Double),
    ("PositionY", ua.VariantType.Double),
    ("CurrentCommand", ua.VariantType.String),
    ("QueueLength", ua.VariantType.UInt32),
    ("Fault", ua.VariantType.String),
    ("PdInput", ua.VariantType.String),  # an array (ValueRank 1)
)
CRANE_METHODS = ("Store", "Retrieve", "DualCommand", "ClearFault", "Journal", "Contents")
CRANE_EVENT_TYPE = "CraneCommandCompletedEventType"
CRANE_EVENT_FIELDS = (
    ("CommandId", ua.VariantType.String),
    ("ToteId", ua.VariantType.String),
    ("Location", ua.VariantType.String),
    ("Kind", ua.VariantType.String),
    ("Success", ua.VariantType.Boolean),
    ("Reason", ua.VariantType.String),
    ("Sequence", ua.VariantType.UInt32),
)
EVENT_TYPES_PATH = ("Types", "EventTypes", "BaseEventType")  # namespace 0


@dataclass(frozen=True)
class Expected:
    """A node the model requires: where (under Objects, or under the event types), its class,
    and for variables their data type."""

    path: tuple[Step, ...]
    node_class: ua.NodeClass
    data_type: ua.VariantType | None = None
    event_notifier: bool = False
    under_types: bool = False

    @property
    def name(self) -> str:
        steps = (*EVENT_TYPES_PATH, *self.path) if self.under_types else self.path
        return "/".join(str(step) for step in steps)


def expected_nodes(config: LineConfig) -> list[Expected]:
    """Every node docs/opcua-model.md implies for ``config.conveyor`` (``Simulation`` is
    simulator-only and not expected)."""
    conv = config.conveyor
    obj, var, meth = ua.NodeClass.Object, ua.NodeClass.Variable, ua.NodeClass.Method
    base = ("Line", conv.id)
    sorter = (*base, "Sorter", conv.sorter.id)
    out = [Expected(("Line",), obj), Expected(base, obj), *packml_nodes(base)]
    out += [
        Expected((*base, "Watchdog"), var, ua.VariantType.UInt32),
        Expected((*base, "WatchdogTimeout"), var, ua.VariantType.Double),
        Expected((*base, "WatchdogTripped"), var, ua.VariantType.Boolean),
    ]
    out.append(Expected((*base, "Zones"), obj))
    for zone in conv.zones:
        zp = (*base, "Zones", zone.id)
        out.append(Expected(zp, obj))
        out += [Expected((*zp, name), var, vtype) for name, vtype in ZONE_VARIABLES]
        out.append(Expected((*zp, "Jog"), meth))
    sp = (*base, "Scanners", conv.scanner.id)
    out += [
        Expected((*base, "Scanners"), obj),
        Expected(sp, obj, event_notifier=True),
        Expected((*sp, "Zone"), var, ua.VariantType.String),
        Expected((*base, "Sorter"), obj),
        Expected(sorter, obj),
        Expected((*sorter, "Divert"), meth),
        Expected((*sorter, "Tracking"), meth),
        Expected((*sorter, "Journal"), meth),
        Expected((*sorter, "Diverts"), obj),
    ]
    for divert in conv.sorter.diverts:
        dp = (*sorter, "Diverts", divert.id)
        out.append(Expected(dp, obj, event_notifier=True))
        out += [Expected((*dp, p), var, ua.VariantType.String) for p in ("Chute", "Zone")]
    out.append(Expected((*sorter, "Chutes"), obj))
    for chute in conv.sorter.chutes:
        cp = (*sorter, "Chutes", chute.id)
        out.append(Expected(cp, obj))
        out += [Expected((*cp, name), var, vtype) for name, vtype in CHUTE_VARIABLES]
    for type_name, fields in EVENT_FIELDS.items():
        out.append(Expected((type_name,), ua.NodeClass.ObjectType, under_types=True))
        out += [Expected((type_name, name), var, vtype, under_types=True) for name, vtype in fields]
    return out


def current_states(unit: tuple[Step, ...]) -> list[Expected]:
    """``CurrentState`` of the unit's three state machines, outermost first."""
    return [
        Expected(
            (*unit, *map(Std, LEVEL_PATHS[level]), Std("CurrentState", OPCUA_NAMESPACE)),
            ua.NodeClass.Variable,
            ua.VariantType.LocalizedText,
        )
        for level in Level
    ]


def packml_nodes(unit: tuple[Step, ...]) -> list[Expected]:
    """The OPC 30050 nodes of the unit linectl uses: each state machine with its
    ``CurrentState`` and ``Id``, and its command methods."""
    obj, var, meth = ua.NodeClass.Object, ua.NodeClass.Variable, ua.NodeClass.Method
    out: list[Expected] = []
    for level, current in zip(Level, current_states(unit), strict=True):
        machine = (*unit, *map(Std, LEVEL_PATHS[level]))
        out += [
            Expected(machine, obj),
            current,
            Expected((*current.path, Std("Id", OPCUA_NAMESPACE)), var, ua.VariantType.NodeId),
        ]
        out += [
            Expected((*machine, Std(command)), meth)
            for command, levels in COMMAND_LEVELS.items()
            if level in levels
        ]
    return out


def expected_crane_nodes(config: LineConfig) -> list[Expected]:
    """Every node docs/opcua-model.md (Cranes) implies for ``config.asrs``."""
    obj, var, meth = ua.NodeClass.Object, ua.NodeClass.Variable, ua.NodeClass.Method
    out = [Expected(("Line",), obj), Expected(("Line", "Asrs"), obj)]
    for aisle in config.asrs.aisles:
        cp = ("Line", "Asrs", aisle.crane.id)
        out.append(Expected(cp, obj, event_notifier=True))
        out += [Expected((*cp, name), var, vtype) for name, vtype in CRANE_VARIABLES]
        out += [Expected((*cp, m), meth) for m in CRANE_METHODS]
    out.append(Expected((CRANE_EVENT_TYPE,), ua.NodeClass.ObjectType, under_types=True))
    out += [
        Expected((CRANE_EVENT_TYPE, name), var, vtype, under_types=True)
        for name, vtype in CRANE_EVENT_FIELDS
    ]
    return out

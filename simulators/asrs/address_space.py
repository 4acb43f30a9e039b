"""Builds the AS/RS information model (see docs/opcua-model.md, Cranes) in an asyncua server.

Only node creation lives here; what the methods do and how values change is in
:mod:`simulators.asrs.bindings`. Nodes get readable string NodeIds
(``ns=<idx>;s=Asrs.CR1.State``) for commissioning; clients find them by BrowseName paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from asyncua import Node, Server, ua

from kernel.config.model import LineConfig
from simulators.opcua_nodes import Builder, MethodCallback, answer_not_writable, arg, array

COMPLETED_EVENT_TYPE = "CraneCommandCompletedEventType"

COMPLETED_FIELDS: tuple[tuple[str, ua.VariantType, bool], ...] = (
    ("CommandId", ua.VariantType.String, False),
    ("ToteId", ua.VariantType.String, False),
    ("Location", ua.VariantType.String, False),
    ("Kind", ua.VariantType.String, False),
    ("Success", ua.VariantType.Boolean, False),
    ("Reason", ua.VariantType.String, False),
    ("Sequence", ua.VariantType.UInt32, False),
    ("Dual", ua.VariantType.Boolean, False),
    ("CycleSeconds", ua.VariantType.Double, False),
)

_UINT32 = ua.ObjectIds.UInt32
_BOOLEAN = ua.ObjectIds.Boolean
_DOUBLE = ua.ObjectIds.Double


@dataclass(frozen=True)
class CraneNodes:
    crane: Node
    state: Node
    position_x: Node
    position_y: Node
    current_command: Node
    queue_length: Node
    fault: Node
    load: Node
    pd_input: Node


@dataclass(frozen=True)
class AsrsNodes:
    idx: int
    cranes: dict[str, CraneNodes]  # by aisle id
    completed_event_type: Node


@dataclass(frozen=True)
class CraneCallbacks:
    """asyncua method callbacks of one crane: ``async (parent, *Variant) -> outputs | status``."""

    store: MethodCallback
    retrieve: MethodCallback
    dual: MethodCallback
    clear_fault: MethodCallback
    journal: MethodCallback
    contents: MethodCallback


@dataclass(frozen=True)
class AsrsCallbacks:
    crane: Callable[[str], CraneCallbacks]  # by aisle id
    arrive_at_pd: MethodCallback
    set_fault: MethodCallback
    block_location: MethodCallback


def _transport_args(prefix: str = "") -> list[ua.Argument]:
    return [
        arg(f"{prefix}ToteId", "Tote to move"),
        arg(f"{prefix}Location", "Rack location id, <aisle>-<L|R>-<bay>-<level>"),
    ]


_COMMAND_ID = arg("CommandId", "Chosen by the client; the same id is never executed twice")


async def build_address_space(
    server: Server, config: LineConfig, callbacks: AsrsCallbacks
) -> AsrsNodes:
    """Create the AS/RS model under Objects and return handles on its nodes."""
    idx = await server.register_namespace(config.asrs.opcua.namespace)
    b = Builder(server, idx)
    answer_not_writable(server)
    completed = await b.event_type(COMPLETED_EVENT_TYPE, COMPLETED_FIELDS)
    objects = server.nodes.objects
    line = await b.obj(objects, ["Line"], folder=True)
    asrs = await b.obj(line, ["Asrs"], folder=True)
    cranes: dict[str, CraneNodes] = {}
    for aisle in config.asrs.aisles:
        cp = ["Asrs", aisle.crane.id]
        c = await b.obj(asrs, cp)
        await b.notifier(server.nodes.server, c)  # completions reach the Server object too
        await b.prop(c, [*cp, "Aisle"], aisle.id)
        cb = callbacks.crane(aisle.id)
        await b.method(c, [*cp, "Store"], cb.store, [_COMMAND_ID, *_transport_args()])
        await b.method(c, [*cp, "Retrieve"], cb.retrieve, [_COMMAND_ID, *_transport_args()])
        await b.method(
            c,
            [*cp, "DualCommand"],
            cb.dual,
            [_COMMAND_ID, *_transport_args("Store"), *_transport_args("Retrieve")],
        )
        await b.method(c, [*cp, "ClearFault"], cb.clear_fault)
        await b.method(
            c,
            [*cp, "Journal"],
            cb.journal,
            [arg("Since", "Entries with a higher sequence number are returned", _UINT32)],
            [
                arg("Last", "Highest sequence number so far", _UINT32),
                array("Sequences", "Sequence number of each entry", _UINT32),
                array("CommandIds", "Command of each entry"),
                array("Kinds", "Store or Retrieve"),
                array("ToteIds", "Tote of each entry"),
                array("Locations", "Rack location of each entry"),
                array("Success", "The transport was carried out", _BOOLEAN),
                array("Reasons", "Why it failed, empty when it succeeded"),
                array("Dual", "Part of a dual cycle", _BOOLEAN),
                array("CycleSeconds", "Seconds of the crane's cycle", _DOUBLE),
            ],
        )
        await b.method(
            c,
            [*cp, "Contents"],
            cb.contents,
            [],
            [
                array("Locations", "Every occupied location of the rack"),
                array("ToteIds", "The tote in each"),
            ],
        )
        cranes[aisle.id] = CraneNodes(
            crane=c,
            state=await b.var(c, [*cp, "State"], "Idle", ua.VariantType.String),
            position_x=await b.var(c, [*cp, "PositionX"], 0.0, ua.VariantType.Double),
            position_y=await b.var(c, [*cp, "PositionY"], 0.0, ua.VariantType.Double),
            current_command=await b.var(c, [*cp, "CurrentCommand"], "", ua.VariantType.String),
            queue_length=await b.var(c, [*cp, "QueueLength"], 0, ua.VariantType.UInt32),
            fault=await b.var(c, [*cp, "Fault"], "", ua.VariantType.String),
            load=await b.var(c, [*cp, "Load"], "", ua.VariantType.String),
            pd_input=await b.var(c, [*cp, "PdInput"], [], ua.VariantType.String),
        )

    simulation = await b.obj(objects, ["Simulation"])
    sp = ["Simulation"]
    await b.method(
        simulation,
        [*sp, "ArriveAtPd"],
        callbacks.arrive_at_pd,
        [arg("ToteId", "Tote set down at the P&D input"), arg("Aisle", "Aisle id")],
    )
    await b.method(
        simulation,
        [*sp, "SetFault"],
        callbacks.set_fault,
        [arg("CraneId", "Crane id"), arg("Text", "Fault text; empty clears the fault")],
    )
    await b.method(
        simulation,
        [*sp, "BlockLocation"],
        callbacks.block_location,
        [arg("Location", "Rack location id"), arg("Blocked", "Block or release", _BOOLEAN)],
    )
    return AsrsNodes(idx=idx, cranes=cranes, completed_event_type=completed)

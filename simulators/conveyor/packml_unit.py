"""The conveyor unit as an OPC 30050 (PackML) object, built from the official NodeSet.

:func:`build_packml_unit` loads the NodeSet shipped in :mod:`devices.opcua.nodesets` into the
server and instantiates ``PackMLBaseObjectType`` as the conveyor unit: its ``BaseStateMachine``
with ``MachineState`` and ``ExecuteState`` (each ``CurrentState`` with ``Id`` and ``Number``),
``Status`` and ``Admin``, and the mandatory unit methods. It adds the optional parts a line
needs: the command methods of the three state machines (docs/opcua-model.md lists them) and
``Admin.StopReason``. linectl's own nodes (watchdog, zones, scanners, sorter) are added under the
same object by :mod:`simulators.conveyor.address_space`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from asyncua import Node, Server, ua
from asyncua.common.instantiate_util import instantiate

from devices.opcua.nodesets import PACKML_NODESET
from devices.opcua.packml import (
    COMMAND_LEVELS,
    FSM_TYPE,
    FSM_TYPES_PATH,
    LEVEL_PATHS,
    PACKML_NAMESPACE,
    STATE_MACHINE_TYPES,
    Level,
)
from simulators.opcua_nodes import MethodCallback

PRODUCE = 1  # ProductionMaintenanceModeEnum.Produce, the one unit mode a conveyor loop has
_FLOAT = ua.VariantType.Float


@dataclass(frozen=True)
class StateNodes:
    """``CurrentState`` of one state machine, with its ``Id`` and ``Number``."""

    current: Node
    id: Node
    number: Node


@dataclass(frozen=True)
class PackMLUnitNodes:
    """The standard nodes the bindings write to."""

    pidx: int
    levels: dict[Level, StateNodes]
    states: dict[str, ua.NodeId]  # state name -> the state object its type defines
    unit_mode: Node  # Status.UnitModeCurrent
    mach_speed: Node  # Status.MachSpeed, the speed setpoint (m/s)
    cur_mach_speed: Node  # Status.CurMachSpeed, the belt speed now (m/s)
    stop_reason: Node  # Admin.StopReason (PackMLAlarmDataType)


@dataclass(frozen=True)
class PackMLCallbacks:
    command: Callable[[str, Level], MethodCallback]  # command name, state machine
    set_mach_speed: MethodCallback
    set_unit_mode: MethodCallback
    not_supported: MethodCallback  # SetProduct, SetParameter


async def build_packml_unit(
    server: Server,
    parent: Node,
    nodeid: ua.NodeId,
    name: ua.QualifiedName,
    belt_speed: float,
    callbacks: PackMLCallbacks,
) -> tuple[Node, PackMLUnitNodes]:
    """Load OPC 30050 and create the unit ``name`` under ``parent``; returns the unit object
    and the standard nodes the bindings write."""
    xml = await asyncio.to_thread(PACKML_NODESET.read_text, encoding="utf-8")
    await server.import_xml(xmlstring=xml)
    pidx = await server.get_namespace_index(PACKML_NAMESPACE)
    root = server.nodes.root

    def q(*names: str) -> list[str]:
        return [f"{pidx}:{n}" for n in names]

    fsm = [f"0:{n}" for n in (*FSM_TYPES_PATH, FSM_TYPE)]
    unit_type = await root.get_child(
        ["0:Types", "0:ObjectTypes", "0:BaseObjectType", *q("PackMLBaseObjectType")]
    )
    unit = (
        await instantiate(
            parent,
            unit_type,
            nodeid=nodeid,
            bname=name,
            dname=ua.LocalizedText(name.Name),
            instantiate_optional=False,
        )
    )[0]
    levels: dict[Level, StateNodes] = {}
    states: dict[str, ua.NodeId] = {}
    for level, path in LEVEL_PATHS.items():
        machine = await unit.get_child(q(*path))
        current = await machine.get_child("0:CurrentState")
        number = await current.add_property(
            ua.NodeId(f"{current.nodeid.Identifier}.Number", nodeid.NamespaceIndex),
            ua.QualifiedName("Number", 0),
            0,
            varianttype=ua.VariantType.UInt32,
        )
        levels[level] = StateNodes(current, await current.get_child("0:Id"), number)
        for command, on in COMMAND_LEVELS.items():
            if level in on:
                await _method(machine, command, pidx, callbacks.command(command, level))
        sm_type = await root.get_child([*fsm, *q(STATE_MACHINE_TYPES[level])])
        for ref in await sm_type.get_children_descriptions(
            refs=ua.ObjectIds.HasComponent, nodeclassmask=ua.NodeClass.Object
        ):
            if ref.TypeDefinition == ua.NodeId(ua.ObjectIds.StateType):
                states[ref.BrowseName.Name] = ref.NodeId
    for method, callback in (
        ("SetMachSpeed", callbacks.set_mach_speed),
        ("SetUnitMode", callbacks.set_unit_mode),
        ("SetProduct", callbacks.not_supported),
        ("SetParameter", callbacks.not_supported),
    ):
        method_node = await unit.get_child(q(method))
        server.link_method(method_node, callback)
    status = await unit.get_child(q("Status"))
    nodes = PackMLUnitNodes(
        pidx=pidx,
        levels=levels,
        states=states,
        unit_mode=await status.get_child(q("UnitModeCurrent")),
        mach_speed=await status.get_child(q("MachSpeed")),
        cur_mach_speed=await status.get_child(q("CurMachSpeed")),
        stop_reason=await _stop_reason(server, await unit.get_child(q("Admin")), pidx),
    )
    await _status(status, nodes, pidx, belt_speed)
    return unit, nodes


async def _method(machine: Node, command: str, pidx: int, callback: MethodCallback) -> None:
    nodeid = ua.NodeId(f"{machine.nodeid.Identifier}.{command}", machine.nodeid.NamespaceIndex)
    await machine.add_method(nodeid, ua.QualifiedName(command, pidx), callback, [], [])


async def _status(status: Node, nodes: PackMLUnitNodes, pidx: int, belt_speed: float) -> None:
    """Unit mode Produce (the modes are ProductionMaintenanceModeEnum's); a fixed-speed drive:
    MachSpeed and its EURange are the belt speed, CurMachSpeed follows the belts."""
    enum = ua.NodeId(11, pidx)  # ProductionMaintenanceModeEnum (PackML.NodeIds.csv)
    await nodes.unit_mode.write_attribute(
        ua.AttributeIds.DataType, ua.DataValue(ua.Variant(enum, ua.VariantType.NodeId))
    )
    await nodes.unit_mode.write_value(ua.Variant(PRODUCE, ua.VariantType.Int32))
    supported = await status.get_child(f"{pidx}:UnitSupportedModes")
    await supported.write_value(ua.Variant(enum, ua.VariantType.NodeId))
    fixed = ua.Range(Low=belt_speed, High=belt_speed)
    for node in (nodes.mach_speed, nodes.cur_mach_speed):
        await node.write_value(ua.Variant(belt_speed, _FLOAT))
        await (await node.get_child("0:EURange")).write_value(ua.Variant(fixed))
    for name in ("EquipmentBlocked", "EquipmentStarved"):
        await (await status.get_child(f"{pidx}:{name}")).write_value(False)


async def _stop_reason(server: Server, admin: Node, pidx: int) -> Node:
    """``Admin.StopReason`` (optional in OPC 30050, referenced with HasStopReason)."""
    item = ua.AddNodesItem(
        ParentNodeId=admin.nodeid,
        ReferenceTypeId=ua.NodeId(25, pidx),  # HasStopReason
        RequestedNewNodeId=ua.NodeId(
            f"{admin.nodeid.Identifier}.StopReason", admin.nodeid.NamespaceIndex
        ),
        BrowseName=ua.QualifiedName("StopReason", pidx),
        NodeClass=ua.NodeClass.Variable,
        TypeDefinition=ua.NodeId(ua.ObjectIds.BaseDataVariableType),
        NodeAttributes=ua.VariableAttributes(
            DisplayName=ua.LocalizedText("StopReason"),
            DataType=ua.NodeId(15, pidx),  # PackMLAlarmDataType
            ValueRank=ua.ValueRank.Scalar,
            AccessLevel=ua.AccessLevel.CurrentRead.mask,
            UserAccessLevel=ua.AccessLevel.CurrentRead.mask,
            Value=ua.Variant(ua.PackMLAlarmDataType()),
        ),
    )
    result = (await server.iserver.isession.add_nodes([item]))[0]
    result.StatusCode.check()
    return server.get_node(result.AddedNodeId)

"""The PackML unit as OPC 30050 models it, found on any server by browse path.

OPC 30050 (PackML, namespace ``http://opcfoundation.org/UA/PackML/``) nests three finite state
machines in a ``PackMLBaseObjectType`` unit: ``BaseStateMachine`` (Aborting, Aborted, Cleared),
its sub-machine ``MachineState`` (Clearing, Stopped, Stopping, Running) that is active while the
unit is Cleared, and that one's ``ExecuteState`` (Idle, Starting, Execute, Holding, Held, ...)
active while it is Running. Each has a ``CurrentState`` whose ``Id`` names the state object the
state machine type defines; the commands are methods of the machine whose states they leave:
``Abort``/``Clear`` of the base machine, ``Stop``/``Reset`` of ``MachineState``, ``Start``,
``Hold``, ``Unhold``, ``Suspend``, ``Unsuspend`` (and ``Reset`` out of Complete) of
``ExecuteState``.

:func:`resolve_packml` finds those nodes under a unit by browse path and reads the state
objects of the three state machine types (no NodeId is known in advance), and
:meth:`RemotePackML.state_name` turns the three ``Id`` values into the one PackML state name
the rest of linectl speaks (``Execute``, ``Held``, ``Stopped``, ``Aborted``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from asyncua import Client, Node, ua

K = TypeVar("K")

PACKML_NAMESPACE = "http://opcfoundation.org/UA/PackML/"


class Level(StrEnum):
    """The three nested state machines of a PackML unit, named by their BrowseName."""

    BASE = "BaseStateMachine"
    MACHINE = "MachineState"
    EXECUTE = "ExecuteState"


# browse path of each state machine under the unit (PackML namespace)
LEVEL_PATHS: dict[Level, tuple[str, ...]] = {
    Level.BASE: ("BaseStateMachine",),
    Level.MACHINE: ("BaseStateMachine", "MachineState"),
    Level.EXECUTE: ("BaseStateMachine", "MachineState", "ExecuteState"),
}
# the type of each, under Types/ObjectTypes/BaseObjectType/StateMachineType/FiniteStateMachineType
STATE_MACHINE_TYPES: dict[Level, str] = {
    Level.BASE: "PackMLBaseStateMachineType",
    Level.MACHINE: "PackMLMachineStateMachineType",
    Level.EXECUTE: "PackMLExecuteStateMachineType",
}
FSM_TYPES_PATH = ("Types", "ObjectTypes", "BaseObjectType", "StateMachineType")
FSM_TYPE = "FiniteStateMachineType"
# which state machine offers each command (Reset is on two: out of Stopped, out of Complete)
COMMAND_LEVELS: dict[str, tuple[Level, ...]] = {
    "Abort": (Level.BASE,),
    "Clear": (Level.BASE,),
    "Stop": (Level.MACHINE,),
    "Reset": (Level.MACHINE, Level.EXECUTE),
    "Start": (Level.EXECUTE,),
    "Hold": (Level.EXECUTE,),
    "Unhold": (Level.EXECUTE,),
    "Suspend": (Level.EXECUTE,),
    "Unsuspend": (Level.EXECUTE,),
}
# the standard state numbers (OPC 30050, the StateNumber of each state object)
STATE_NUMBERS: dict[str, int] = {
    "Clearing": 1,
    "Stopped": 2,
    "Starting": 3,
    "Idle": 4,
    "Suspended": 5,
    "Execute": 6,
    "Stopping": 7,
    "Aborting": 8,
    "Aborted": 9,
    "Holding": 10,
    "Held": 11,
    "Unholding": 12,
    "Suspending": 13,
    "Unsuspending": 14,
    "Resetting": 15,
    "Completing": 16,
    "Complete": 17,
    "Running": 18,
    "Cleared": 19,
}
_BASE_OWN = frozenset({"Aborting", "Aborted"})
_MACHINE_OWN = frozenset({"Clearing", "Stopped", "Stopping"})


class PackMLMismatch(Exception):
    """The server lacks a node OPC 30050 requires of a PackML unit."""


@dataclass(frozen=True)
class RemotePackML:
    """Handles on a unit's standard PackML nodes."""

    machines: dict[Level, Node]  # the state machine objects (their methods are called on them)
    state_ids: dict[Level, Node]  # each machine's CurrentState/Id
    methods: dict[tuple[Level, str], Node]  # the command methods the server offers
    states: dict[ua.NodeId, str]  # state object NodeId -> state name, from the types

    def state_name(self, ids: Mapping[Level, object]) -> str:
        """The innermost active state, from each machine's ``CurrentState/Id`` (None for a
        machine that is not active); ``Unknown`` when the Ids name no known state."""
        names = {level: self.states.get(v) for level, v in ids.items() if isinstance(v, ua.NodeId)}
        base, machine = names.get(Level.BASE), names.get(Level.MACHINE)
        if base in _BASE_OWN:
            return base
        if machine in _MACHINE_OWN:
            return machine
        return names.get(Level.EXECUTE) or machine or base or "Unknown"

    def method_for(self, command: str, state: str) -> tuple[Node, Node] | None:
        """The state machine and method that carry ``command`` in ``state``, None when the
        server does not offer it (``Reset`` out of Complete is the execute machine's)."""
        levels = COMMAND_LEVELS.get(command, ())
        if command == "Reset":
            levels = (Level.EXECUTE,) if state == "Complete" else (Level.MACHINE,)
        for level in levels:
            method = self.methods.get((level, command))
            if method is not None:
                return self.machines[level], method
        return None

    async def read_state(self) -> str:
        """Read the three ``CurrentState/Id`` values in one request: the state name."""
        levels = list(self.state_ids)
        params = ua.ReadParameters(
            NodesToRead=[
                ua.ReadValueId(
                    NodeId=self.state_ids[level].nodeid, AttributeId=ua.AttributeIds.Value
                )
                for level in levels
            ]
        )
        results = await self.state_ids[Level.BASE].session.read(params)
        values = [r.Value.Value if r.Value is not None else None for r in results]
        return self.state_name(dict(zip(levels, values, strict=True)))


async def resolve_packml(client: Client, unit: Node) -> RemotePackML:
    """Find the standard PackML nodes under ``unit``; raises PackMLMismatch."""
    try:
        pidx = await client.get_namespace_index(PACKML_NAMESPACE)
    except ValueError:
        raise PackMLMismatch(f"namespace {PACKML_NAMESPACE} not on the server") from None

    def path(level: Level, *tail: ua.QualifiedName) -> list[ua.QualifiedName]:
        return [*(ua.QualifiedName(n, pidx) for n in LEVEL_PATHS[level]), *tail]

    current_id = (ua.QualifiedName("CurrentState", 0), ua.QualifiedName("Id", 0))
    required: dict[str, list[ua.QualifiedName]] = {}
    optional: dict[str, list[ua.QualifiedName]] = {}
    for level in Level:
        required[f"machine:{level}"] = path(level)
        required[f"id:{level}"] = path(level, *current_id)
    for command, levels in COMMAND_LEVELS.items():
        for level in levels:
            optional[f"{level}:{command}"] = path(level, ua.QualifiedName(command, pidx))
    found = await _translate(unit, required)
    missing = [k for k in required if k not in found]
    if missing:
        names = ", ".join("/".join(q.Name for q in required[k]) for k in missing)
        raise PackMLMismatch(f"PackML nodes not found under the unit: {names}")
    offered = await _translate(unit, optional)
    methods = {
        (level, command): offered[f"{level}:{command}"]
        for command, levels in COMMAND_LEVELS.items()
        for level in levels
        if f"{level}:{command}" in offered
    }
    return RemotePackML(
        machines={level: found[f"machine:{level}"] for level in Level},
        state_ids={level: found[f"id:{level}"] for level in Level},
        methods=methods,
        states=await _state_objects(client, pidx),
    )


async def _state_objects(client: Client, pidx: int) -> dict[ua.NodeId, str]:
    """Every state object the three PackML state machine types define, by NodeId."""
    base = [ua.QualifiedName(n, 0) for n in (*FSM_TYPES_PATH, FSM_TYPE)]
    paths = {
        level: [*base, ua.QualifiedName(name, pidx)] for level, name in STATE_MACHINE_TYPES.items()
    }
    types = await _translate(client.nodes.root, paths)
    if len(types) != len(paths):
        raise PackMLMismatch("the PackML state machine types are not on the server")
    states: dict[ua.NodeId, str] = {}
    state_types = {ua.NodeId(ua.ObjectIds.StateType), ua.NodeId(ua.ObjectIds.InitialStateType)}
    for node in types.values():
        for ref in await node.get_children_descriptions(
            refs=ua.ObjectIds.HasComponent, nodeclassmask=ua.NodeClass.Object
        ):
            if ref.TypeDefinition in state_types:
                states[ref.NodeId] = ref.BrowseName.Name
    return states


async def _translate(start: Node, paths: Mapping[K, list[ua.QualifiedName]]) -> dict[K, Node]:
    keys = list(paths)
    found = await start.get_children_by_path([paths[k] for k in keys], raise_on_partial_error=False)
    return {k: nodes[0] for k, nodes in zip(keys, found, strict=True) if nodes and nodes[0]}

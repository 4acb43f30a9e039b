"""A raw asyncua client's view of an OPC 30050 (PackML) unit, for tests that talk to the
conveyor simulator without linectl's adapter: the state machines under the unit by browse path,
the state as the innermost active machine's ``CurrentState``, and the standard commands."""

from __future__ import annotations

from asyncua import Node, ua

PACKML = "http://opcfoundation.org/UA/PackML/"
MACHINES = (
    ("BaseStateMachine",),
    ("BaseStateMachine", "MachineState"),
    ("BaseStateMachine", "MachineState", "ExecuteState"),
)
# the machine (index into MACHINES) whose method each command is; Reset out of Stopped
COMMAND_MACHINE = {
    "Abort": 0,
    "Clear": 0,
    "Stop": 1,
    "Reset": 1,
    "Start": 2,
    "Hold": 2,
    "Unhold": 2,
    "Suspend": 2,
    "Unsuspend": 2,
}


async def packml_index(unit: Node) -> int:
    array = Node(unit.session, ua.NodeId(ua.ObjectIds.Server_NamespaceArray))
    namespaces = await array.read_value()
    assert PACKML in namespaces, namespaces
    return int(namespaces.index(PACKML))


async def machine(unit: Node, level: int) -> Node:
    pidx = await packml_index(unit)
    return await unit.get_child([f"{pidx}:{name}" for name in MACHINES[level]])


async def state(unit: Node) -> str:
    """The state name of the innermost active state machine (inactive ones read
    Bad_StateNotActive)."""
    name = "Unknown"
    for level in range(len(MACHINES)):
        current = await (await machine(unit, level)).get_child("0:CurrentState")
        value = await current.read_data_value(raise_on_bad_status=False)
        if value.StatusCode is not None and value.StatusCode.is_good() and value.Value:
            text = value.Value.Value
            assert isinstance(text, ua.LocalizedText) and text.Text
            name = text.Text
    return name


async def command(unit: Node, name: str, *args: object) -> None:
    """Call the standard method ``name``; raises the server's Bad status."""
    sm = await machine(unit, COMMAND_MACHINE[name])
    pidx = await packml_index(unit)
    await sm.call_method(f"{pidx}:{name}", *args)

"""The conveyor unit as a generic OPC 30050 (PackML) client sees it: the companion
specification's types, each state machine's CurrentState with its Id and Number, the standard
state numbers, the unit mode and speed tags, and the command methods where the specification
puts them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from asyncua import Client, Node, ua

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.packml_unit import PACKML, command, machine, state

pytestmark = pytest.mark.integration

# OPC 30050's StateNumber of each state
NUMBERS = {"Stopped": 2, "Idle": 4, "Execute": 6, "Aborted": 9, "Held": 11, "Running": 18}
NUMBERS |= {"Cleared": 19, "Suspended": 5}


@dataclass
class Unit:
    client: Client
    pidx: int
    node: Node
    belt_speed: float

    async def child(self, *names: str) -> Node:
        return await self.node.get_child([f"{self.pidx}:{n}" for n in names])


@pytest.fixture
async def unit(reference_line: LineConfig) -> AsyncIterator[Unit]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with (
        ConveyorSimulator(reference_line, ScaledClock(50), endpoint),
        Client(endpoint) as client,
    ):
        idx = await client.get_namespace_index(reference_line.conveyor.opcua.namespace)
        pidx = await client.get_namespace_index(PACKML)
        node = await client.nodes.objects.get_child([f"{idx}:Line", f"{idx}:C1"])
        yield Unit(client, pidx, node, reference_line.conveyor.belt_speed)


async def type_name(node: Node) -> ua.QualifiedName:
    typedef = await node.read_type_definition()
    assert typedef is not None
    return await Node(node.session, typedef).read_browse_name()


async def levels(u: Unit) -> list[tuple[str | None, int | None]]:
    """(state name via CurrentState/Id, Number) of each machine, None when not active."""
    out: list[tuple[str | None, int | None]] = []
    for level in range(3):
        current = await (await machine(u.node, level)).get_child("0:CurrentState")
        state_id = await (await current.get_child("0:Id")).read_data_value(False)
        number = await (await current.get_child("0:Number")).read_data_value(False)
        if state_id.StatusCode is not None and not state_id.StatusCode.is_good():
            assert state_id.StatusCode.value == ua.StatusCodes.BadStateNotActive
            assert number.StatusCode is not None
            assert number.StatusCode.value == ua.StatusCodes.BadStateNotActive
            out.append((None, None))
            continue
        assert state_id.Value is not None and number.Value is not None
        target = Node(u.client.uaclient, state_id.Value.Value)
        name = (await target.read_browse_name()).Name
        # the Id names a state object of the type, and Number is that state's StateNumber
        assert await type_name(target) == ua.QualifiedName("StateType", 0)
        assert await (await target.get_child("0:StateNumber")).read_value() == number.Value.Value
        out.append((name, number.Value.Value))
    return out


async def test_the_unit_is_an_instance_of_the_packml_types(unit: Unit) -> None:
    assert await type_name(unit.node) == ua.QualifiedName("PackMLBaseObjectType", unit.pidx)
    expected = {
        ("BaseStateMachine",): "PackMLBaseStateMachineType",
        ("BaseStateMachine", "MachineState"): "PackMLMachineStateMachineType",
        ("BaseStateMachine", "MachineState", "ExecuteState"): "PackMLExecuteStateMachineType",
        ("Status",): "PackMLStatusObjectType",
        ("Admin",): "PackMLAdminObjectType",
    }
    for path, type_ in expected.items():
        node = await unit.child(*path)
        assert await type_name(node) == ua.QualifiedName(type_, unit.pidx), path


async def test_current_state_id_and_number_follow_the_commands(unit: Unit) -> None:
    assert await levels(unit) == [("Cleared", 19), ("Running", 18), ("Execute", 6)]
    await command(unit.node, "Hold")
    assert await levels(unit) == [("Cleared", 19), ("Running", 18), ("Held", 11)]
    await command(unit.node, "Stop")
    assert await levels(unit) == [("Cleared", 19), ("Stopped", 2), (None, None)]
    await command(unit.node, "Abort")
    assert await levels(unit) == [("Aborted", 9), (None, None), (None, None)]
    text = await (await unit.child("BaseStateMachine")).get_child("0:CurrentState")
    assert (await text.read_value()).Text == "Aborted"
    await command(unit.node, "Clear")
    assert await state(unit.node) == "Stopped"


async def test_commands_live_on_the_state_machine_the_specification_puts_them(
    unit: Unit,
) -> None:
    expected = {
        ("BaseStateMachine",): {"Abort", "Clear"},
        ("BaseStateMachine", "MachineState"): {"Stop", "Reset"},
        ("BaseStateMachine", "MachineState", "ExecuteState"): {
            "Start",
            "Hold",
            "Unhold",
            "Suspend",
            "Unsuspend",
            "Reset",
        },
    }
    for path, methods in expected.items():
        sm = await unit.child(*path)
        found = {
            (await n.read_browse_name()).Name
            for n in await sm.get_children(nodeclassmask=ua.NodeClass.Method)
        }
        assert found == methods, path
    # Reset leaves Stopped on MachineState, Complete on ExecuteState: not the other way round
    await command(unit.node, "Stop")
    execute = await unit.child("BaseStateMachine", "MachineState", "ExecuteState")
    with pytest.raises(ua.uaerrors.BadInvalidState):
        await execute.call_method(f"{unit.pidx}:Reset")
    machine_state = await unit.child("BaseStateMachine", "MachineState")
    await machine_state.call_method(f"{unit.pidx}:Reset")
    assert await state(unit.node) == "Idle"
    with pytest.raises(ua.uaerrors.BadInvalidState):
        await machine_state.call_method(f"{unit.pidx}:Reset")


async def test_status_tags_unit_mode_and_speed(unit: Unit) -> None:
    status = await unit.child("Status")

    async def read(name: str) -> object:
        return await (await status.get_child(f"{unit.pidx}:{name}")).read_value()

    assert await read("UnitModeCurrent") == 1  # Produce
    modes = await read("UnitSupportedModes")
    assert isinstance(modes, ua.NodeId)
    enum_name = await Node(unit.client.uaclient, modes).read_browse_name()
    assert enum_name == ua.QualifiedName("ProductionMaintenanceModeEnum", unit.pidx)
    assert await read("MachSpeed") == pytest.approx(unit.belt_speed)
    assert await read("CurMachSpeed") == pytest.approx(unit.belt_speed)
    await command(unit.node, "Hold")
    assert await read("CurMachSpeed") == 0.0
    assert await read("MachSpeed") == pytest.approx(unit.belt_speed)

    speed = ua.Variant(unit.belt_speed, ua.VariantType.Float)
    await unit.node.call_method(f"{unit.pidx}:SetMachSpeed", speed)
    with pytest.raises(ua.uaerrors.BadOutOfRange):  # a fixed-speed drive: EURange is one speed
        await unit.node.call_method(
            f"{unit.pidx}:SetMachSpeed", ua.Variant(unit.belt_speed / 2, ua.VariantType.Float)
        )
    await unit.node.call_method(f"{unit.pidx}:SetUnitMode", ua.Variant(1, ua.VariantType.Int32))
    with pytest.raises(ua.uaerrors.BadNotSupported):  # Maintenance
        await unit.node.call_method(f"{unit.pidx}:SetUnitMode", ua.Variant(2, ua.VariantType.Int32))
    assert await read("UnitModeCurrent") == 1
    reason = await (await unit.child("Admin", "StopReason")).read_value()
    assert (reason.ID, reason.Message) == (0, "")

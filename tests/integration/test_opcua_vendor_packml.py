"""linectl's PackML client against a server built like a vendor's PLC, not like the simulator.

The server here knows nothing of linectl: it loads the OPC 30050 NodeSet, names its own
namespace, puts a ``PackMLBaseObjectType`` unit called ``Packer`` straight under Objects with
numeric NodeIds, and offers only the commands it implements (``Hold`` and ``Unhold`` on its
execute state machine, ``Stop`` on its machine state machine). The adapter's
:func:`~devices.opcua.packml.resolve_packml` finds the unit's standard nodes by browse path,
reads its state from the three ``CurrentState/Id`` values, and commands it through the methods
the server offers; a command the server lacks is known as such before anything is sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from asyncua import Client, Node, Server, ua
from asyncua.common.instantiate_util import instantiate

from devices.opcua.nodesets import PACKML_NODESET
from devices.opcua.packml import PACKML_NAMESPACE, Level, PackMLMismatch, resolve_packml
from simulators.broker import free_port

pytestmark = pytest.mark.integration

VENDOR_NAMESPACE = "urn:example-vendor:packer-plc"


@dataclass
class VendorPlc:
    url: str
    pidx: int
    ids: dict[Level, Node]  # each state machine's CurrentState/Id
    state_objects: dict[str, ua.NodeId]  # state name -> its object in the PackML types
    calls: list[str]

    async def set_state(self, base: str, machine: str | None, execute: str | None) -> None:
        for level, name in ((Level.BASE, base), (Level.MACHINE, machine), (Level.EXECUTE, execute)):
            value = self.state_objects[name] if name is not None else ua.NodeId()
            await self.ids[level].write_value(ua.Variant(value, ua.VariantType.NodeId))


async def _state_objects(server: Server, pidx: int) -> dict[str, ua.NodeId]:
    """The state objects of the three PackML state machine types, read from the NodeSet."""
    fsm = server.nodes.root
    path = ["0:Types", "0:ObjectTypes", "0:BaseObjectType", "0:StateMachineType"]
    out: dict[str, ua.NodeId] = {}
    for sm_type in (
        "PackMLBaseStateMachineType",
        "PackMLMachineStateMachineType",
        "PackMLExecuteStateMachineType",
    ):
        node = await fsm.get_child([*path, "0:FiniteStateMachineType", f"{pidx}:{sm_type}"])
        for ref in await node.get_children_descriptions(
            refs=ua.ObjectIds.HasComponent, nodeclassmask=ua.NodeClass.Object
        ):
            out[ref.BrowseName.Name] = ref.NodeId
    return out


@pytest.fixture
async def vendor_plc() -> AsyncIterator[VendorPlc]:
    url = f"opc.tcp://127.0.0.1:{free_port()}/packer/"
    server = Server()
    await server.init()
    server.set_endpoint(url)
    server.set_server_name("Example Vendor Packer PLC")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    xml = await asyncio.to_thread(PACKML_NODESET.read_text, encoding="utf-8")
    await server.import_xml(xmlstring=xml)
    pidx = await server.get_namespace_index(PACKML_NAMESPACE)
    vidx = await server.register_namespace(VENDOR_NAMESPACE)
    unit_type = await server.nodes.root.get_child(
        ["0:Types", "0:ObjectTypes", "0:BaseObjectType", f"{pidx}:PackMLBaseObjectType"]
    )
    unit, *_ = await instantiate(
        server.nodes.objects,
        unit_type,
        nodeid=ua.NodeId(5000, vidx),
        bname=ua.QualifiedName("Packer", vidx),
        dname=ua.LocalizedText("Packer"),
        instantiate_optional=False,
    )
    base = await unit.get_child(f"{pidx}:BaseStateMachine")
    machine = await base.get_child(f"{pidx}:MachineState")
    execute = await machine.get_child(f"{pidx}:ExecuteState")
    ids = {
        level: await sm.get_child(["0:CurrentState", "0:Id"])
        for level, sm in ((Level.BASE, base), (Level.MACHINE, machine), (Level.EXECUTE, execute))
    }
    plc = VendorPlc(url, pidx, ids, await _state_objects(server, pidx), [])

    def command(name: str, then: tuple[str, str | None, str | None]) -> Callable[..., object]:
        async def call(parent: ua.NodeId) -> list[ua.Variant]:
            plc.calls.append(name)
            await plc.set_state(*then)
            return []

        return call

    for sm, name, then in (
        (execute, "Hold", ("Cleared", "Running", "Held")),
        (execute, "Unhold", ("Cleared", "Running", "Execute")),
        (machine, "Stop", ("Cleared", "Stopped", None)),
    ):
        await sm.add_method(
            ua.NodeId(f"Packer.{name}", vidx), ua.QualifiedName(name, pidx), command(name, then)
        )
    await plc.set_state("Cleared", "Running", "Execute")
    async with server:
        yield plc


async def test_the_adapter_reads_and_commands_a_vendor_packml_unit(vendor_plc: VendorPlc) -> None:
    async with Client(vendor_plc.url) as client:
        vidx = await client.get_namespace_index(VENDOR_NAMESPACE)
        unit = await client.nodes.objects.get_child(f"{vidx}:Packer")
        packml = await resolve_packml(client, unit)
        assert await packml.read_state() == "Execute"

        found = packml.method_for("Hold", "Execute")
        assert found is not None
        machine, method = found
        await machine.call_method(method)
        assert vendor_plc.calls == ["Hold"]
        assert await packml.read_state() == "Held"

        unhold = packml.method_for("Unhold", "Held")
        assert unhold is not None
        await unhold[0].call_method(unhold[1])
        assert await packml.read_state() == "Execute"

        stop = packml.method_for("Stop", "Execute")
        assert stop is not None
        await stop[0].call_method(stop[1])
        # the execute machine is no longer active (its Id is null): the state is the machine's
        assert await packml.read_state() == "Stopped"

        # what this PLC does not implement is known without a call
        assert packml.method_for("Suspend", "Execute") is None
        assert packml.method_for("Reset", "Stopped") is None
        assert vendor_plc.calls == ["Hold", "Unhold", "Stop"]


async def test_a_server_without_opc_30050_is_named_as_such() -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/plain/"
    server = Server()
    await server.init()
    server.set_endpoint(url)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace(VENDOR_NAMESPACE)
    await server.nodes.objects.add_object(idx, "Packer")
    async with server, Client(url) as client:
        unit = await client.nodes.objects.get_child(f"{idx}:Packer")
        with pytest.raises(PackMLMismatch, match=re.escape(f"namespace {PACKML_NAMESPACE} ")):
            await resolve_packml(client, unit)

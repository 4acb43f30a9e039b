"""The client side of the conveyor contract: a generic asyncua client that knows nothing but the
namespace URIs and the browse paths of the documented model (docs/opcua-model.md) and of
OPC 30050 (PackML), so the simulator is held to the documents and not to linectl's own adapter.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import OpcEvent, Subscription

from tests.contract.driver import Accepted, ChuteLevel, Completion, Driver, Outcome, Refused, Scan

# OPC 30050: the nested state machines under the unit, innermost last, and their commands
from tests.packml_unit import COMMAND_MACHINE, MACHINES, PACKML


def _utc(value: Any) -> datetime:
    assert isinstance(value, datetime), f"event Time is {value!r}"
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class ClientDriver(Driver):
    """A generic asyncua client: the namespace URI and the documented browse paths, no more."""

    kind = "client"
    shows_status = True

    async def open(self) -> None:
        conv = self.config.conveyor
        self._client = Client(self.sim.endpoint)
        await self._client.connect()
        self._idx = await self._client.get_namespace_index(conv.opcua.namespace)
        self._conveyor = await self._find(self._client.nodes.objects, "Line", conv.id)
        pidx = await self._client.get_namespace_index(PACKML)
        self._machines = [
            await self._conveyor.get_child([f"{pidx}:{name}" for name in path]) for path in MACHINES
        ]
        self._state_ids = [
            await machine.get_child(["0:CurrentState", "0:Id"]) for machine in self._machines
        ]
        self._pidx = pidx
        self._sorter = await self._find(self._conveyor, "Sorter", conv.sorter.id)
        self._simulation = await self._find(self._client.nodes.objects, "Simulation")
        types = await self._client.nodes.root.get_child(
            ["0:Types", "0:EventTypes", "0:BaseEventType"]
        )
        self._scan_type = await self._find(types, "ScanEventType")
        self._divert_type = await self._find(types, "DivertCompletedEventType")
        self._sub: Subscription = await self._client.create_subscription(5, None)
        scanner = await self._find(self._conveyor, "Scanners", conv.scanner.id)
        await self._sub.subscribe_events(scanner, self._scan_type, queuesize=1000)
        for d in conv.sorter.diverts:
            divert = await self._find(self._sorter, "Diverts", d.id)
            await self._sub.subscribe_events(divert, self._divert_type, queuesize=1000)
        self._reader = asyncio.create_task(self._read_events(), name="contract.client.events")

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._client.disconnect()

    async def _find(self, start: Node, *names: str) -> Node:
        return await start.get_child([f"{self._idx}:{name}" for name in names])

    async def _read_events(self) -> None:
        async for item in self._sub:
            if not isinstance(item, OpcEvent):
                continue
            event = item.event
            if event.EventType == self._scan_type.nodeid:
                await self.events.put(
                    Scan(
                        scanner_id=event.SourceName,
                        item_id=event.ItemId,
                        codes=tuple(event.Codes or ()),
                        at=_utc(event.Time),
                        no_read=event.NoRead,
                        multi_read=event.MultiRead,
                    )
                )
            elif event.EventType == self._divert_type.nodeid:
                await self.events.put(
                    Completion(
                        divert_id=event.DivertId,
                        item_id=event.ItemId,
                        chute_id=event.ChuteId,
                        ok=event.Success,
                        at=_utc(event.Time),
                    )
                )

    async def _call(self, node: Node, method: str, *args: str | float) -> Outcome:
        variants = [
            ua.Variant(a, ua.VariantType.String if isinstance(a, str) else ua.VariantType.Double)
            for a in args
        ]
        try:
            await node.call_method(f"{self._idx}:{method}", *variants)
        except ua.UaStatusCodeError as exc:
            return Refused(ua.StatusCode(exc.code).name, str(exc))
        return Accepted()

    async def command(self, name: str) -> Outcome:
        level = COMMAND_MACHINE[name]
        if name == "Reset" and await self.state() == "Complete":
            level = 2
        machine = self._machines[level]
        try:
            await machine.call_method(f"{self._pidx}:{name}")
        except ua.UaStatusCodeError as exc:
            return Refused(ua.StatusCode(exc.code).name, str(exc))
        return Accepted()

    async def state(self) -> str:
        """The innermost active state machine's state: the BrowseName of the state object its
        ``CurrentState/Id`` names (an inactive machine's value is Bad_StateNotActive)."""
        name = "Unknown"
        for node in self._state_ids:
            value = await node.read_data_value(raise_on_bad_status=False)
            if value.StatusCode is not None and value.StatusCode.is_good():
                state_id = value.Value.Value if value.Value is not None else None
                assert isinstance(state_id, ua.NodeId), state_id
                name = (await self._client.get_node(state_id).read_browse_name()).Name
        return name

    async def divert(self, item_id: str, chute_id: str) -> Outcome:
        return await self._call(self._sorter, "Divert", item_id, chute_id)

    async def jog(self, zone_id: str, speed: float, seconds: float) -> Outcome:
        zone = await self._find(self._conveyor, "Zones", zone_id)
        return await self._call(zone, "Jog", speed, seconds)

    async def chute(self, chute_id: str) -> ChuteLevel:
        chute = await self._find(self._sorter, "Chutes", chute_id)
        full, enabled, count = [
            await (await self._find(chute, name)).read_value()
            for name in ("Full", "Enabled", "Count")
        ]
        return ChuteLevel(full=full, enabled=enabled, count=count)

    async def alive(self) -> bool:
        try:
            await self._state_ids[0].read_value()
        except (ua.UaError, OSError, TimeoutError):
            return False
        return not self._reader.done()

    async def _induct(self, tote_id: str, zone_id: str) -> str:
        item_id = await self._simulation.call_method(
            f"{self._idx}:Induct",
            ua.Variant(tote_id, ua.VariantType.String),
            ua.Variant(zone_id, ua.VariantType.String),
        )
        assert isinstance(item_id, str) and item_id
        return str(item_id)

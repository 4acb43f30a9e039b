"""How the conveyor model's facts reach the address space: variable writes and events.

Zone, chute and belt facts become variable writes (only when a value changes), scans and
diverts become events stamped with the line time they happened at; the PackML state goes to
the standard nodes of OPC 30050.
"""

from __future__ import annotations

from collections.abc import Iterable

from asyncua import Server, ua

from devices.opcua.packml import STATE_NUMBERS
from simulators.conveyor.address_space import ConveyorNodes
from simulators.conveyor.facts import (
    ChuteChanged,
    DivertFinished,
    Fact,
    ItemRead,
    ZoneChanged,
    ZoneJamChanged,
    ZoneMotionChanged,
)
from simulators.conveyor.packml import active_states
from simulators.conveyor.unit import ConveyorUnit, StopReason
from simulators.opcua_nodes import EventSource, event_source
from simulators.opcua_server.writer import NodeWriter

STRING = ua.VariantType.String
UINT32 = ua.VariantType.UInt32
BOOLEAN = ua.VariantType.Boolean
DOUBLE = ua.VariantType.Double


class ConveyorPublisher:
    """Writes the unit's state and the model's facts to the nodes of one server."""

    def __init__(self, unit: ConveyorUnit, server: Server, writer: NodeWriter) -> None:
        self._unit = unit
        self._server = server
        self._writer = writer
        self._scan_events: dict[str, EventSource] = {}
        self._divert_events: dict[str, EventSource] = {}

    async def attach(self, nodes: ConveyorNodes) -> None:
        """Create the event generators of the scanners and diverts."""
        for scanner_id, node in nodes.scanners.items():
            self._scan_events[scanner_id] = await event_source(
                self._server, nodes.scan_event_type, node
            )
        for divert_id, node in nodes.diverts.items():
            self._divert_events[divert_id] = await event_source(
                self._server, nodes.divert_event_type, node
            )

    async def write_tripped(self, tripped: bool) -> None:
        await self._writer.write(self._unit.attached().watchdog_tripped, tripped, BOOLEAN)

    async def write_state(self, stop_reason: StopReason | None = None) -> None:
        """The PackML state on the standard nodes: each state machine's ``CurrentState``,
        ``Id`` and ``Number`` (``Bad_StateNotActive`` for a machine that is not active), and
        the belt speed now; ``stop_reason`` replaces ``Admin.StopReason`` when given."""
        unit, write = self._unit.attached().packml, self._writer.write
        machine = self._unit.machine
        for level, name in active_states(machine.state).items():
            nodes = unit.levels[level]
            if name is None:
                for node in (nodes.current, nodes.id, nodes.number):
                    await self._writer.write_inactive(node)
                continue
            await write(nodes.current, ua.LocalizedText(name), ua.VariantType.LocalizedText)
            await write(nodes.id, unit.states[name], ua.VariantType.NodeId)
            await write(nodes.number, STATE_NUMBERS[name], UINT32)
        speed = self._unit.belt_speed if machine.producing else 0.0
        await write(unit.cur_mach_speed, speed, ua.VariantType.Float)
        if stop_reason is not None:
            clock = self._unit.clock
            alarm = ua.PackMLAlarmDataType(
                ID=stop_reason.value,
                Value=stop_reason.value,
                Message=stop_reason.message,
                Category=0,
                DateTime=clock.utcnow(),
                AckDateTime=clock.utcnow(),
                Trigger=stop_reason is not StopReason.NONE,
            )
            await write(unit.stop_reason, alarm, ua.VariantType.ExtensionObject)

    async def publish(self, facts: Iterable[Fact]) -> None:
        nodes, write = self._unit.attached(), self._writer.write
        for fact in facts:
            match fact:
                case ZoneChanged(zone_id, occupied, item_id):
                    zone = nodes.zones[zone_id]
                    await write(zone.occupied, occupied, BOOLEAN)
                    await write(zone.item_id, item_id, STRING)
                case ZoneMotionChanged(zone_id, running, speed):
                    zone = nodes.zones[zone_id]
                    await write(zone.running, running, BOOLEAN)
                    await write(zone.speed_actual, speed, DOUBLE)
                case ZoneJamChanged(zone_id, jammed):
                    await write(nodes.zones[zone_id].jammed, jammed, BOOLEAN)
                case ChuteChanged(chute_id, count, full, enabled, delivered):
                    chute = nodes.chutes[chute_id]
                    await write(chute.count, count, UINT32)
                    await write(chute.full, full, BOOLEAN)
                    await write(chute.enabled, enabled, BOOLEAN)
                    await write(chute.delivered, delivered, UINT32)
                case ItemRead():
                    await self._emit_scan(fact)
                case DivertFinished():
                    await self._emit_divert(fact)

    async def _emit_scan(self, fact: ItemRead) -> None:
        gen = self._scan_events[fact.scanner_id]
        ev = gen.event
        ev.ItemId = fact.item_id
        ev.Codes = list(fact.codes)
        ev.NoRead = fact.no_read
        ev.MultiRead = fact.multi_read
        ev.Severity = 100
        message = f"read {','.join(fact.codes)}" if fact.codes else "no read"
        await gen.trigger(time_attr=self._writer.utc_at(fact.at), message=message)

    async def _emit_divert(self, fact: DivertFinished) -> None:
        gen = self._divert_events[fact.divert_id]
        ev = gen.event
        ev.ItemId = fact.item_id
        ev.ChuteId = fact.chute_id
        ev.DivertId = fact.divert_id
        ev.Success = fact.success
        ev.Sequence = fact.sequence
        ev.Severity = 100 if fact.success else 300
        message = f"{fact.item_id} -> {fact.chute_id}" if fact.success else "divert refused"
        await gen.trigger(time_attr=self._writer.utc_at(fact.at), message=message)

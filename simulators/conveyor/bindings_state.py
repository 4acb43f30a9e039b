"""The state the conveyor simulator's OPC UA bindings share, and how facts reach the address space.

:class:`BindingsState` holds the motion model, the PackML machine, the one lock every change
goes through, the event generators and the last value written to each variable. Its publishing
helpers turn the model's facts into variable writes (only when a value changes, so clients see
no repeated notifications) and scan and divert events, stamped with the line time they happened
at. The bindings are put together from it: :mod:`simulators.conveyor.bindings_retained` keeps
the state file, :mod:`simulators.conveyor.bindings_methods` answers the OPC UA methods and
client writes, and :class:`~simulators.conveyor.bindings.ConveyorBindings` runs the changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua

from devices.opcua.packml import STATE_NUMBERS
from kernel.clock import Clock
from kernel.config.model import LineConfig
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
from simulators.conveyor.motion import LoopModel
from simulators.conveyor.packml import PackMLMachine, PackMLState, active_states
from simulators.opcua_nodes import EventSource

_STRING = ua.VariantType.String
_UINT32 = ua.VariantType.UInt32
_BOOLEAN = ua.VariantType.Boolean
_UINT32_MAX = 2**32 - 1


class StopReason(IntEnum):
    """``Admin.StopReason`` IDs: why the unit last stopped its belts by itself (a client's
    command clears it)."""

    NONE = 0
    CONTROLLER_SILENT = 1  # the controller's watchdog counter stopped: held
    RESTARTED = 2  # came back from a restart with retained state: held

    @property
    def message(self) -> str:
        return _STOP_MESSAGES[self]


_STOP_MESSAGES = {
    StopReason.NONE: "",
    StopReason.CONTROLLER_SILENT: "controller watchdog expired",
    StopReason.RESTARTED: "restarted with retained state",
}


class BindingsState:
    """What the bindings share (see the module docstring); the base of
    :class:`~simulators.conveyor.bindings.ConveyorBindings`, whose constructor this is."""

    def __init__(
        self,
        server: Server,
        config: LineConfig,
        clock: Clock,
        seed: int = 0,
        state_file: Path | None = None,
    ) -> None:
        self._server = server
        self._clock = clock
        self._conveyor_id = config.conveyor.id
        self.model = LoopModel(config.conveyor, start=clock.now(), seed=seed)
        self.machine = PackMLMachine()
        self._belt_speed = config.conveyor.belt_speed
        self._lock = asyncio.Lock()
        self._nodes: ConveyorNodes | None = None
        self._scan_events: dict[str, EventSource] = {}
        self._divert_events: dict[str, EventSource] = {}
        self._enabled_nodes: dict[ua.NodeId, str] = {}
        self._written: dict[ua.NodeId, Any] = {}
        # the controller's life sign: armed by its first write, tripped after a silence
        self._watchdog_timeout = config.conveyor.watchdog.timeout
        self._watchdog_value: int | None = None
        self._watchdog_at = 0.0  # wall clock (time.monotonic) of the last new value
        self.watchdog_tripped = False
        self._state_file = state_file
        self._saved: tuple[int, PackMLState] | None = None  # model revision and state written
        self._saved_at = 0.0  # wall clock of the last write
        self._save_failing = False

    def _node(self) -> ConveyorNodes:
        if self._nodes is None:
            raise RuntimeError("bindings are not attached to an address space")
        return self._nodes

    def _utc_at(self, at: float) -> datetime:
        return self._clock.utcnow() - timedelta(seconds=self._clock.now() - at)

    async def _write(self, node: Node, value: Any, vtype: ua.VariantType) -> None:
        """Write a value if it differs from the last one written (no repeated notifications)."""
        if node.nodeid in self._written and self._written[node.nodeid] == value:
            return
        self._written[node.nodeid] = value
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    async def _write_state(self, stop_reason: StopReason | None = None) -> None:
        """The PackML state on the standard nodes: each state machine's ``CurrentState``,
        ``Id`` and ``Number`` (``Bad_StateNotActive`` for a machine that is not active), and
        the belt speed now; ``stop_reason`` replaces ``Admin.StopReason`` when given."""
        unit = self._node().packml
        for level, name in active_states(self.machine.state).items():
            nodes = unit.levels[level]
            if name is None:
                for node in (nodes.current, nodes.id, nodes.number):
                    await self._write_inactive(node)
                continue
            await self._write(nodes.current, ua.LocalizedText(name), ua.VariantType.LocalizedText)
            await self._write(nodes.id, unit.states[name], ua.VariantType.NodeId)
            await self._write(nodes.number, STATE_NUMBERS[name], _UINT32)
        speed = self._belt_speed if self.machine.producing else 0.0
        await self._write(unit.cur_mach_speed, speed, ua.VariantType.Float)
        if stop_reason is not None:
            alarm = ua.PackMLAlarmDataType(
                ID=stop_reason.value,
                Value=stop_reason.value,
                Message=stop_reason.message,
                Category=0,
                DateTime=self._clock.utcnow(),
                AckDateTime=self._clock.utcnow(),
                Trigger=stop_reason is not StopReason.NONE,
            )
            await self._write(unit.stop_reason, alarm, ua.VariantType.ExtensionObject)

    async def _write_inactive(self, node: Node) -> None:
        if node.nodeid in self._written and self._written[node.nodeid] is None:
            return
        self._written[node.nodeid] = None
        status = ua.StatusCode(ua.StatusCodes.BadStateNotActive)
        dv = ua.DataValue(StatusCode=status, SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    async def _publish(self, facts: Iterable[Fact]) -> None:
        nodes = self._node()
        for fact in facts:
            match fact:
                case ZoneChanged(zone_id, occupied, item_id):
                    zone = nodes.zones[zone_id]
                    await self._write(zone.occupied, occupied, ua.VariantType.Boolean)
                    await self._write(zone.item_id, item_id, _STRING)
                case ZoneMotionChanged(zone_id, running, speed):
                    zone = nodes.zones[zone_id]
                    await self._write(zone.running, running, ua.VariantType.Boolean)
                    await self._write(zone.speed_actual, speed, ua.VariantType.Double)
                case ZoneJamChanged(zone_id, jammed):
                    await self._write(nodes.zones[zone_id].jammed, jammed, ua.VariantType.Boolean)
                case ChuteChanged(chute_id, count, full, enabled, delivered):
                    chute = nodes.chutes[chute_id]
                    await self._write(chute.count, count, ua.VariantType.UInt32)
                    await self._write(chute.full, full, ua.VariantType.Boolean)
                    await self._write(chute.enabled, enabled, ua.VariantType.Boolean)
                    await self._write(chute.delivered, delivered, ua.VariantType.UInt32)
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
        await gen.trigger(time_attr=self._utc_at(fact.at), message=message)

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
        await gen.trigger(time_attr=self._utc_at(fact.at), message=message)

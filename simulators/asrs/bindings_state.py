"""The state the AS/RS simulator's OPC UA bindings share, and how it reaches the address space.

:class:`BindingsState` holds one :class:`~simulators.asrs.motion.CraneModel` per aisle, the one
lock every change goes through, the completion event generators and the last value written to
each variable. Its publishing helpers fire a completion event per finished transport, stamped
with the line time it finished at, and write every crane's variables (only when a value changes,
so clients see no repeated notifications). The bindings are put together from it:
:mod:`simulators.asrs.bindings_retained` keeps the state file,
:mod:`simulators.asrs.bindings_methods` answers the OPC UA methods, and
:class:`~simulators.asrs.bindings.AsrsBindings` runs the changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua

from kernel.clock import Clock
from kernel.config.model import LineConfig
from routing.crane import Kinematics
from routing.rack import Rack, parse_location
from simulators.asrs.address_space import AsrsNodes
from simulators.asrs.motion import CraneModel
from simulators.asrs.motion_values import CommandFinished, Fact
from simulators.opcua_nodes import EventSource

_STRING = ua.VariantType.String
_UINT32 = ua.VariantType.UInt32
_BOOLEAN = ua.VariantType.Boolean
_DOUBLE = ua.VariantType.Double
_UINT32_MAX = 2**32 - 1

DeliveredHook = Callable[[str, str], Awaitable[None] | None]


class UnknownName(ValueError):
    """An aisle, crane, tote or location the AS/RS does not know (or a tote it already has)."""


class BindingsState:
    """What the bindings share (see the module docstring); the base of
    :class:`~simulators.asrs.bindings.AsrsBindings`, whose constructor this is."""

    def __init__(
        self,
        server: Server,
        config: LineConfig,
        clock: Clock,
        state_file: Path | None = None,
        on_delivered: DeliveredHook | None = None,
    ) -> None:
        self._server = server
        self._clock = clock
        self.cranes: dict[str, CraneModel] = {}
        self.crane_aisle: dict[str, str] = {}
        stored: dict[str, dict[str, str]] = {a.id: {} for a in config.asrs.aisles}
        for t in config.asrs.totes:
            stored[parse_location(t.location).aisle][t.location] = t.tote
        for a in config.asrs.aisles:
            c = a.crane
            rack = Rack(a.id, a.bays, a.levels, a.sides, a.bay_width, a.level_height)
            k = Kinematics(c.speed_x, c.speed_y, c.accel_x, c.accel_y, c.pd_time)
            self.cranes[a.id] = CraneModel(c.id, rack, k, stored[a.id])
            self.crane_aisle[c.id] = a.id
        self._lock = asyncio.Lock()
        self._nodes: AsrsNodes | None = None
        self._events: dict[str, EventSource] = {}
        self._written: dict[ua.NodeId, Any] = {}
        self._state_file = state_file
        self._saved: tuple[int, ...] | None = None
        self._save_failing = False
        self.on_delivered = on_delivered

    def _step(self) -> list[Fact]:
        now = self._clock.now()
        return [f for model in self.cranes.values() for f in model.step(now)]

    def crane(self, crane_or_aisle: str) -> CraneModel:
        aisle = self.crane_aisle.get(crane_or_aisle, crane_or_aisle)
        model = self.cranes.get(aisle)
        if model is None:
            raise UnknownName(f"no crane or aisle {crane_or_aisle!r}")
        return model

    def _node(self) -> AsrsNodes:
        if self._nodes is None:
            raise RuntimeError("bindings are not attached to an address space")
        return self._nodes

    def _utc_at(self, at: float) -> datetime:
        return self._clock.utcnow() - timedelta(seconds=self._clock.now() - at)

    async def _write(self, node: Node, value: Any, vtype: ua.VariantType) -> None:
        if node.nodeid in self._written and self._written[node.nodeid] == value:
            return
        self._written[node.nodeid] = value
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    async def _publish(self, facts: Iterable[Fact]) -> None:
        nodes = self._node()
        for fact in facts:
            if isinstance(fact, CommandFinished):
                aisle = parse_location(fact.entry.location).aisle
                await self._emit(aisle, fact)
        now = self._clock.now()
        for aisle, m in self.cranes.items():
            n = nodes.cranes[aisle]
            x, y = m.position(now)
            await self._write(n.state, m.state.value, _STRING)
            await self._write(n.position_x, round(x, 3), _DOUBLE)
            await self._write(n.position_y, round(y, 3), _DOUBLE)
            await self._write(n.current_command, m.current_command, _STRING)
            await self._write(n.queue_length, len(m.queue), _UINT32)
            await self._write(n.fault, m.fault, _STRING)
            await self._write(n.load, m.load.tote if m.load else "", _STRING)
            await self._write(n.pd_input, list(m.pd_input), _STRING)

    async def _emit(self, aisle: str, fact: CommandFinished) -> None:
        gen = self._events[aisle]
        e = fact.entry
        ev = gen.event
        ev.CommandId = e.command_id
        ev.ToteId = e.tote_id
        ev.Location = e.location
        ev.Kind = e.kind
        ev.Success = e.ok
        ev.Reason = e.reason
        ev.Sequence = e.sequence
        ev.Dual = e.dual
        ev.CycleSeconds = e.cycle_seconds
        ev.Severity = 100 if e.ok else 500
        message = f"{e.kind} {e.tote_id} {e.location}" + ("" if e.ok else f": {e.reason}")
        await gen.trigger(time_attr=self._utc_at(fact.at), message=message)

"""How the cranes reach the address space: a completion event per finished transport, stamped
with the line time it finished at, and every crane's variables (written only when a value
changes, so clients see no repeated notifications)."""

from __future__ import annotations

from collections.abc import Iterable

from asyncua import Server, ua

from routing.rack import parse_location
from simulators.asrs.address_space import AsrsNodes
from simulators.asrs.cranes import AsrsCranes
from simulators.asrs.motion_values import CommandFinished, Fact
from simulators.opcua_nodes import EventSource, event_source
from simulators.opcua_server.writer import NodeWriter

STRING = ua.VariantType.String
UINT32 = ua.VariantType.UInt32
BOOLEAN = ua.VariantType.Boolean
DOUBLE = ua.VariantType.Double


class AsrsPublisher:
    """Writes the cranes' state and completions to the nodes of one server."""

    def __init__(self, cranes: AsrsCranes, server: Server, writer: NodeWriter) -> None:
        self._cranes = cranes
        self._server = server
        self._writer = writer
        self._events: dict[str, EventSource] = {}

    async def attach(self, nodes: AsrsNodes) -> None:
        """Create each crane's completion event generator."""
        for aisle, crane in nodes.cranes.items():
            self._events[aisle] = await event_source(
                self._server, nodes.completed_event_type, crane.crane
            )

    async def publish(self, facts: Iterable[Fact]) -> None:
        nodes, write = self._cranes.attached(), self._writer.write
        for fact in facts:
            if isinstance(fact, CommandFinished):
                aisle = parse_location(fact.entry.location).aisle
                await self._emit(aisle, fact)
        now = self._cranes.clock.now()
        for aisle, m in self._cranes.cranes.items():
            n = nodes.cranes[aisle]
            x, y = m.position(now)
            await write(n.state, m.state.value, STRING)
            await write(n.position_x, round(x, 3), DOUBLE)
            await write(n.position_y, round(y, 3), DOUBLE)
            await write(n.current_command, m.current_command, STRING)
            await write(n.queue_length, len(m.queue), UINT32)
            await write(n.fault, m.fault, STRING)
            await write(n.load, m.load.tote if m.load else "", STRING)
            await write(n.pd_input, list(m.pd_input), STRING)

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
        await gen.trigger(time_attr=self._writer.utc_at(fact.at), message=message)

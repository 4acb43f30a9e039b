"""Writing a simulated model's values to the address space.

Every value carries the line clock's time as its source timestamp, and a variable is written
only when its value changes, so clients see no repeated notifications. Events are stamped with
the line time they happened at, not the moment they are published.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from asyncua import Node, Server, ua

from kernel.clock import Clock


class NodeWriter:
    """Writes variables of one server, each only when its value changes."""

    def __init__(self, server: Server, clock: Clock) -> None:
        self._server = server
        self._clock = clock
        self._written: dict[ua.NodeId, Any] = {}

    async def write(self, node: Node, value: Any, vtype: ua.VariantType) -> None:
        """Write a value if it differs from the last one written."""
        if node.nodeid in self._written and self._written[node.nodeid] == value:
            return
        self._written[node.nodeid] = value
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    async def write_inactive(self, node: Node) -> None:
        """Give the variable the status ``Bad_StateNotActive`` and no value (a state machine
        that is not active)."""
        if node.nodeid in self._written and self._written[node.nodeid] is None:
            return
        self._written[node.nodeid] = None
        status = ua.StatusCode(ua.StatusCodes.BadStateNotActive)
        dv = ua.DataValue(StatusCode=status, SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    def utc_at(self, at: float) -> datetime:
        """The UTC time of line time ``at``."""
        return self._clock.utcnow() - timedelta(seconds=self._clock.now() - at)

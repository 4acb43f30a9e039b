"""The devices' events on their way to the orchestrator: a queue and a consumer per kind.

The robots, the conveyor with its sorter, and the AS/RS cranes each report into their own
queue, and each queue has its own consumer task. A consumer handles its events one at a time
in the order they came, so each device's events keep their order; a consumer that waits (for
the order store to take a ledger row or an AS/RS record) holds up only its own kind. The scan to
divert path depends on neither the robots' nor the cranes' consumer, except for a scan of a
tote not known yet (see :meth:`Orchestrator.consume`). What the sortation records afterwards
waits until the robots' and the cranes' events received before it are handled.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from controller.line.device_queue import DeviceEventQueue
from controller.service.orchestrator import Orchestrator


class DeviceEvents:
    """The robots', the conveyor's and the cranes' event queues, wired to the orchestrator."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.robots = DeviceEventQueue()
        self.conveyor = DeviceEventQueue()  # the conveyor and its sorter
        self.cranes = DeviceEventQueue()  # stays empty on a line without an AS/RS
        orchestrator.sortation.upstream = (self.robots, self.cranes)
        # a robot whose reports wait here gets no new order from traffic control
        orchestrator.traffic.unrecorded = lambda serial: self.robots.pending(serial) > 0

    def consumers(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """The consumer tasks by name (the cranes' only on a line with an AS/RS)."""
        orch = self.orchestrator
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "orchestrator.robot-events": lambda: orch.consume(self.robots),
            "orchestrator.conveyor-events": lambda: orch.consume(self.conveyor, cranes=self.cranes),
        }
        if orch.asrs is not None:
            loops["orchestrator.crane-events"] = lambda: orch.consume(self.cranes)
        return loops

    def backlog(self) -> list[Callable[[], int]]:
        """Events not handled yet, per queue (they count as the store's backlog)."""
        return [self.robots.qsize, self.conveyor.qsize, self.cranes.qsize]

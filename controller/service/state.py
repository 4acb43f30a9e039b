"""What the orchestrator shares with the parts that act for it.

The orchestrator takes orders through the line; the start-up after a stop and the handling of
robot failures act on the same orders, trips and stock. They get one :class:`OrchestratorState`
(the same object the orchestrator wires), so that what they share is written down in one place
instead of being reached for on each other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from controller.asrs.case_picks.picks import CasePicks
from controller.asrs.flows import AsrsFlows
from controller.asrs.replenishment import Replenishment
from controller.conveyor.reject_totes import RejectTotes
from controller.conveyor.sorting import Sortation
from controller.conveyor.tracking import ConveyorReconciler
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.stations import Stations
from controller.line.trips import InFlight
from controller.robots.cancels import RobotCancels
from controller.robots.dispatcher import Dispatcher
from controller.robots.faults import RobotFaults
from controller.robots.picking import Picking
from controller.robots.takeover import RobotTakeover
from controller.store.inventory import LineStore
from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import LineConfig


@dataclass(eq=False)
class OrchestratorState:
    """The orders in flight, their history and stock, and the parts that move them."""

    config: LineConfig
    clock: Clock
    store: LineStore
    history: History
    flight: InFlight
    inventory: Inventory
    dispatcher: Dispatcher
    picking: Picking
    takeover: RobotTakeover
    cancels: RobotCancels
    robot_faults: RobotFaults
    stations: Stations
    sortation: Sortation
    reconciler: ConveyorReconciler
    reject_totes: RejectTotes
    case_picks: CasePicks
    replenishment: Replenishment
    asrs: AsrsFlows | None
    cranes: dev.Cranes | None
    # orders whose cancellation was asked for and is not carried out yet
    cancel_requests: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    # robots unavailable (or, carrying trips of the last run, not heard from since the start):
    # serial -> (since, reason); their live trips are given away after ``robots.failure_grace``
    lost: dict[str, tuple[float, str]] = field(default_factory=dict)

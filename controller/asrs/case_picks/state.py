"""The state :class:`~controller.asrs.case_picks.picks.CasePicks` keeps and the helpers its parts
share.

:class:`CasePickState` holds the collaborators (history, inventory, trips in flight, the AS/RS
once the orchestrator sets it) and, per order whose case lines went to the AS/RS, a
:class:`CaseOrder` with its totes (:class:`CaseTote`) and where each is. It is shared by the release
(:mod:`controller.asrs.case_picks.picks`), the totes' way to the station
(:mod:`controller.asrs.case_picks.totes`) and the orders that end otherwise and the restart
(:mod:`controller.asrs.case_picks.recovery`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from controller.asrs.flows import AsrsFlows
from controller.line import topology
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderRecord
from controller.store.inventory import ToteLine
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

PURPOSE = "case_pick"
STATION_PREFIX = "STATION:"


@dataclass
class CaseTote:
    tote: str
    aisle: str
    lines: list[ToteLine]
    state: str = "requested"  # requested -> retrieved -> at_station -> settled


@dataclass
class CaseOrder:
    order_id: str
    lines: frozenset[str]  # order lines served from the AS/RS
    totes: dict[str, CaseTote]
    robot_part: bool  # other lines come in a robot's tote
    robot_tote: str | None = None  # the robot's tote, once it is at the station
    station: str | None = None
    ended: bool = False

    def complete(self) -> bool:
        return all(t.state == "at_station" for t in self.totes.values()) and (
            not self.robot_part or self.robot_tote is not None
        )

    def totes_at_station(self) -> list[str]:
        case = [t.tote for t in self.totes.values() if t.state == "at_station"]
        return [self.robot_tote, *case] if self.robot_tote else case


@dataclass(frozen=True)
class Ready:
    """Every tote of the order is at its station: open the task."""

    order: OrderRecord
    totes: list[str]
    case_lines: frozenset[str]


class CasePickState:
    """What the case picks know: the open case orders and their totes."""

    def __init__(
        self,
        config: LineConfig,
        history: History,
        inventory: Inventory,
        flight: InFlight,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.history = history
        self.inventory = inventory
        self.flight = flight
        self.clock = clock
        self.metrics = metrics
        self.case_qty = topology.case_quantities(config)
        self.reject_chute = config.conveyor.sorter.reject_chute
        self.asrs: AsrsFlows | None = None  # set by the orchestrator when the line has one
        self.orders: dict[str, CaseOrder] = {}
        self._ended: asyncio.Queue[str] = asyncio.Queue()
        self._checked: set[str] = set()  # orders whose leftovers of an earlier run were cleared

    def _trip(
        self, order_id: str, tote: str, aisle: str, rec: OrderRecord | None, void: bool
    ) -> Trip:
        return Trip(
            trip_id=f"case-{order_id}-{tote}",
            order_id=order_id,
            serial="",
            tote=tote,
            picks=(),
            induction=f"PD:{aisle}",
            started_at=self.clock.utcnow(),
            destination=rec.body.destination if rec is not None else "",
            b2b=True,
            dropped=True,
            cancelled=void,
            case_tote=True,
        )

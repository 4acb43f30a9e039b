"""What the controller knows of the B2B case picks it handed to the AS/RS: per order whose case
lines go to the AS/RS, a :class:`CaseOrder` with its totes (:class:`CaseTote`) and where each
is, held in one :class:`CasePickState` with the line's collaborators (history, inventory, trips
in flight, the AS/RS once the orchestrator sets it).

A case tote is ``requested`` until the crane sets it down at its aisle's P&D output, then
``retrieved`` (it rides the conveyor as a :class:`~controller.line.trips.Trip` of its own),
``at_station`` in the order's chute, and ``settled`` once the station's verification is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.asrs.flows import AsrsFlows
from controller.line import topology
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Leg, Serving, Trip
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


@dataclass
class CasePickState:
    """The case picks' collaborators and open case orders, shared by their parts."""

    config: LineConfig
    history: History
    inventory: Inventory
    flight: InFlight
    clock: Clock
    metrics: Metrics
    case_qty: dict[str, int] = field(init=False)  # sku -> units in a case
    reject_chute: str = field(init=False)
    asrs: AsrsFlows | None = field(init=False, default=None)  # set with the line's AS/RS
    orders: dict[str, CaseOrder] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.case_qty = topology.case_quantities(self.config)
        self.reject_chute = self.config.conveyor.sorter.reject_chute

    def trip(
        self, order_id: str, tote: str, aisle: str, rec: OrderRecord | None, void: bool
    ) -> Trip:
        """The conveyor trip of a case tote from its aisle's P&D output (``void``: of an
        order that ended; sorted to the reject chute)."""
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
            serving=Serving.CANCELLED if void else Serving.LIVE,
            leg=Leg.ON_CONVEYOR,
            case_tote=True,
        )

"""B2B case picks served from the AS/RS: totes out of the rack, to the order's station, back.

A B2B order line with ``uom: case`` whose SKU the AS/RS holds is served from the rack, not by a
robot. When the dispatcher releases the order, :meth:`CasePicks.release` chooses the rack totes
that hold the cases (fewest totes: the smallest tote that covers what is left, else the fullest),
reserves the units *in those totes* and asks the AS/RS for each tote (purpose ``case_pick``, with
the order's due time, delivery window and priority, which sequence the retrieves). Lines a robot
picks (eaches, and cases of SKUs the AS/RS does not hold) still go out on a robot trip; the
order's station task opens only when every tote of the order is there.

The path of one case tote, each step an event in the order's history:

- ``case_pick_released``: totes reserved and requested (``asrs_retrieving`` when no robot part);
- ``case_tote_retrieved``: the crane set it down at the P&D output, from where it rides the
  conveyor; the sorter routes it like the robot's tote, to the order's station;
- ``tote_at_station``: in the chute (the inventory moves the tote to ``STATION:<chute>``);
- ``sorted`` (``at_station``) once all of the order's totes are there: the station task lists
  them and expects each AS/RS line in cases;
- verification: the counted cases are taken out of the totes (the reservations consumed, each
  change a ledger movement), then every case tote is listed in the station's *returns*
  (``GET /v1/stations/{id}/returns``, :mod:`controller.asrs.returns`). The operator sends it
  back (``POST .../returns/{tote}``, the tote moves to ``RETURN:<aisle>``), and when it reaches
  the aisle's P&D input the AS/RS stores it, in a dual cycle with a waiting retrieve when there
  is one.

An order that ends any other way (cancelled, in exception) gives back its tote reservations,
withdraws the retrieves no crane has taken yet, and its totes still under way go to the reject
chute, from where they are returned the same way. Everything is rebuilt from the order history
and the inventory after a restart.
"""

from __future__ import annotations

from collections.abc import Iterable

from controller.asrs.case_picks.recovery import CaseRecovery
from controller.asrs.case_picks.release import CaseRelease
from controller.asrs.case_picks.state import PURPOSE, CaseOrder, CasePickState, Ready
from controller.asrs.case_picks.totes import CaseTotes
from controller.asrs.flows import AsrsFlows
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.stations import StationTask
from controller.line.trips import InFlight, Trip
from controller.orders.model import HistoryEvent, OrderLine, OrderRecord
from controller.orders.waiting import AsrsBusy, Waiting
from controller.store.asrs import AsrsRequest
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

__all__ = ["PURPOSE", "CasePicks"]


class CasePicks:
    """B2B case picks from the AS/RS (see the module docstring): the release, the totes' way
    to the station and the recovery, over one
    :class:`~controller.asrs.case_picks.state.CasePickState`."""

    def __init__(
        self,
        config: LineConfig,
        history: History,
        inventory: Inventory,
        flight: InFlight,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.state = CasePickState(config, history, inventory, flight, clock, metrics)
        self.releases = CaseRelease(self.state)
        self.totes = CaseTotes(self.state)
        self.recovery = CaseRecovery(self.state)

    # --- what the line's other parts set and read ---------------------------------------------

    @property
    def asrs(self) -> AsrsFlows | None:
        """The line's AS/RS, set by the orchestrator when the line has one."""
        return self.state.asrs

    @asrs.setter
    def asrs(self, flows: AsrsFlows | None) -> None:
        self.state.asrs = flows

    @property
    def config(self) -> LineConfig:
        return self.state.config

    @config.setter
    def config(self, config: LineConfig) -> None:
        self.state.config = config

    @property
    def flight(self) -> InFlight:
        return self.state.flight

    @property
    def orders(self) -> dict[str, CaseOrder]:
        """The orders whose case lines went to the AS/RS and are not settled."""
        return self.state.orders

    def released(self, order_id: str) -> frozenset[str]:
        """Lines of the order already handed to the AS/RS (the robot leaves them out)."""
        co = self.state.orders.get(order_id)
        return co.lines if co is not None else frozenset()

    def serves(self, order_id: str) -> bool:
        return order_id in self.state.orders

    # --- release -----------------------------------------------------------------------------

    def asrs_lines(self, rec: OrderRecord) -> list[OrderLine]:
        """The order's lines the AS/RS serves: B2B case lines of SKUs held in rack totes."""
        return self.releases.asrs_lines(rec)

    def busy(self) -> AsrsBusy | None:
        """Why no further order's case totes may come out now (``asrs.max_case_orders``
        orders have theirs out), else None."""
        return self.releases.busy()

    async def release(self, rec: OrderRecord, robot_part: bool) -> Waiting | None:
        """Reserve the totes of the order's AS/RS lines and ask for them. Returns None when
        released, else why the order waits (short of stock, the AS/RS unavailable)."""
        return await self.releases.release(rec, robot_part)

    # --- the totes on their way --------------------------------------------------------------

    async def retrieved(self, tote: str, aisle: str, purpose: str, order_id: str | None) -> None:
        """A case tote is at its aisle's P&D output and rides the conveyor from there."""
        await self.totes.retrieved(tote, aisle, purpose, order_id)

    async def retrieve_failed(self, request: AsrsRequest) -> None:
        """The AS/RS gave up a case tote: the order cannot be served in full."""
        await self.totes.retrieve_failed(request)

    async def arrived(self, trip: Trip, rec: OrderRecord, chute: str) -> Ready | None:
        """One of the order's totes is in ``chute``. Returns what the station task needs once
        every tote of the order is there (the caller opens it)."""
        return await self.totes.arrived(trip, rec, chute)

    async def settle(self, task: StationTask, rec: OrderRecord, ok: bool) -> list[str]:
        """Verification at the station: the counted cases come out of the totes on a match.
        Problems are returned."""
        return await self.totes.settle(task, rec, ok)

    def totes_in_use(self, station: str) -> set[str]:
        """Totes at ``station`` an open order still needs there (not to be returned yet)."""
        return self.totes.totes_in_use(station)

    # --- orders that end otherwise, and the restart -------------------------------------------

    def ended(self, rec: OrderRecord) -> None:
        """History listener: the order ended (cancelled, exception, ...)."""
        self.recovery.ended(rec)

    async def run(self) -> None:
        """Give back what ended orders held, until cancelled."""
        await self.recovery.run()

    def restore(self, rec: OrderRecord, events: Iterable[HistoryEvent]) -> bool:
        """Rebuild the order's case picks from its history; True when it has some."""
        return self.recovery.restore(rec, events)

    def needs_robot(self, order_id: str) -> bool:
        """After a restart: the order still needs a robot for its other lines."""
        return self.recovery.needs_robot(order_id)

    def robot_tote_at_station(self, order_id: str) -> bool:
        """After a restart: the robot's tote of the order is already at its station."""
        return self.recovery.robot_tote_at_station(order_id)

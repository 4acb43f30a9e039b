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
  (``GET /v1/stations/{id}/returns``, :mod:`controller.tote_returns`). The operator sends it
  back (``POST .../returns/{tote}``, the tote moves to ``RETURN:<aisle>``), and when it reaches
  the aisle's P&D input the AS/RS stores it, in a dual cycle with a waiting retrieve when there
  is one.

An order that ends any other way (cancelled, in exception) gives back its tote reservations,
withdraws the retrieves no crane has taken yet, and its totes still under way go to the reject
chute, from where they are returned the same way. Everything is rebuilt from the order history
and the inventory after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller import topology
from controller.asrs import AsrsFlows
from controller.asrs_commands import AsrsRequestError
from controller.clock import Clock
from controller.config.model import LineConfig
from controller.history import History
from controller.inventory import Inventory
from controller.metrics import Metrics
from controller.orders import HistoryEvent, OrderLine, OrderRecord, OrderStatus, OrderType
from controller.stations import StationTask
from controller.store.asrs import AsrsRequest
from controller.store.base import StoreError
from controller.store.inventory import InventoryError, ToteLine
from controller.trips import InFlight, Trip

log = logging.getLogger(__name__)

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
class Shortage:
    reason: str


@dataclass
class _Plan:
    lines: list[ToteLine] = field(default_factory=list)

    def totes(self) -> list[str]:
        return list(dict.fromkeys(ln.tote for ln in self.lines))


class CasePicks:
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

    # --- which lines -------------------------------------------------------------------------

    def asrs_lines(self, rec: OrderRecord) -> list[OrderLine]:
        """The order's lines the AS/RS serves: B2B case lines of SKUs held in rack totes."""
        if self.asrs is None or rec.type is not OrderType.B2B:
            return []
        held = self.inventory.tote_view()
        return [ln for ln in rec.body.lines if ln.uom == "case" and ln.sku in held]

    def released(self, order_id: str) -> frozenset[str]:
        """Lines of the order already handed to the AS/RS (the robot leaves them out)."""
        co = self.orders.get(order_id)
        return co.lines if co is not None else frozenset()

    def serves(self, order_id: str) -> bool:
        return order_id in self.orders

    def busy(self) -> str | None:
        """Why no further order's case totes may come out now (``asrs.max_case_orders``
        orders have theirs out), else None."""
        out = sum(1 for co in self.orders.values() if not co.ended)
        limit = self.config.asrs.max_case_orders
        return (
            f"asrs_busy: {out} orders' case totes out (at most {limit})" if out >= limit else None
        )

    # --- release -----------------------------------------------------------------------------

    async def release(self, rec: OrderRecord, robot_part: bool) -> str | None:
        """Reserve the totes of the order's AS/RS lines and ask for them. Returns None when
        released, else why the order waits (``stock_short: ...``, ``asrs_unavailable: ...``)."""
        assert self.asrs is not None
        if rec.id not in self._checked:  # once per run: an attempt cut short by a restart
            self._checked.add(rec.id)  # may have reserved or asked without recording it
            await self.asrs.withdraw_order(rec.id)
            await self.inventory.release(rec.id, trip_id=self._ref(rec.id), reason="not recorded")
        lines = self.asrs_lines(rec)
        plan = await self._plan(lines)
        if isinstance(plan, Shortage):
            return plan.reason
        try:
            await self.inventory.reserve_totes(rec.id, plan.lines, self._ref(rec.id))
        except InventoryError as exc:
            return f"stock_short: {exc}"
        requested: list[AsrsRequest] = []
        try:
            for tote in plan.totes():
                requested.append(
                    await self.asrs.request_retrieve(
                        tote,
                        PURPOSE,
                        order_id=rec.id,
                        due=rec.due_at,
                        deliver_from=rec.body.deliver_from,
                        deliver_until=rec.body.deliver_until,
                        priority=rec.priority,
                    )
                )
        except AsrsRequestError as exc:
            await self.asrs.withdraw([r.id for r in requested])
            await self.inventory.release(rec.id, reason="AS/RS retrieve refused")
            return f"asrs_unavailable: {exc}"
        co = CaseOrder(
            rec.id,
            frozenset(ln.line_id for ln in lines),
            {
                r.tote: CaseTote(r.tote, r.aisle, [ln for ln in plan.lines if ln.tote == r.tote])
                for r in requested
            },
            robot_part,
        )
        self.orders[rec.id] = co
        data = {"totes": [self._tote_data(co.totes[r.tote], r) for r in requested]}
        if robot_part:
            await self.history.record(rec, "case_pick_released", data=data)
        else:
            await self.history.record(
                rec,
                "case_pick_released",
                OrderStatus.RELEASED,
                step="asrs_retrieving",
                waiting_reason=None,
                data=data,
            )
        self.metrics.case_totes.labels("requested").inc(len(requested))
        log.info(
            "case picks released to the AS/RS",
            extra={"order": rec.id, "totes": [r.tote for r in requested]},
        )
        return None

    @staticmethod
    def _ref(order_id: str) -> str:
        """The reference of the order's tote reservations."""
        return f"case-{order_id}"

    async def _plan(self, lines: Sequence[OrderLine]) -> _Plan | Shortage:
        """Rack totes for the lines: per line a tote the plan already takes if it covers what
        is left, else the smallest tote that covers it, else the fullest; a tote asked for by
        anyone else is not taken."""
        assert self.asrs is not None
        busy = self.asrs.busy_totes()
        in_rack = await self.asrs.rack_totes()
        view = self.inventory.tote_view()
        plan = _Plan()
        planned: dict[tuple[str, str], int] = {}  # (tote, sku) -> units this plan takes
        for ln in lines:
            need = ln.quantity * self.case_qty.get(ln.sku, 1)
            free = {
                tote: left
                for tote, units in view.get(ln.sku, {}).items()
                if tote in in_rack
                and tote not in busy
                and (left := units - planned.get((tote, ln.sku), 0)) > 0
            }
            rack_free = sum(free.values())
            while need > 0 and free:
                chosen = {t for t, _ in planned}
                covering = [t for t, u in free.items() if u >= need]
                tote = (
                    min(covering, key=lambda t: (t not in chosen, free[t], t))
                    if covering
                    else max(free, key=lambda t: (free[t], t))
                )
                take = min(need, free.pop(tote))
                plan.lines.append(ToteLine(ln.line_id, ln.sku, tote, take))
                planned[(tote, ln.sku)] = planned.get((tote, ln.sku), 0) + take
                need -= take
            if need > 0:
                return Shortage(
                    f"stock_short: {ln.sku} missing {need} in the AS/RS "
                    f"({rack_free} units free in rack totes)"
                )
        return plan

    @staticmethod
    def _tote_data(t: CaseTote, r: AsrsRequest) -> dict[str, Any]:
        return {
            "tote": t.tote,
            "aisle": t.aisle,
            "location": r.location,
            "request": r.id,
            "lines": [
                {"line_id": ln.line_id, "sku": ln.sku, "units": ln.quantity} for ln in t.lines
            ],
        }

    # --- the AS/RS's hooks -------------------------------------------------------------------

    async def retrieved(self, tote: str, aisle: str, purpose: str, order_id: str | None) -> None:
        """A case tote is at its aisle's P&D output and rides the conveyor from there."""
        if purpose != PURPOSE or order_id is None:
            return
        rec = await self.history.get(order_id)
        co = self.orders.get(order_id)
        void = rec is None or rec.status.terminal or co is None or co.ended
        trip = self._trip(order_id, tote, aisle, rec, void)
        self.flight.on_conveyor(trip)
        self.metrics.case_totes.labels("retrieved").inc()
        if co is not None and tote in co.totes:
            co.totes[tote].state = "retrieved"
        if rec is None or rec.status.terminal:
            return
        data = {"tote": tote, "aisle": aisle}
        if co is not None and not co.robot_part and rec.status is OrderStatus.RELEASED:
            await self.history.record(
                rec, "case_tote_retrieved", OrderStatus.IN_TRANSIT, step="on_conveyor", data=data
            )
        else:
            await self.history.record(rec, "case_tote_retrieved", data=data)

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

    async def retrieve_failed(self, request: AsrsRequest) -> None:
        """The AS/RS gave up a case tote: the order cannot be served in full."""
        if request.purpose != PURPOSE or request.order_id is None:
            return
        rec = await self.history.get(request.order_id)
        if rec is None or rec.status.terminal or rec.status is OrderStatus.EXCEPTION:
            return
        reason = f"AS/RS retrieve of tote {request.tote} failed: {request.reason}"
        await self.history.record(
            rec,
            "case_tote_failed",
            OrderStatus.EXCEPTION,
            step="exception",
            waiting_reason=reason,
            data={"tote": request.tote, "aisle": request.aisle, "reason": request.reason},
        )
        self.metrics.orders_finished.labels(rec.type.value, "exception").inc()

    # --- at the station ----------------------------------------------------------------------

    async def arrived(self, trip: Trip, rec: OrderRecord, chute: str) -> Ready | None:
        """One of the order's totes is in ``chute``. Returns what the station task needs once
        every tote of the order is there (the caller opens it)."""
        co = self.orders.get(rec.id)
        if trip.case_tote:
            await self._moved(trip.tote, f"{STATION_PREFIX}{chute}", f"{trip.trip_id}-in-{chute}")
            self.metrics.case_totes.labels("at_station").inc()
        data = {"tote": trip.tote, "chute": chute}
        if co is None or co.ended or rec.status.terminal or rec.status is OrderStatus.EXCEPTION:
            await self.history.record(rec, "tote_in_chute", data=data)
            return None
        if chute == self.reject_chute:  # not sorted to the station (no read on every pass)
            await self.history.record(
                rec, "rejected", OrderStatus.EXCEPTION, step="reject_chute", data=data
            )
            self.metrics.orders_finished.labels(rec.type.value, "exception").inc()
            return None
        if trip.case_tote and trip.tote in co.totes:
            co.totes[trip.tote].state = "at_station"
        elif not trip.case_tote:
            co.robot_tote = trip.tote
        co.station = chute
        if not co.complete():
            step = "collecting_totes"
            await self.history.record(rec, "tote_at_station", step=step, data=data)
            return None
        await self.history.record(rec, "tote_at_station", data=data)
        totes = co.totes_at_station()
        rec = await self.history.record(
            rec,
            "sorted",
            OrderStatus.SORTED,
            step="at_station",
            data={**data, "totes": totes},
        )
        return Ready(rec, totes, co.lines)

    async def settle(self, task: StationTask, rec: OrderRecord, ok: bool) -> list[str]:
        """Verification at the station: on a match the counted cases come out of the totes
        (each a confirmed movement); on a mismatch nothing is taken and the reservations go
        back. Either way the case totes are then to be returned. Problems are returned."""
        co = self.orders.get(task.order_id)
        if co is None:
            return []
        problems: list[str] = []
        if ok:
            for t in co.totes.values():
                for ln in t.lines:
                    ref = f"verify-{task.order_id}-{t.tote}-{ln.line_id}"
                    try:
                        outcome = await self.inventory.confirm_tote_pick(
                            task.order_id, ln.line_id, t.tote, ln.sku, ln.quantity, ref
                        )
                    except InventoryError as exc:
                        problems.append(f"tote {t.tote}: {exc}")
                        continue
                    if outcome.short and outcome.reason:
                        problems.append(outcome.reason)
        if problems or not ok:
            await self.inventory.release(task.order_id, reason="not verified")
        for t in co.totes.values():
            t.state = "settled"
        co.ended = True
        self.orders.pop(task.order_id, None)
        return problems

    def totes_in_use(self, station: str) -> set[str]:
        """Totes at ``station`` an open order still needs there (not to be returned yet)."""
        return {
            tote
            for co in self.orders.values()
            if not co.ended and co.station == station
            for tote in co.totes
        }

    async def _moved(self, tote: str, to: str, ref: str) -> None:
        try:
            await self.inventory.tote_moved(tote, to, ref)
        except InventoryError as exc:
            log.error("tote move not recorded", extra={"tote": tote, "to": to, "why": str(exc)})

    # --- orders that end otherwise -----------------------------------------------------------

    def ended(self, rec: OrderRecord) -> None:
        """History listener: the order ended (cancelled, exception, ...)."""
        co = self.orders.get(rec.id)
        if co is not None and not co.ended:
            co.ended = True
            self._ended.put_nowait(rec.id)

    async def run(self) -> None:
        """Give back what ended orders held: reservations, retrieves not yet taken by a crane;
        their totes still under way go to the reject chute."""
        while True:
            order_id = await self._ended.get()
            try:
                await self._unwind(order_id)
            except (StoreError, InventoryError):
                log.exception("could not unwind an order's case picks", extra={"order": order_id})

    async def _unwind(self, order_id: str) -> None:
        co = self.orders.pop(order_id, None)
        if co is None:
            return
        withdrawn: list[str] = []
        if self.asrs is not None:
            withdrawn = await self.asrs.withdraw_order(order_id)
        for trip in self.flight.case_totes(order_id):
            trip.cancelled = True
        await self.inventory.release(order_id, reason="order ended")
        log.info(
            "case picks of an ended order unwound",
            extra={"order": order_id, "withdrawn": withdrawn},
        )

    # --- restart -----------------------------------------------------------------------------

    def restore(self, rec: OrderRecord, events: Iterable[HistoryEvent]) -> bool:
        """Rebuild the order's case picks from its history; True when it has some."""
        evs = list(events)
        released = next((e for e in evs if e.type == "case_pick_released"), None)
        if released is None:
            return False
        totes: dict[str, CaseTote] = {}
        for t in released.data.get("totes", []):
            lines = [
                ToteLine(str(ln["line_id"]), str(ln["sku"]), str(t["tote"]), int(ln["units"]))
                for ln in t.get("lines", [])
            ]
            totes[str(t["tote"])] = CaseTote(str(t["tote"]), str(t["aisle"]), lines)
        robot_part = any(
            ln.line_id not in {x.line_id for t in totes.values() for x in t.lines}
            for ln in rec.body.lines
        )
        void = rec.status.terminal or rec.status is OrderStatus.EXCEPTION
        co = CaseOrder(
            rec.id,
            frozenset(x.line_id for t in totes.values() for x in t.lines),
            totes,
            robot_part,
            ended=void,  # its reservations were given back; its totes go to the reject chute
        )
        for e in evs:
            tote = e.data.get("tote")
            if e.type == "case_tote_retrieved" and tote in totes:
                totes[str(tote)].state = "retrieved"
            elif e.type == "tote_at_station" and isinstance(tote, str):
                co.station = str(e.data.get("chute"))
                if tote in totes:
                    totes[tote].state = "at_station"
                else:
                    co.robot_tote = tote
            elif e.type in ("requeued", "robot_assigned") and co.robot_tote is not None:
                co.robot_tote = None  # a robot picks the order's other lines again
        self.orders[rec.id] = co
        for t in totes.values():
            if t.state == "retrieved":  # on the conveyor: sorted like any tote
                self.flight.on_conveyor(self._trip(rec.id, t.tote, t.aisle, rec, void))
        return True

    def needs_robot(self, order_id: str) -> bool:
        """After a restart: the order still needs a robot for its other lines."""
        co = self.orders.get(order_id)
        return co is None or co.robot_part

    def robot_tote_at_station(self, order_id: str) -> bool:
        """After a restart: the robot's tote of the order is already at its station (the
        order waits for its AS/RS totes), not on the conveyor."""
        co = self.orders.get(order_id)
        return co is not None and co.robot_tote is not None

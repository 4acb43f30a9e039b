"""The sortation path: scan -> decision -> ``Divert`` before the tote reaches the divert.

The divert call happens at once; history is written afterwards, in order, by ``history_loop``,
so a slow disk never makes a tote miss its divert. Each deferred write waits until the events
the robots and the cranes reported before it are handled (:mod:`controller.line.device_queue`):
when their consumers fall behind (waiting for the store to take a ledger row or an AS/RS
record), a tote's sortation is still recorded after its picks and drop, or its retrieval.

With dynamic B2B allocation this module keeps which open B2B order holds which chute: an order
is given its chute by the sort decision (recorded as ``chute_allocated`` in its history) and
holds it until it ends (completed, cancelled, exception: ``release``, called by ``History``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from controller.asrs.case_picks.picks import CasePicks
from controller.asrs.replenishment import PURPOSE as REPLENISH
from controller.asrs.replenishment import Replenishment
from controller.conveyor.reject_totes import RejectTotes
from controller.line.device_queue import DeviceEventQueue
from controller.line.history import History
from controller.line.stations import Stations
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderRecord, OrderStatus
from controller.store.base import StoreError
from devices import base as dev
from devices.errors import DeviceError
from kernel.metrics import Metrics
from routing import sortation
from routing.sortation import SortPlan

log = logging.getLogger(__name__)


class Sortation:
    def __init__(
        self,
        plan: SortPlan,
        history: History,
        metrics: Metrics,
        sorter: dev.Sorter,
        flight: InFlight,
        stations: Stations,
        case_picks: CasePicks | None = None,
        replenishment: Replenishment | None = None,
    ) -> None:
        self.plan = plan
        self.history = history
        self.metrics = metrics
        self.sorter = sorter
        self.flight = flight
        self.stations = stations
        self.case_picks = case_picks
        self.replenishment = replenishment
        # totes that come out serving no order, with picked units in them (set by the wiring)
        self.reject_totes: RejectTotes | None = None
        self.allocations: dict[str, str] = {}  # B2B order id -> the chute it holds
        self._coming: Counter[str] = Counter()  # chute -> totes with a divert requested to it
        # what was deferred, with the number of events each upstream queue had received by then
        self._later: asyncio.Queue[tuple[tuple[int, ...], Callable[[], Awaitable[None]]]] = (
            asyncio.Queue()
        )
        # the event queues of the devices that put totes on the conveyor (robots, cranes), set
        # by the wiring: a deferred write waits until the events they received before it are
        # handled, so that a tote's picks and drop, or its retrieval, are recorded before its
        # sortation
        self.upstream: tuple[DeviceEventQueue, ...] = ()

    async def history_loop(self) -> None:
        """Write what the sortation path deferred, in order, off the time-critical path."""
        while True:
            marks, write = await self._later.get()
            for queue, mark in zip(self.upstream, marks, strict=False):
                await queue.caught_up(mark)
            try:
                await write()
            except StoreError:
                log.exception("could not record a sortation event")

    def deferred(self) -> int:
        """Steps waiting to be recorded."""
        return self._later.qsize()

    def _defer(self, write: Callable[[], Awaitable[None]]) -> None:
        marks = tuple(queue.received for queue in self.upstream)
        self._later.put_nowait((marks, write))

    async def scanned(self, ev: dev.ItemScanned) -> None:
        """Decide and divert at once; the order's history is written afterwards."""
        item = self.flight.item(ev.item_id)
        item.passes += 1
        known = {
            code: sortation.ItemInfo(trip.destination, trip.b2b, trip.void, trip.order_id)
            for code in ev.codes
            if (trip := self.flight.by_tote.get(code)) is not None
        }
        chutes = self.sorter.snapshot().chutes
        unavailable = frozenset(c.chute_id for c in chutes if c.full or not c.enabled)
        counts = {c.chute_id: c.count + self._coming[c.chute_id] for c in chutes}
        decision = sortation.decide(
            self.plan, ev.codes, known, item.passes, unavailable, counts, self.allocations
        )
        self.metrics.sort_decisions.labels(decision.outcome.value).inc()
        if decision.code is not None:
            item.tote = decision.code
        trip = self.flight.by_tote.get(item.tote) if item.tote else None
        if decision.chute is not None:
            # held before the divert call yields, so no other order is given the same chute
            holder = trip.order_id if decision.allocated and trip is not None else None
            if holder is not None:
                self.allocations[holder] = decision.chute
            try:
                await self.sorter.divert(ev.item_id, decision.chute)
            except DeviceError as exc:
                log.warning("divert refused", extra={"item": ev.item_id, "error": str(exc)})
                self.metrics.sort_decisions.labels("divert_failed").inc()
                if holder is not None:
                    self.allocations.pop(holder, None)
                return
            self.metrics.scan_to_divert_seconds.observe(time.perf_counter() - ev.received)
            item.chute = decision.chute
            self._coming[decision.chute] += 1
        if trip is not None:
            data = {
                "scanner": ev.scanner_id,
                "pass": item.passes,
                "outcome": decision.outcome.value,
                "chute": decision.chute,
                "reason": decision.reason.value if decision.reason else None,
            }
            self._defer(functools.partial(self._record_scan, trip.order_id, data))
            if decision.allocated and decision.chute is not None:
                self._allocated(trip.order_id, decision.chute, trip.tote)

    def _allocated(self, order_id: str, chute: str, tote: str | None) -> None:
        self.metrics.b2b_chute_allocations.inc()
        self.metrics.b2b_chutes_allocated.set(len(self.allocations))
        log.info("chute allocated", extra={"order": order_id, "chute": chute, "tote": tote})
        data = {"chute": chute, "tote": tote}
        self._defer(functools.partial(self._record_allocation, order_id, data))

    async def _record_allocation(self, order_id: str, data: dict[str, Any]) -> None:
        rec = await self.history.get(order_id)
        if rec is not None:
            await self.history.record(rec, "chute_allocated", data=data)

    def restore(self, order_id: str, chute: str) -> None:
        """After a restart: the order, still at its station, holds the chute again."""
        self.allocations[order_id] = chute
        self.metrics.b2b_chutes_allocated.set(len(self.allocations))
        log.info("chute allocation restored", extra={"order": order_id, "chute": chute})

    def release(self, rec: OrderRecord) -> None:
        """The order ended: the chute it held is free for the next B2B order."""
        chute = self.allocations.pop(rec.id, None)
        if chute is None:
            return
        self.metrics.b2b_chute_releases.labels(rec.status.value).inc()
        self.metrics.b2b_chutes_allocated.set(len(self.allocations))
        log.info(
            "chute released",
            extra={"order": rec.id, "chute": chute, "status": rec.status.value},
        )

    async def _record_scan(self, order_id: str, data: dict[str, Any]) -> None:
        rec = await self.history.get(order_id)
        if rec is not None:
            step = None if rec.status.terminal else "sorting"
            await self.history.record(
                rec, "scanned", None, **({"step": step} if step else {}), data=data
            )

    def diverted(self, ev: dev.ItemDiverted) -> None:
        item = self.flight.items.get(ev.item_id)
        if item is not None and item.chute is not None:
            if self._coming[item.chute] > 0:
                self._coming[item.chute] -= 1  # in the chute's count now, or riding on
            if not ev.ok:
                item.chute = None  # at once: it may be scanned again before history is written
        self._defer(functools.partial(self._diverted, ev))

    async def _diverted(self, ev: dev.ItemDiverted) -> None:
        item = self.flight.items.get(ev.item_id)
        trip = self.flight.by_tote.get(item.tote) if item and item.tote else None
        if not ev.ok:
            # the sorter could not divert (chute full or disabled): the item rides on and is
            # scanned again on its next pass
            self.metrics.sort_decisions.labels("divert_refused").inc()
            rec = await self.history.get(trip.order_id) if trip is not None else None
            if rec is not None and not rec.status.terminal:
                await self.history.record(
                    rec,
                    "divert_refused",
                    step="recirculating",
                    data={"chute": ev.chute_id, "divert": ev.divert_id},
                )
            return
        self.flight.items.pop(ev.item_id, None)
        if trip is not None and trip.purpose == REPLENISH and self.replenishment is not None:
            await self.replenishment.arrived(trip, ev.chute_id)
        elif trip is not None:
            self.flight.forget(trip)
            await self._arrived(trip, ev)

    async def _arrived(self, trip: Trip, ev: dev.ItemDiverted) -> None:
        rec = await self.history.get(trip.order_id)
        if rec is None:
            return
        where = {"chute": ev.chute_id, "divert": ev.divert_id, "tote": trip.tote}
        cases = self.case_picks
        if trip.case_tote and cases is not None:  # an AS/RS tote: the case picks follow it
            ready = await cases.arrived(trip, rec, ev.chute_id)
            if ready is not None:
                self.stations.open(ready.order, ev.chute_id, ready.totes, ready.case_lines)
            return
        if rec.status.terminal or trip.requeued:  # a void trip's tote, back for restocking
            await self.history.record(rec, "tote_in_chute", data=where)
            why = "order given to another robot" if trip.requeued else f"order {rec.status.value}"
            await self._off_the_books(trip, ev.chute_id, why)
        elif trip.void:
            await self.history.finish(
                rec,
                "cancelled",
                OrderStatus.CANCELLED,
                step=None,
                data={**where, "stage": "conveyor"},
            )
            await self._off_the_books(trip, ev.chute_id, "order cancelled")
        elif ev.chute_id == self.plan.reject_chute:
            await self.history.record(
                rec, "rejected", OrderStatus.EXCEPTION, step="reject_chute", data=where
            )
            self.metrics.orders_finished.labels(rec.type.value, "exception").inc()
            await self._off_the_books(trip, ev.chute_id, "order rejected by the sorter")
        elif trip.b2b and cases is not None and cases.serves(rec.id):
            # the robot's tote of an order with AS/RS totes: the task opens once all are in
            ready = await cases.arrived(trip, rec, ev.chute_id)
            if ready is not None:
                self.stations.open(ready.order, ev.chute_id, ready.totes, ready.case_lines)
        elif trip.b2b:  # B2B orders complete only after verification at the station
            rec = await self.history.record(
                rec, "sorted", OrderStatus.SORTED, step="at_station", data=where
            )
            self.stations.open(rec, ev.chute_id, [trip.tote])
        else:
            rec = await self.history.record(
                rec, "sorted", OrderStatus.SORTED, step="in_chute", data=where
            )
            await self.history.finish(rec, "completed", OrderStatus.COMPLETED, step=None)

    async def _off_the_books(self, trip: Trip, chute: str, why: str) -> None:
        """A robot tote serving no order: its picked units wait there to be counted back."""
        if self.reject_totes is not None and not trip.case_tote:
            await self.reject_totes.arrived(trip, chute, why)

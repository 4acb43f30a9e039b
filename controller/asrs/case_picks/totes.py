"""A released order's case totes on their way: out of the rack, on the conveyor, at the station.

The AS/RS calls :meth:`CasePickTotes.retrieved` when a case tote is at its aisle's P&D output (it
then rides the conveyor like a robot's tote) and :meth:`CasePickTotes.retrieve_failed` when it gave
one up. The sorter calls :meth:`CasePickTotes.arrived` for each of the order's totes in a chute:
once all are at the station the task opens. The station's verification calls
:meth:`CasePickTotes.settle`, which takes the counted cases out of the totes; the totes are then
returned (:mod:`controller.asrs.returns`), except those :meth:`CasePickTotes.totes_in_use`.
"""

from __future__ import annotations

import logging

from controller.asrs.case_picks.state import PURPOSE, STATION_PREFIX, CasePickState, Ready
from controller.line.stations import StationTask
from controller.line.trips import Trip
from controller.orders.model import OrderRecord, OrderStatus
from controller.store.asrs import AsrsRequest
from controller.store.inventory import InventoryError

log = logging.getLogger("controller.asrs.case_picks.picks")  # the case picks log under one name


class CasePickTotes(CasePickState):
    """The case totes from the rack to the station and their verification there."""

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

"""A released order's case totes on their way: out of the rack, on the conveyor, at the station.

The AS/RS tells when a case tote is at its aisle's P&D output (it then rides the conveyor like a
robot's tote, sorted to the order's station) and when it gave one up (the order cannot be served
in full: exception). The sorter reports each of the order's totes in a chute: once all are at the
station the task opens. The station's verification takes the counted cases out of the totes;
the totes are then returned to the rack (:mod:`controller.asrs.returns`), except those an open
order still needs at that station.
"""

from __future__ import annotations

import logging

from controller.asrs.case_picks.state import PURPOSE, STATION_PREFIX, CasePickState, Ready
from controller.line.stations import StationTask
from controller.line.trips import Trip
from controller.orders.model import OrderRecord, OrderStatus
from controller.orders.waiting import CaseToteFailed
from controller.store.asrs import AsrsRequest
from controller.store.inventory import InventoryError

log = logging.getLogger("controller.asrs.case_picks.picks")  # the case picks log under one name


class CaseTotes:
    """The case totes from the rack to the station and their verification there."""

    def __init__(self, state: CasePickState) -> None:
        self.state = state

    # --- the AS/RS's hooks -------------------------------------------------------------------

    async def retrieved(self, tote: str, aisle: str, purpose: str, order_id: str | None) -> None:
        """A case tote is at its aisle's P&D output and rides the conveyor from there."""
        state = self.state
        if purpose != PURPOSE or order_id is None:
            return
        rec = await state.history.get(order_id)
        co = state.orders.get(order_id)
        void = rec is None or rec.status.terminal or co is None or co.ended
        trip = state.trip(order_id, tote, aisle, rec, void)
        state.flight.on_conveyor(trip)
        state.metrics.case_totes.labels("retrieved").inc()
        if co is not None and tote in co.totes:
            co.totes[tote].state = "retrieved"
        if rec is None or rec.status.terminal:
            return
        data = {"tote": tote, "aisle": aisle}
        if co is not None and not co.robot_part and rec.status is OrderStatus.RELEASED:
            await state.history.record(
                rec, "case_tote_retrieved", OrderStatus.IN_TRANSIT, step="on_conveyor", data=data
            )
        else:
            await state.history.record(rec, "case_tote_retrieved", data=data)

    async def retrieve_failed(self, request: AsrsRequest) -> None:
        """The AS/RS gave up a case tote: the order cannot be served in full."""
        state = self.state
        if request.purpose != PURPOSE or request.order_id is None:
            return
        rec = await state.history.get(request.order_id)
        if rec is None or rec.status.terminal or rec.status is OrderStatus.EXCEPTION:
            return
        await state.history.record(
            rec,
            "case_tote_failed",
            OrderStatus.EXCEPTION,
            step="exception",
            waiting=CaseToteFailed(request.tote, request.reason),
            data={"tote": request.tote, "aisle": request.aisle, "reason": request.reason},
        )
        state.metrics.orders_finished.labels(rec.type.value, "exception").inc()

    # --- at the station ----------------------------------------------------------------------

    async def arrived(self, trip: Trip, rec: OrderRecord, chute: str) -> Ready | None:
        """One of the order's totes is in ``chute``. Returns what the station task needs once
        every tote of the order is there (the caller opens it)."""
        state = self.state
        co = state.orders.get(rec.id)
        if trip.case_tote:
            await self._moved(trip.tote, f"{STATION_PREFIX}{chute}", f"{trip.trip_id}-in-{chute}")
            state.metrics.case_totes.labels("at_station").inc()
        data = {"tote": trip.tote, "chute": chute}
        if co is None or co.ended or rec.status.terminal or rec.status is OrderStatus.EXCEPTION:
            await state.history.record(rec, "tote_in_chute", data=data)
            return None
        if chute == state.reject_chute:  # not sorted to the station (no read on every pass)
            await state.history.record(
                rec, "rejected", OrderStatus.EXCEPTION, step="reject_chute", data=data
            )
            state.metrics.orders_finished.labels(rec.type.value, "exception").inc()
            return None
        if trip.case_tote and trip.tote in co.totes:
            co.totes[trip.tote].state = "at_station"
        elif not trip.case_tote:
            co.robot_tote = trip.tote
        co.station = chute
        if not co.complete():
            step = "collecting_totes"
            await state.history.record(rec, "tote_at_station", step=step, data=data)
            return None
        await state.history.record(rec, "tote_at_station", data=data)
        totes = co.totes_at_station()
        rec = await state.history.record(
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
        state = self.state
        co = state.orders.get(task.order_id)
        if co is None:
            return []
        problems: list[str] = []
        if ok:
            for t in co.totes.values():
                for ln in t.lines:
                    ref = f"verify-{task.order_id}-{t.tote}-{ln.line_id}"
                    try:
                        outcome = await state.inventory.confirm_tote_pick(
                            task.order_id, ln.line_id, t.tote, ln.sku, ln.quantity, ref
                        )
                    except InventoryError as exc:
                        problems.append(f"tote {t.tote}: {exc}")
                        continue
                    if outcome.short and outcome.reason:
                        problems.append(outcome.reason)
        if problems or not ok:
            await state.inventory.release(task.order_id, reason="not verified")
        for t in co.totes.values():
            t.state = "settled"
        co.ended = True
        state.orders.pop(task.order_id, None)
        return problems

    def totes_in_use(self, station: str) -> set[str]:
        """Totes at ``station`` an open order still needs there (not to be returned yet)."""
        return {
            tote
            for co in self.state.orders.values()
            if not co.ended and co.station == station
            for tote in co.totes
        }

    async def _moved(self, tote: str, to: str, ref: str) -> None:
        try:
            await self.state.inventory.tote_moved(tote, to, ref)
        except InventoryError as exc:
            log.error("tote move not recorded", extra={"tote": tote, "to": to, "why": str(exc)})

"""What robots report about trips: picks, drops, failures, the end of a trip."""

from __future__ import annotations

import logging

from controller.history import History
from controller.inventory import Inventory
from controller.orders import OrderStatus
from controller.trips import InFlight, Trip
from devices import base as dev

log = logging.getLogger(__name__)


class Picking:
    def __init__(self, history: History, flight: InFlight, inventory: Inventory) -> None:
        self.history = history
        self.flight = flight
        self.inventory = inventory

    async def action_finished(self, ev: dev.RobotActionFinished) -> None:
        found = self.flight.action(ev.action_id)
        if found is None:
            return
        trip, ref = found
        if ref.kind == "pick" and not trip.returning:
            index = ref.index
            pk = trip.picks[index]
            trip.picks_done.add(index)
            if trip.requeued:
                return  # the order is picked again by another trip; this tote comes back
            trip.picked[pk.line_id] = trip.picked.get(pk.line_id, 0) + pk.quantity
            await self._step(
                trip,
                "picked",
                None if trip.cancelled else OrderStatus.PICKING,
                step="picking",
                picked=dict(trip.picked),
                data={
                    "robot": ev.serial,
                    "line_id": pk.line_id,
                    "location": pk.location,
                    "quantity": pk.quantity,
                },
            )
        elif ref.kind == "drop":
            trip.dropped = True
            if trip.returning or trip.requeued:
                await self._step(trip, "tote_returned", None, data=self._drop_data(ev, trip))
            else:
                status = None if trip.cancelled else OrderStatus.IN_TRANSIT
                await self._step(
                    trip, "dropped", status, step="on_conveyor", data=self._drop_data(ev, trip)
                )

    @staticmethod
    def _drop_data(ev: dev.RobotActionFinished, trip: Trip) -> dict[str, str]:
        return {"robot": ev.serial, "tote": trip.tote, "induction": trip.induction}

    def failed_trip(self, ev: dev.RobotActionFailed) -> Trip | None:
        """The live trip an action failure spoils (actions of a void trip fail by design)."""
        found = self.flight.action(ev.action_id)
        if found is None or not found[0].live or found[0].returning:
            return None
        return found[0]

    def job_finished(self, ev: dev.RobotOrderFinished) -> list[Trip]:
        """The robot is free again. Returns the job's trips that ended without their drop (void
        trips whose tote may need bringing back, and live trips that failed)."""
        ended = [t for t in self.flight.job_done(ev.serial, ev.order_id) if not t.dropped]
        for trip in ended:
            if trip.cancelled:
                self.settle_void(trip)
        return ended

    def settle_void(self, trip: Trip) -> None:
        """A void trip's robot stopped: free the stock it did not pick, and bring its tote back
        if it holds picked units."""
        if trip.returning:
            return
        self.inventory.release(trip.unpicked())
        trip.picks = tuple(trip.picks[i] for i in sorted(trip.picks_done))
        trip.picks_done = set(range(len(trip.picks)))
        if trip.picks:
            trip.returning = True
        else:
            self.flight.forget(trip)

    async def _step(
        self, trip: Trip, event_type: str, status: OrderStatus | None, **kw: object
    ) -> None:
        rec = await self.history.get(trip.order_id)
        if rec is None:
            return
        if rec.status.terminal:
            status = None  # a cancelled order's tote still moves; record it, keep the status
            kw.pop("step", None)
            kw.pop("picked", None)
        await self.history.record(rec, event_type, status, **kw)

"""What robots report about trips: picks, drops, failures, the end of a trip."""

from __future__ import annotations

import logging

from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderStatus
from controller.store.inventory import InventoryError, PickOutcome
from devices import base as dev
from routing.dispatch import Pick

log = logging.getLogger(__name__)


class Picking:
    def __init__(self, history: History, flight: InFlight, inventory: Inventory) -> None:
        self.history = history
        self.flight = flight
        self.inventory = inventory

    async def action_finished(self, ev: dev.RobotActionFinished) -> Trip | None:
        """Record a finished pick or drop; returns the trip if a short pick made it void."""
        found = self.flight.action(ev.action_id)
        if found is None:
            late = self.flight.late_drop(ev.action_id)
            if late is not None:
                # the conveyor scanned (and maybe sorted) the tote before the robot's report of
                # the drop came in: record the drop, leave the order's status as it is
                late.drop()
                await self._step(late, "dropped", None, data=self._drop_data(ev, late))
            return None
        trip, ref = found
        if ref.kind == "pick" and not trip.returning:
            index = ref.index
            pk = trip.picks[index]
            booked = set(trip.picks_done)
            trip.picks_done.add(index)
            # VDA 5050 reports no quantity: a finished pick took what was asked for
            outcome = await self._confirm(trip, pk, pk.quantity, ev.action_id)
            if trip.requeued:
                return None  # the order is picked again by another trip; this tote comes back
            if outcome is not None and outcome.short and not trip.void:
                await self._short_pick(trip, outcome, ev.serial)
                return trip
            if outcome is not None and outcome.duplicate:
                # booked before a restart: the reservation made again for it is not needed
                await self.inventory.release(trip.order_id, [pk], trip.trip_id, "booked before")
                if index in booked:
                    return None  # recorded too (a report read again at take-over)
            trip.picked[pk.line_id] = trip.picked.get(pk.line_id, 0) + pk.quantity
            await self._step(
                trip,
                "picked",
                None if trip.void else OrderStatus.PICKING,
                step="picking",
                picked=dict(trip.picked),
                data={
                    "robot": ev.serial,
                    "trip": trip.trip_id,
                    "pick": index,
                    "action": ev.action_id,
                    "line_id": pk.line_id,
                    "location": pk.location,
                    "quantity": pk.quantity,
                },
            )
        elif ref.kind == "drop":
            trip.drop()
            if trip.returning or trip.requeued:
                await self._step(trip, "tote_returned", None, data=self._drop_data(ev, trip))
            else:
                status = None if trip.void else OrderStatus.IN_TRANSIT
                await self._step(
                    trip, "dropped", status, step="on_conveyor", data=self._drop_data(ev, trip)
                )
        return None

    async def pick_short(self, ev: dev.RobotActionFailed, trip: Trip) -> bool:
        """The robot reported a live trip's pick as a stock shortage: it is booked as a short
        pick (on-hand unchanged: nothing was taken) and the order stops in ``exception`` with
        the reason; the trip is void. False when it could not be booked."""
        pk = self._failed_pick(ev)
        if pk is None:
            return False
        outcome = await self._confirm(trip, pk, 0, ev.action_id)
        if outcome is None or not outcome.short:
            return False
        await self._short_pick(trip, outcome, ev.serial, ev.reason)
        return True

    async def pick_fault(self, ev: dev.RobotActionFailed, trip: Trip) -> None:
        """A live trip's pick failed through a fault of the robot: the units it reserved are
        given back as they are (no short pick, on-hand unchanged), ready for the next trip."""
        pk = self._failed_pick(ev)
        if pk is not None:
            await self.inventory.release(trip.order_id, [pk], trip.trip_id, "robot fault")

    def _failed_pick(self, ev: dev.RobotActionFailed) -> Pick | None:
        found = self.flight.action(ev.action_id)
        if found is None or found[1].kind != "pick":
            return None
        return found[0].picks[found[1].index]

    async def _confirm(self, trip: Trip, pk: Pick, picked: int, ref: str) -> PickOutcome | None:
        try:
            return await self.inventory.confirm_pick(trip.order_id, trip.trip_id, pk, picked, ref)
        except InventoryError as exc:
            log.error(
                "pick not booked in the inventory",
                extra={"order": trip.order_id, "trip": trip.trip_id, "error": str(exc)},
            )
            return None

    async def _short_pick(
        self, trip: Trip, outcome: PickOutcome, serial: str, reported: str | None = None
    ) -> None:
        """Fewer units than reserved: the order stops in ``exception`` with the reason; the
        trip is void and its tote goes to the reject chute."""
        trip.cancel()
        rec = await self.history.get(trip.order_id)
        if rec is None or rec.status.terminal:
            return
        await self.history.finish(
            rec,
            "short_pick",
            OrderStatus.EXCEPTION,
            step="exception",
            waiting=outcome.short_pick,
            data={
                "robot": serial,
                "trip": trip.trip_id,
                "line_id": outcome.line_id,
                "sku": outcome.sku,
                "location": outcome.location,
                "reserved": outcome.reserved,
                "picked": outcome.picked,
                "reason": outcome.reason,
                **({"robot_result": reported} if reported is not None else {}),
            },
        )

    @staticmethod
    def _drop_data(ev: dev.RobotActionFinished, trip: Trip) -> dict[str, str]:
        return {"robot": ev.serial, "tote": trip.tote, "induction": trip.induction}

    def failed_trip(self, ev: dev.RobotActionFailed) -> Trip | None:
        """The live trip an action failure spoils (actions of a void trip, or of a trip whose
        robot is stopped to give way, fail by design)."""
        found = self.flight.action(ev.action_id)
        if found is None or not found[0].live or found[0].returning or found[0].stopping:
            return None
        return found[0]

    async def job_finished(self, ev: dev.RobotOrderFinished) -> list[Trip]:
        """The robot is free again. Returns the job's trips that ended without their drop (void
        trips whose tote may need bringing back, and live trips that failed)."""
        ended = [t for t in self.flight.job_done(ev.serial, ev.order_id) if not t.dropped]
        for trip in ended:
            if trip.void:
                await self.settle_void(trip)
        return ended

    async def settle_void(self, trip: Trip) -> None:
        """A void trip's robot stopped: free the stock it did not pick, and bring its tote back
        if it holds picked units."""
        if trip.returning:
            return
        unpicked = trip.unpicked()
        if unpicked:
            await self.inventory.release(trip.order_id, unpicked, trip.trip_id, "trip void")
        trip.picks = tuple(trip.picks[i] for i in sorted(trip.picks_done))
        trip.picks_done = set(range(len(trip.picks)))
        if trip.picks:
            trip.bring_back()
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

"""Robot failures: an order whose robot trip can no longer serve it goes to another robot.

A robot that fails an action, ends its trip without the drop, stays unavailable longer than
``robots.failure_grace`` (counted while the controller's broker link is up: an outage of the
link says nothing of the robots) or is cancelled by an operator spoils its trips: their orders
go back to the queue, at most :data:`MAX_ATTEMPTS` trips per order (failures of the robot
count, an operator's cancel does not), else into ``exception``. A robot whose trips were given
away is stopped when it can be reached.

A robot that gives way in a traffic deadlock keeps its trips: it is stopped, and once it stands
they continue from there in a new job (their picks left into the same totes, then their drops),
after the robot has rested out of the others' way. What it picked is never picked again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from controller.conveyor.tracking import ConveyorReconciler
from controller.line.history import History
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderStatus
from controller.orders.waiting import (
    ActionFailed,
    GaveUp,
    GivingWay,
    Overdue,
    Reassigning,
    RobotCancelled,
    RobotLost,
    TripLoss,
)
from controller.robots.cancels import RobotCancels
from controller.robots.dispatcher import Dispatcher
from controller.robots.faults import PickFailure, RobotFaults
from controller.robots.picking import Picking
from controller.robots.takeover import RobotTakeover
from controller.robots.trip_records import GIVING_WAY
from controller.store.base import StoreError
from devices import base as dev
from devices.errors import DeviceError
from kernel.clock import Clock
from kernel.config.model import LineConfig

log = logging.getLogger("controller.service.orchestrator")  # the orchestrator logs under one name

MAX_ATTEMPTS = 3  # robot trips per order before it goes into exception
RETRY_EVENTS = frozenset(
    {"robot_action_failed", "robot_lost", "robot_trip_ended_without_drop", "robot_trip_overdue"}
)
# an operator's cancel of a robot is no failure of the order: it does not count as an attempt


class FailureState(Protocol):
    """What failure handling reads and changes of the state it shares with the orchestrator
    (the orchestrator's state object has all of it, and more)."""

    config: LineConfig
    clock: Clock
    history: History
    flight: InFlight
    dispatcher: Dispatcher
    picking: Picking
    takeover: RobotTakeover
    cancels: RobotCancels
    robot_faults: RobotFaults
    reconciler: ConveyorReconciler
    lost: dict[str, tuple[float, str]]  # serial -> (since, reason)


class RobotFailures:
    """Giving away the trips of failed robots, and stopping robots whose trips are void."""

    def __init__(self, state: FailureState) -> None:
        self.state = state

    async def action_failed(self, ev: dev.RobotActionFailed) -> None:
        """A live trip's action failed. A pick the robot reports as a stock shortage (as its
        model declares it) is booked short and stops the order; anything else is a fault of
        the robot: the stock stays as it was and the order goes to another robot."""
        trip = self.state.picking.failed_trip(ev)
        if trip is None:
            return
        if self.state.robot_faults.pick_failure(ev) is PickFailure.SHORTAGE and (
            await self.state.picking.pick_short(ev, trip)
        ):
            await self.stop_if_void(trip)
            return
        self.state.robot_faults.fault(ev.serial, ev.action_type, ev.reason)
        await self.state.picking.pick_fault(ev, trip)
        cause = ActionFailed(ev.action_type, ev.serial, ev.reason)
        data = {"robot": ev.serial, "action": ev.action_type, "robot_fault": True}
        await self.spoiled(trip, "robot_action_failed", cause, data)
        await self.stop_if_void(trip)

    # --- robot failures --------------------------------------------------------------------

    async def availability(self, ev: dev.RobotAvailability) -> None:
        if not ev.available:
            if ev.unheard:
                # the controller's own broker link is down: the robot may be working on; its
                # failure grace counts from when it can be heard again
                self.state.lost.pop(ev.serial, None)
                return
            self.state.lost.setdefault(ev.serial, (self.state.clock.now(), ev.reason))
            return
        self.state.lost.pop(ev.serial, None)
        if not self.state.takeover.done(ev.serial):
            return  # its take-over stops it if it must
        trips = self.state.flight.on_robot(ev.serial)
        if trips and all(t.void and not t.returning for t in trips):
            await self.stop_robot(trips[0])  # back after its trips were given away: stop it

    async def robot_overdue(self, trip: Trip, overdue: Overdue) -> None:
        """The robot made no progress on the trip for its deadline: the order goes to another
        robot, the robot's order is cancelled, and the fault counts against the robot."""
        self.state.robot_faults.overdue(trip.serial, "trip_overdue")
        data = {"robot": trip.serial, "robot_fault": True, **overdue.data()}
        await self.spoiled(trip, "robot_trip_overdue", overdue, data)
        await self.stop_if_void(trip)

    async def watch_loop(self) -> None:
        """Give away the trips of robots that stay unavailable longer than the grace time."""
        grace = self.state.config.robots.failure_grace
        while True:
            await self.state.clock.sleep(min(2.0, grace / 4))
            self.state.robot_faults.expire()
            try:
                await self.state.reconciler.check_missing()
            except StoreError:
                log.exception("could not record a tote lost on the conveyor")
            await self.state.cancels.retry_due()
            now = self.state.clock.now()
            for serial, (since, reason) in list(self.state.lost.items()):
                if now - since < grace:
                    continue
                for trip in [t for t in self.state.flight.on_robot(serial) if t.live]:
                    await self.spoiled(
                        trip,
                        "robot_lost",
                        RobotLost(serial, reason),
                        {"robot": serial},
                    )

    async def spoiled(
        self, trip: Trip, event_type: str, cause: TripLoss, data: Mapping[str, object]
    ) -> None:
        """The trip can no longer serve its order: the order goes back to the queue for another
        robot (at most MAX_ATTEMPTS trips), else into ``exception``. Nothing is lost or stuck."""
        history = self.state.history
        trip.requeue()
        if trip.continuing:
            # taken over and not yet sent again: the robot stands, so settle the trip now
            await self.state.takeover.give_up(trip)
        rec = await history.get(trip.order_id)
        if rec is None or rec.status.terminal:
            return
        types = await history.event_types(rec.id)
        attempt = 1 + sum(1 for t in types if t in RETRY_EVENTS)
        data = {**data, "trip": trip.trip_id, "attempt": attempt, "reason": cause.render()}
        if attempt >= MAX_ATTEMPTS:
            await history.record(
                rec,
                event_type,
                OrderStatus.EXCEPTION,
                step="exception",
                waiting=GaveUp(cause, attempt),
                data=data,
            )
            history.metrics.orders_finished.labels(rec.type.value, "exception").inc()
            return
        rec = await history.record(
            rec,
            event_type,
            OrderStatus.ACCEPTED,
            step="queued",
            picked={},
            waiting=Reassigning(cause),
            data=data,
        )
        self.state.dispatcher.add(rec)

    async def cancel_robot(self, serial: str) -> str:
        """An operator cancels the robot's work: its orders go to other robots."""
        action_id = await self.state.cancels.send(serial)
        for trip in [t for t in self.state.flight.on_robot(serial) if t.live]:
            await self.spoiled(
                trip,
                "robot_cancelled_by_operator",
                RobotCancelled(serial),
                {"robot": serial},
            )
        return action_id

    async def give_way(self, serial: str, why: str) -> None:
        """Traffic control ends a deadlock: the robot's order is cancelled so that it stands
        and the others can pass. Its trips stay with it (:meth:`stood_after_giving_way`):
        the totes it carries hold picked units, which a new trip would pick again."""
        # a trip that already waits to continue is in no job of the robot: the stop leaves it be
        trips = [t for t in self.state.flight.on_robot(serial) if t.live and not t.continuing]
        for trip in trips:  # before anything is awaited: the cancel fails what is left
            if not trip.stopping:
                trip.give_way()
        try:
            await self.state.cancels.send(serial)
        except DeviceError:
            for trip in trips:
                if trip.stopping:
                    trip.keep_going()
            raise
        for trip in trips:
            rec = await self.state.history.get(trip.order_id)
            if rec is None or rec.status.terminal:
                continue
            await self.state.history.record(
                rec,
                GIVING_WAY,
                waiting=GivingWay(serial, why),
                data={"robot": serial, "trip": trip.trip_id, "job": trip.job_id, "why": why},
            )

    def stood_after_giving_way(self, trip: Trip) -> bool:
        """The job of a trip whose robot gave way ended: the trip continues from where the
        robot stands (sent when traffic control lets the robot work again). False for any
        other trip."""
        if not trip.stopping:
            return False
        trip.stood()
        if not trip.live:
            return False
        trip.continue_later()
        log.info(
            "robot stands after giving way; its trip continues from there",
            extra={"robot": trip.serial, "trip": trip.trip_id, "order": trip.order_id},
        )
        return True

    async def stop_if_void(self, trip: Trip) -> None:
        """Stop the robot unless its job still serves other orders (a batch carries on; the
        void trip's tote then goes to the reject chute)."""
        if not any(t.live for t in self.state.flight.job_trips(trip.job_id)):
            await self.stop_robot(trip)

    async def stop_robot(self, trip: Trip) -> None:
        """Cancel the robot's VDA 5050 order of a void trip (when it can be reached)."""
        try:
            await self.state.cancels.send(trip.serial)
        except DeviceError as exc:
            log.info(
                "robot not reachable to cancel a void trip; retried when it is back",
                extra={"robot": trip.serial, "trip": trip.trip_id, "error": str(exc)},
            )

"""The robots' errands besides new orders: totes of void trips brought back, trips taken over
continued, and charging.

A robot holding totes of trips that no longer serve an order (cancelled or requeued) drops them
at the nearest induction, from where the conveyor takes them to the reject chute. An idle robot
low on battery drives to the nearest free charger, charges until ``charge_until`` and goes back to
work. A robot with live trips and no job (taken over at start, or stopped to give way in a
traffic jam) gets them back as a new job. All of these run at the start of every dispatch round,
before any order is released.
"""

from __future__ import annotations

import logging
import uuid

from controller.line.trips import Trip
from controller.robots.dispatch_state import DispatchState, RobotOrders
from controller.robots.trip_records import job_data
from devices import base as dev
from devices.errors import DeviceError
from routing import dispatch

log = logging.getLogger("controller.robots.dispatcher")  # the dispatcher logs under one name

CHARGE_ASK_AGAIN = 30.0  # line seconds before startCharging is sent again to a robot not charging


class RobotErrands:
    """Tote returns, taken-over trips continued, and charging (see the module docstring)."""

    def __init__(self, shared: DispatchState, orders: RobotOrders) -> None:
        self.shared = shared
        self.orders = orders
        self._continuation_failed: set[str] = set()  # robots told once
        self._return_refused: dict[str, str] = {}  # robot -> why its tote return was not sent
        self._charge_asked: dict[str, float] = {}  # robot -> when startCharging was last sent

    # --- bringing back the totes of void trips ---------------------------------------------

    async def return_totes(self) -> None:
        """A robot holding totes of void trips (cancelled or requeued orders) drops them at the
        nearest induction; the conveyor takes them to the reject chute for restocking."""
        shared = self.shared
        returning: dict[str, list[Trip]] = {}
        for trip in shared.flight.trips.values():
            if trip.returning and not trip.dropped and trip.serial not in shared.flight.busy_robots:
                returning.setdefault(trip.serial, []).append(trip)
        snapshots = shared.fleet.snapshot_of(returning) if returning else {}
        for serial, trips in returning.items():
            snap = snapshots.get(serial)
            if snap is None or not snap.available or snap.driving or not snap.last_node_id:
                continue
            if snap.order_hold is not None:
                continue  # backing off after a rejected order, or at the order rate cap
            if not shared.accepts_trips(serial):
                continue  # held back after giving way in a jam; the totes go back later
            node = dispatch.nearest(shared.roadmap, snap.last_node_id, list(shared.induction_nodes))
            for trip in trips:
                trip.induction = shared.induction_nodes[node].id
            job_id = f"return-{uuid.uuid4().hex[:12]}"
            path = shared.roadmap.route(snap.last_node_id, node)
            order, refs = self.orders.for_trips(job_id, serial, path, trips, picks=False)
            try:
                await shared.fleet.send_order(serial, order)
            except DeviceError as exc:
                # logged when the robot's refusal changes, not on every dispatch round
                level = logging.DEBUG if self._return_refused.get(serial) == str(exc) else None
                self._return_refused[serial] = str(exc)
                log.log(
                    level or logging.WARNING,
                    "could not send a tote return trip",
                    extra={"robot": serial, "totes": [t.tote for t in trips], "error": str(exc)},
                )
                continue
            self._return_refused.pop(serial, None)
            shared.flight.start(job_id, trips, refs)

    # --- finishing the trips a restarted controller took over --------------------------------

    async def continue_trips(self) -> None:
        """A robot with live trips on it and no job (taken over at start, or stopped to give
        way in a traffic jam) gets them back as one new job from where it stands: their picks
        left, into the same totes, then their drops at the induction nearest the last stop."""
        shared = self.shared
        continuing: dict[str, list[Trip]] = {}
        for trip in shared.flight.trips.values():
            if trip.continuing and trip.live and trip.serial not in shared.flight.busy_robots:
                continuing.setdefault(trip.serial, []).append(trip)
        snapshots = shared.fleet.snapshot_of(continuing) if continuing else {}
        for serial, trips in continuing.items():
            snap = snapshots.get(serial)
            if snap is None or not snap.available or snap.driving or not snap.last_node_id:
                continue
            if not shared.accepts_trips(serial):
                continue
            nodes = [pk.node for t in trips for pk in t.unpicked()]
            stops = dispatch.order_stops(shared.roadmap, snap.last_node_id, nodes) if nodes else []
            last = stops[-1] if stops else snap.last_node_id
            induction_node = dispatch.nearest(shared.roadmap, last, list(shared.induction_nodes))
            for trip in trips:
                trip.induction = shared.induction_nodes[induction_node].id
            job_id = f"job-{uuid.uuid4().hex[:12]}"
            path = shared.roadmap.tour(snap.last_node_id, [*stops, induction_node])
            order, refs = self.orders.for_trips(job_id, serial, path, trips, continued=True)
            try:
                await shared.fleet.send_order(serial, order)
            except DeviceError as exc:
                if serial not in self._continuation_failed:
                    self._continuation_failed.add(serial)
                    log.warning(
                        "could not send a taken-over robot its trips; tried again",
                        extra={"robot": serial, "error": str(exc)},
                    )
                continue
            self._continuation_failed.discard(serial)
            shared.flight.start(job_id, trips, refs)
            shared.metrics.robot_trips.labels("continued").inc()
            for trip in trips:
                if trip.continuing:  # (a trip turned void meanwhile was settled already)
                    trip.continued()
                rec = await shared.history.get(trip.order_id)
                if rec is not None:
                    await shared.history.record(
                        rec,
                        "robot_continued",
                        waiting=None,
                        data=job_data(trip, serial, job_id, refs),
                    )
            log.info(
                "taken-over trips continued",
                extra={"robot": serial, "job": job_id, "orders": [t.order_id for t in trips]},
            )

    # --- charging --------------------------------------------------------------------------

    async def charge(self) -> None:
        """Idle robots low on battery drive to a free charger, charge, and come back to work."""
        shared = self.shared
        busy = shared.flight.busy_robots
        # those charging, and those that could be sent to charge (a large fleet's costs)
        snapshots = shared.fleet.snapshot_of(
            s for s in shared.models if s in shared.charging or s not in busy
        )
        for serial, charger in list(shared.charging.items()):
            snap = snapshots.get(serial)
            if snap is None or serial in shared.flight.busy_robots or snap.driving:
                continue  # still driving there (or gone: it stays out of work until back)
            model = shared.models[serial]
            if snap.battery is not None and snap.battery >= model.charge_until:
                if await self._instant(serial, "stopCharging"):
                    del shared.charging[serial]
                    self._charge_asked.pop(serial, None)
                    log.info("robot charged", extra={"robot": serial, "battery": snap.battery})
            elif not snap.charging and snap.last_node_id == charger:
                # asked again only after a while: a robot that refuses is not flooded
                asked = self._charge_asked.get(serial)
                now = shared.clock.now()
                if asked is None or now - asked >= CHARGE_ASK_AGAIN:
                    self._charge_asked[serial] = now
                    await self._instant(serial, "startCharging")
            elif not snap.charging and snap.available:
                del shared.charging[serial]  # not at its charger: plan again
                self._charge_asked.pop(serial, None)
        taken = set(shared.charging.values())
        for serial, snap in snapshots.items():
            model = shared.models[serial]
            if (
                serial in shared.charging
                or serial in shared.flight.busy_robots
                or not snap.available
                or snap.order_hold is not None
                or snap.driving
                or snap.battery is None
                or snap.battery >= model.charge_below
                or not snap.last_node_id
                or not shared.accepts_trips(serial)
            ):
                continue
            free = [c for c in shared.chargers if c not in taken]
            if not free:
                return
            charger = dispatch.nearest(shared.roadmap, snap.last_node_id, free)
            job_id = f"charge-{uuid.uuid4().hex[:12]}"
            path = shared.roadmap.route(snap.last_node_id, charger)
            try:
                await shared.fleet.send_order(serial, self.orders.route(job_id, path, {}))
            except DeviceError as exc:
                log.warning(
                    "could not send a robot to charge", extra={"robot": serial, "error": str(exc)}
                )
                continue
            shared.flight.start_errand(job_id, serial)
            shared.charging[serial] = charger
            taken.add(charger)
            log.info(
                "robot sent to charge",
                extra={"robot": serial, "battery": snap.battery, "charger": charger},
            )

    async def _instant(self, serial: str, action_type: str) -> bool:
        action = dev.RobotAction(f"{action_type}-{uuid.uuid4().hex[:12]}", action_type, "NONE")
        try:
            await self.shared.fleet.send_instant_actions(serial, [action])
        except DeviceError as exc:
            log.warning(
                "instant action not sent",
                extra={"robot": serial, "action": action_type, "error": str(exc)},
            )
            return False
        return True

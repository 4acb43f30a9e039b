"""The robots' errands besides orders: totes of void trips brought back, and charging.

A robot holding totes of trips that no longer serve an order (cancelled or requeued) drops them
at the nearest induction, from where the conveyor takes them to the reject chute. An idle robot
low on battery drives to the nearest free charger, charges until ``charge_until`` and goes back to
work. Both run at the start of every dispatch round
(:meth:`~controller.robots.dispatcher.Dispatcher.dispatch_once`), before any order is released.
"""

from __future__ import annotations

import logging
import uuid

from controller.line.trips import Trip
from controller.robots.dispatch_state import DispatchState
from controller.robots.trip_records import job_data
from devices import base as dev
from devices.errors import DeviceError
from routing import dispatch

log = logging.getLogger("controller.robots.dispatcher")  # the dispatcher logs under one name

CHARGE_ASK_AGAIN = 30.0  # line seconds before startCharging is sent again to a robot not charging


class DispatchErrands(DispatchState):
    """Tote returns and charging (see the module docstring)."""

    # --- bringing back the totes of void trips ---------------------------------------------

    async def _send_returns(self) -> None:
        """A robot holding totes of void trips (cancelled or requeued orders) drops them at the
        nearest induction; the conveyor takes them to the reject chute for restocking."""
        snapshots = self.fleet.snapshot()
        returning: dict[str, list[Trip]] = {}
        for trip in self.flight.trips.values():
            if trip.returning and not trip.dropped and trip.serial not in self.flight.busy_robots:
                returning.setdefault(trip.serial, []).append(trip)
        for serial, trips in returning.items():
            snap = snapshots.get(serial)
            if snap is None or not snap.available or snap.driving or not snap.last_node_id:
                continue
            if snap.order_hold is not None:
                continue  # backing off after a rejected order, or at the order rate cap
            if not self.accepts_trips(serial):
                continue  # held back after giving way in a jam; the totes go back later
            node = dispatch.nearest(self.roadmap, snap.last_node_id, list(self.induction_nodes))
            for trip in trips:
                trip.induction = self.induction_nodes[node].id
            job_id = f"return-{uuid.uuid4().hex[:12]}"
            path = self.roadmap.route(snap.last_node_id, node)
            order, refs = self._job_order(job_id, serial, path, trips, picks=False)
            try:
                await self.fleet.send_order(serial, order)
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
            self.flight.start(job_id, trips, refs)

    # --- finishing the trips a restarted controller took over --------------------------------

    async def _send_continuations(self) -> None:
        """A robot with live trips on it and no job (taken over at start, or stopped to give
        way in a traffic jam) gets them back as one new job from where it stands: their picks
        left, into the same totes, then their drops at the induction nearest the last stop."""
        snapshots = self.fleet.snapshot()
        continuing: dict[str, list[Trip]] = {}
        for trip in self.flight.trips.values():
            if trip.continuing and trip.live and trip.serial not in self.flight.busy_robots:
                continuing.setdefault(trip.serial, []).append(trip)
        for serial, trips in continuing.items():
            snap = snapshots.get(serial)
            if snap is None or not snap.available or snap.driving or not snap.last_node_id:
                continue
            if not self.accepts_trips(serial):
                continue
            nodes = [pk.node for t in trips for pk in t.unpicked()]
            stops = dispatch.order_stops(self.roadmap, snap.last_node_id, nodes) if nodes else []
            last = stops[-1] if stops else snap.last_node_id
            induction_node = dispatch.nearest(self.roadmap, last, list(self.induction_nodes))
            for trip in trips:
                trip.induction = self.induction_nodes[induction_node].id
            job_id = f"job-{uuid.uuid4().hex[:12]}"
            path = self.roadmap.tour(snap.last_node_id, [*stops, induction_node])
            order, refs = self._job_order(job_id, serial, path, trips, continued=True)
            try:
                await self.fleet.send_order(serial, order)
            except DeviceError as exc:
                if serial not in self._continuation_failed:
                    self._continuation_failed.add(serial)
                    log.warning(
                        "could not send a taken-over robot its trips; tried again",
                        extra={"robot": serial, "error": str(exc)},
                    )
                continue
            self._continuation_failed.discard(serial)
            self.flight.start(job_id, trips, refs)
            self.metrics.robot_trips.labels("continued").inc()
            for trip in trips:
                trip.continuing = False
                rec = await self.history.get(trip.order_id)
                if rec is not None:
                    await self.history.record(
                        rec,
                        "robot_continued",
                        waiting_reason=None,
                        data=job_data(trip, serial, job_id, refs),
                    )
            log.info(
                "taken-over trips continued",
                extra={"robot": serial, "job": job_id, "orders": [t.order_id for t in trips]},
            )

    # --- charging --------------------------------------------------------------------------

    async def _charge(self) -> None:
        """Idle robots low on battery drive to a free charger, charge, and come back to work."""
        snapshots = self.fleet.snapshot()
        for serial, charger in list(self.charging.items()):
            snap = snapshots.get(serial)
            if snap is None or serial in self.flight.busy_robots or snap.driving:
                continue  # still driving there (or gone: it stays out of work until back)
            model = self.config.robot_model(serial)
            if snap.battery is not None and snap.battery >= model.charge_until:
                if await self._instant(serial, "stopCharging"):
                    del self.charging[serial]
                    self._charge_asked.pop(serial, None)
                    log.info("robot charged", extra={"robot": serial, "battery": snap.battery})
            elif not snap.charging and snap.last_node_id == charger:
                # asked again only after a while: a robot that refuses is not flooded
                asked = self._charge_asked.get(serial)
                now = self.clock.now()
                if asked is None or now - asked >= CHARGE_ASK_AGAIN:
                    self._charge_asked[serial] = now
                    await self._instant(serial, "startCharging")
            elif not snap.charging and snap.available:
                del self.charging[serial]  # not at its charger: plan again
                self._charge_asked.pop(serial, None)
        taken = set(self.charging.values())
        for serial, snap in snapshots.items():
            model = self.config.robot_model(serial)
            if (
                serial in self.charging
                or serial in self.flight.busy_robots
                or not snap.available
                or snap.order_hold is not None
                or snap.driving
                or snap.battery is None
                or snap.battery >= model.charge_below
                or not snap.last_node_id
                or not self.accepts_trips(serial)
            ):
                continue
            free = [c for c in self.chargers if c not in taken]
            if not free:
                return
            charger = dispatch.nearest(self.roadmap, snap.last_node_id, free)
            job_id = f"charge-{uuid.uuid4().hex[:12]}"
            path = self.roadmap.route(snap.last_node_id, charger)
            try:
                await self.fleet.send_order(serial, self._route(job_id, path, {}))
            except DeviceError as exc:
                log.warning(
                    "could not send a robot to charge", extra={"robot": serial, "error": str(exc)}
                )
                continue
            self.flight.start_errand(job_id, serial)
            self.charging[serial] = charger
            taken.add(charger)
            log.info(
                "robot sent to charge",
                extra={"robot": serial, "battery": snap.battery, "charger": charger},
            )

    async def _instant(self, serial: str, action_type: str) -> bool:
        action = dev.RobotAction(f"{action_type}-{uuid.uuid4().hex[:12]}", action_type, "NONE")
        try:
            await self.fleet.send_instant_actions(serial, [action])
        except DeviceError as exc:
            log.warning(
                "instant action not sent",
                extra={"robot": serial, "action": action_type, "error": str(exc)},
            )
            return False
        return True

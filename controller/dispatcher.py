"""Releasing orders to robots: which order next, from which shelves, on which robot.

Decisions come from ``routing.dispatch`` on a snapshot of the queue, the stock and the fleet; this
module turns them into VDA 5050-neutral robot orders and records each step.

The class is put together from one module per concept: this module has the queue and the release
of orders; :mod:`controller.dispatch_errands` sends robots back with the totes of void trips and
to their chargers; :mod:`controller.dispatch_state` holds the state they share and its helpers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from controller.dispatch_errands import DispatchErrands
from controller.dispatch_state import Pending, Planned
from controller.orders import OrderRecord, OrderStatus, OrderType
from controller.store.inventory import InsufficientStock
from controller.trips import Trip
from devices.errors import DeviceError, OrderRefused
from routing import assignment, batching, dispatch

log = logging.getLogger(__name__)

NO_ROBOT = "no_robot_free"
CONVEYOR_DOWN = "conveyor_unavailable"
OUTSIDE_WINDOW = "outside_delivery_window"
LINE_HELD = "line_held"
CANDIDATES_PER_ROBOT = 12  # most urgent orders considered per idle robot in one round


class Dispatcher(DispatchErrands):
    """The order release (see the module docstring); its constructor is
    :class:`~controller.dispatch_state.DispatchState`'s."""

    # --- the queue -------------------------------------------------------------------------

    def add(self, record: OrderRecord) -> None:
        self._seq += 1
        self.pending[record.id] = Pending(record, self._seq)
        self._wake.set()

    def changed(self, record: OrderRecord) -> None:
        pending = self.pending.get(record.id)
        if pending is not None:
            pending.record = record
            self._wake.set()

    def withdraw(self, order_id: str) -> bool:
        """Take a not yet released order out of the queue (cancel)."""
        return self.pending.pop(order_id, None) is not None

    def wake(self) -> None:
        self._wake.set()

    async def loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.clock.wall_seconds(2.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.dispatch_once()

    # --- release ---------------------------------------------------------------------------

    def _idle_robots(self) -> list[dispatch.IdleRobot]:
        return [
            dispatch.IdleRobot(s.serial, s.last_node_id)
            for s in self.fleet.snapshot().values()
            if s.available
            and s.last_node_id
            and s.order_hold is None
            and not s.driving
            and s.serial not in self.flight.busy_robots
            and s.serial not in self.charging
            and self.accepts_trips(s.serial)
        ]

    async def dispatch_once(self) -> None:
        await self._send_returns()
        await self._charge()
        if not self.pending:
            return
        candidates = [
            dispatch.PendingOrder(
                p.record.id, p.record.due_at, p.record.priority, p.seq, p.record.body.deliver_from
            )
            for p in self.pending.values()
        ]
        ready = dispatch.release_order(candidates, self.clock.utcnow())
        ready_ids = {c.order_id for c in ready}
        for p in list(self.pending.values()):
            if p.record.id not in ready_ids:
                await self._wait(p, OUTSIDE_WINDOW)
        if self.held:
            for c in ready:
                await self._wait(self.pending[c.order_id], LINE_HELD)
            return
        if not self.sorter.snapshot().connected:
            for c in ready:
                await self._wait(self.pending[c.order_id], CONVEYOR_DOWN)
            return
        robot_ready = [c.order_id for c in ready if await self._release_cases(c.order_id)]
        idle = self._idle_robots()
        planned = await self._plan(robot_ready, limit=CANDIDATES_PER_ROBOT * len(idle))
        if not planned:
            return
        batches = self._batches(planned)
        chosen = self._assign(idle, batches)
        by_serial = {r.serial: r for r in idle}
        for key, members in batches.items():
            serial = chosen.get(key)
            if serial is None:
                for p, _ in members:
                    await self._wait(p, NO_ROBOT)
            else:
                await self._release(by_serial[serial], members)

    async def _release_cases(self, order_id: str) -> bool:
        """Hand the order's AS/RS case lines to the AS/RS first; True when the order (still)
        needs a robot for its other lines."""
        p = self.pending.get(order_id)
        if p is None:
            return False
        cases = self.case_picks
        if cases is None or cases.serves(order_id):
            return True
        lines = cases.asrs_lines(p.record)
        if not lines:
            return True
        robot_part = len(lines) < len(p.record.body.lines)
        why = cases.busy() or await cases.release(p.record, robot_part)
        if why is not None:
            if why.startswith("stock_short") and not (p.waiting or "").startswith("stock_short"):
                self.metrics.stockouts.inc()
            # recorded when the reason changes, not when only the figures in brackets do
            if (p.waiting or "").split(" (")[0] != why.split(" (")[0]:
                await self._wait(p, why)
            return False
        if not robot_part:
            del self.pending[order_id]
            return False
        p.record = await self.history.get(order_id) or p.record
        p.waiting = None
        return True

    async def _plan(self, order_ids: list[str], limit: int) -> list[Planned]:
        """Stock for the most urgent orders, as if all of them were released now."""
        working = {sku: dict(locs) for sku, locs in self.inventory.view().items()}
        planned: list[Planned] = []
        for order_id in order_ids:
            p = self.pending.get(order_id)
            if p is None:  # withdrawn meanwhile
                continue
            if len(planned) >= limit:
                await self._wait(p, NO_ROBOT)
                continue
            picks = dispatch.allocate(self._demand(p.record), working, self.location_node)
            if isinstance(picks, dispatch.Shortage):
                if p.waiting is None or not p.waiting.startswith("stock_short"):
                    self.metrics.stockouts.inc()
                short = f"stock_short: {picks.sku} missing {picks.missing}"
                if p.waiting is None or not p.waiting.startswith(short + " "):
                    # what is on hand and reserved when the shortage is first seen (not
                    # recorded again on every change of those numbers)
                    totals = self.inventory.totals(picks.sku)
                    await self._wait(
                        p, f"{short} (on hand {totals.on_hand}, reserved {totals.reserved})"
                    )
                continue
            for pk in picks:
                working[pk.sku][pk.location] -= pk.quantity
            planned.append((p, picks))
        return planned

    def _batches(self, planned: list[Planned]) -> dict[str, list[Planned]]:
        """Small B2C orders share a robot trip (one tote each, up to the robot's totes)."""
        capacity = min(m.tote_capacity for m in self.config.robots.models.values())
        candidates = [
            batching.Candidate(
                p.record.id,
                p.record.due_at.timestamp(),
                p.record.priority,
                tuple(self.roadmap.index(pk.node) for pk in picks),
                batchable=p.record.type is OrderType.B2C,
            )
            for p, picks in planned
        ]
        by_id = {p.record.id: (p, picks) for p, picks in planned}
        return {
            b.order_ids[0]: [by_id[o] for o in b.order_ids]
            for b in batching.make_batches(self.roadmap.matrix, candidates, capacity)
        }

    def _assign(
        self, idle: list[dispatch.IdleRobot], batches: dict[str, list[Planned]]
    ) -> dict[str, str]:
        """Batch key -> robot serial, by minimum total cost (travel and urgency)."""
        robots = [
            assignment.Robot(
                r.serial, self.roadmap.index(r.node), self.config.robot_model(r.serial).speed
            )
            for r in idle
        ]
        tasks = [
            assignment.Task(
                key,
                self.roadmap.index(members[0][1][0].node),
                min(p.record.due_at.timestamp() for p, _ in members),
                max(p.record.priority for p, _ in members),
            )
            for key, members in batches.items()
        ]
        now = self.clock.utcnow().timestamp()
        result = assignment.assign(self.roadmap.matrix, robots, tasks, now)
        return {task: serial for serial, task in result.pairs}

    def _demand(self, rec: OrderRecord) -> list[dispatch.LineDemand]:
        """What a robot picks: every line not served from the AS/RS, in units."""
        from_asrs = self.case_picks.released(rec.id) if self.case_picks else frozenset()
        return [
            dispatch.LineDemand(
                ln.line_id,
                ln.sku,
                ln.quantity * (self.case_qty.get(ln.sku, 1) if ln.uom == "case" else 1),
            )
            for ln in rec.body.lines
            if ln.line_id not in from_asrs
        ]

    async def _release(self, robot: dispatch.IdleRobot, members: list[Planned]) -> bool:
        """Send one robot job carrying every member order's trip; record each order's step."""
        job_id = f"job-{uuid.uuid4().hex[:12]}"
        all_picks = [pk for _, picks in members for pk in picks]
        stops = dispatch.order_stops(self.roadmap, robot.node, [pk.node for pk in all_picks])
        induction_node = dispatch.nearest(self.roadmap, stops[-1], list(self.induction_nodes))
        induction = self.induction_nodes[induction_node].id
        now = self.clock.utcnow()
        trips = [
            Trip(
                f"trip-{uuid.uuid4().hex[:12]}",
                p.record.id,
                robot.serial,
                f"TOTE-{uuid.uuid4().hex[:10].upper()}",
                tuple(picks),
                induction,
                now,
                p.record.destination,
                p.record.type is OrderType.B2B,
            )
            for p, picks in members
        ]
        path = self.roadmap.tour(robot.node, [*stops, induction_node])
        order, actions = self._job_order(job_id, robot.serial, path, trips)
        if not await self._reserve(trips):
            return False
        try:
            await self.fleet.send_order(robot.serial, order)
        except DeviceError as exc:
            for trip in trips:
                await self.inventory.release(trip.order_id, trip.picks, trip.trip_id, "not sent")
            self.metrics.robot_trips.labels("send_failed").inc()
            why = (
                f"robot_refused: {exc.reason.value} ({exc.serial})"
                if isinstance(exc, OrderRefused)
                else f"robot_unavailable: {exc}"
            )
            for p, _ in members:
                await self._wait(p, why)
            return False
        self.flight.start(job_id, trips, actions)
        self.metrics.robot_trips.labels("sent").inc()
        for (p, picks), trip in zip(members, trips, strict=True):
            del self.pending[p.record.id]
            await self.history.record(
                p.record,
                "robot_assigned",
                OrderStatus.RELEASED,
                step="robot_assigned",
                waiting_reason=None,
                data={
                    "robot": robot.serial,
                    "job": job_id,
                    "orders_on_trip": len(members),
                    "trip": trip.trip_id,
                    "tote": trip.tote,
                    "picks": [
                        {"line_id": pk.line_id, "location": pk.location, "quantity": pk.quantity}
                        for pk in picks
                    ],
                },
            )
        return True

    async def _reserve(self, trips: list[Trip]) -> bool:
        """Reserve the stock of every trip of the job, or none of it."""
        done: list[Trip] = []
        for trip in trips:
            try:
                await self.inventory.reserve(trip.order_id, trip.picks, trip.trip_id)
            except InsufficientStock as exc:
                for ok in done:
                    await self.inventory.release(ok.order_id, ok.picks, ok.trip_id, "not sent")
                log.warning("stock changed before release", extra={"error": str(exc)})
                p = self.pending.get(trip.order_id)
                if p is not None:
                    await self._wait(p, f"stock_short: {exc}")
                return False
            done.append(trip)
        return True

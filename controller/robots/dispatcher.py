"""Releasing orders to robots: which order next, from which shelves, on which robot.

Decisions come from ``routing.dispatch`` on a snapshot of the queue, the stock and the fleet; this
module turns them into VDA 5050-neutral robot orders and records each step. Every round first
sends the robots' errands (trips taken over, totes of void trips, charging), then releases orders.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime

from controller.asrs.case_picks.picks import CasePicks
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderRecord, OrderStatus, OrderType
from controller.orders.waiting import (
    ConveyorUnavailable,
    LineHeld,
    NoRobotFree,
    OutsideDeliveryWindow,
    RobotRefused,
    RobotUnavailable,
    StockRefused,
    StockShort,
    Waiting,
    same_reason,
)
from controller.robots.dispatch_state import DispatchState, RobotOrders
from controller.robots.errands import RobotErrands
from controller.robots.queue import Pending, ReleaseQueue
from controller.robots.trip_records import job_data
from controller.store.inventory import InsufficientStock
from devices import base as dev
from devices.errors import DeviceError, OrderRefused
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import assignment, batching, dispatch
from routing.roadmap import Roadmap

log = logging.getLogger(__name__)

NO_ROBOT = NoRobotFree()
CONVEYOR_DOWN = ConveyorUnavailable()
OUTSIDE_WINDOW = OutsideDeliveryWindow()
LINE_HELD = LineHeld()
CANDIDATES_PER_ROBOT = 12  # most urgent orders considered per idle robot in one round

Planned = tuple[Pending, list[dispatch.Pick]]


class Dispatcher:
    """The order release (see the module docstring): the queue, and a round that sends the
    robots' errands and then releases what can go. Its parts share one
    :class:`~controller.robots.dispatch_state.DispatchState`: ``errands`` sends the robots'
    errands and ``release`` releases queued orders, both with robot orders built by
    ``orders``."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        history: History,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        sorter: dev.Sorter,
        flight: InFlight,
        inventory: Inventory,
        accepts_trips: Callable[[str], bool] = lambda serial: True,
        case_picks: CasePicks | None = None,
    ) -> None:
        self.shared = DispatchState.for_line(
            config,
            clock,
            history,
            metrics,
            fleet,
            sorter,
            flight,
            inventory,
            accepts_trips,
            case_picks,
        )
        self.orders = RobotOrders(config, self.shared.roadmap)
        self.errands = RobotErrands(self.shared, self.orders)
        self.release = OrderRelease(self.shared, self.orders)
        # nothing is dispatched before this says so (the robots' take-over at start)
        self.ready: Callable[[], bool] = lambda: True
        self.before_round: Callable[[], Awaitable[None]] | None = None  # the take-over's poll
        self._seq = 0
        self._wake = asyncio.Event()

    # --- what callers read and set ----------------------------------------------------------

    @property
    def pending(self) -> ReleaseQueue:
        """The orders not yet released."""
        return self.shared.pending

    @property
    def charging(self) -> dict[str, str]:
        """Robot -> the charger node it goes to or charges at."""
        return self.shared.charging

    @property
    def roadmap(self) -> Roadmap:
        return self.shared.roadmap

    @property
    def held(self) -> bool:
        """An operator holds the line: no order is released."""
        return self.shared.held

    @held.setter
    def held(self, held: bool) -> None:
        self.shared.held = held

    @property
    def store_held(self) -> str | None:
        """Why the order store cannot write: nothing is released and no waiting is recorded."""
        return self.shared.store_held

    @store_held.setter
    def store_held(self, reason: str | None) -> None:
        self.shared.store_held = reason

    # --- the queue -------------------------------------------------------------------------

    def add(self, record: OrderRecord) -> None:
        self._seq += 1
        # the reason already recorded (a restart) is not written again
        p = Pending(record, self._seq, waiting=record.waiting)
        p.asrs = self._needs_asrs(record)
        self.shared.pending.add(p, self.shared.clock.utcnow())
        self._wake.set()

    def _needs_asrs(self, record: OrderRecord) -> bool:
        cases = self.shared.case_picks
        return cases is not None and not cases.serves(record.id) and bool(cases.asrs_lines(record))

    def changed(self, record: OrderRecord) -> None:
        if self.shared.pending.changed(record) is not None:
            self._wake.set()

    def withdraw(self, order_id: str) -> bool:
        """Take a not yet released order out of the queue (cancel)."""
        return self.shared.pending.pop(order_id) is not None

    def wake(self) -> None:
        self._wake.set()

    async def loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.shared.clock.wall_seconds(2.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.dispatch_once()

    async def dispatch_once(self) -> None:
        """One round: the robots' errands first, then the release of queued orders."""
        if self.before_round is not None:
            await self.before_round()
        if not self.ready():
            return
        await self.errands.continue_trips()
        await self.errands.return_totes()
        await self.errands.charge()
        await self.release.release_round()


class OrderRelease:
    """Which queued orders go now, from which shelves, on which robot; and why the others
    wait."""

    def __init__(self, shared: DispatchState, orders: RobotOrders) -> None:
        self.shared = shared
        self.orders = orders

    async def _wait(self, p: Pending, reason: Waiting) -> None:
        """Record why the order waits, once per reason."""
        if p.waiting == reason:
            return
        p.waiting = reason
        p.record = await self.shared.history.record(p.record, "waiting", waiting=reason)

    # --- a round -----------------------------------------------------------------------------

    def _idle_robots(self) -> list[dispatch.IdleRobot]:
        shared = self.shared
        loaded = shared.flight.loaded_robots()
        busy = shared.flight.busy_robots
        # the cheap checks first, on every robot; the full snapshot of the few that pass
        free = [
            serial
            for serial, p in shared.fleet.robot_positions().items()
            if p.last_node_id
            and not p.driving
            and serial not in busy
            and serial not in shared.charging
            and serial not in loaded  # totes still on it go first
            and shared.accepts_trips(serial)
        ]
        return [
            dispatch.IdleRobot(s.serial, s.last_node_id)
            for s in shared.fleet.snapshot_of(free).values()
            if s.available and s.last_node_id and s.order_hold is None and not s.driving
        ]

    async def release_round(self) -> None:
        """Release what can go now. Its cost follows the robots free and the head of the queue,
        not the queue's length: only the orders that could go now are planned, and only they
        (and the few at the head when nothing can go) get a waiting reason written."""
        if not self.shared.pending or self.shared.store_held is not None:
            return
        now = self.shared.clock.utcnow()
        for p in self.shared.pending.deferred():
            await self._wait(p, OUTSIDE_WINDOW)
        idle = self._idle_robots()
        head = CANDIDATES_PER_ROBOT * max(1, len(idle))
        line_reason: Waiting | None = (
            LINE_HELD
            if self.shared.held
            else CONVEYOR_DOWN
            if not self.shared.sorter.snapshot().connected
            else None
        )
        if line_reason is not None:
            for p in itertools.islice(self.shared.pending.in_release_order(now), head):
                await self._wait(p, line_reason)
            return
        for p in self.shared.pending.in_release_order(now, asrs_only=True):
            await self._release_cases(p.record.id)
        if not idle:
            for p in itertools.islice(self._robot_ready(now), head):
                await self._wait(p, NO_ROBOT)
            return
        planned = await self._plan(self._robot_ready(now), limit=head)
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

    def _robot_ready(self, now: datetime) -> Iterator[Pending]:
        """Queued orders a robot can take now (their AS/RS lines, if any, already asked for)."""
        for p in self.shared.pending.in_release_order(now):
            if not p.asrs:
                yield p

    async def _release_cases(self, order_id: str) -> bool:
        """Hand the order's AS/RS case lines to the AS/RS first; True when the order (still)
        needs a robot for its other lines."""
        p = self.shared.pending.get(order_id)
        if p is None:
            return False
        cases = self.shared.case_picks
        if cases is None or cases.serves(order_id):
            self.shared.pending.served_by_asrs(order_id)
            return True
        lines = cases.asrs_lines(p.record)
        if not lines:
            self.shared.pending.served_by_asrs(order_id)
            return True
        robot_part = len(lines) < len(p.record.body.lines)
        why = cases.busy() or await cases.release(p.record, robot_part)
        if why is not None:
            if why.kind.stock_short and not _stock_short(p.waiting):
                self.shared.metrics.stockouts.inc()
            # recorded when the reason changes, not when only the figures in brackets do
            if not same_reason(p.waiting, why):
                await self._wait(p, why)
            return False
        self.shared.pending.served_by_asrs(order_id)
        if not robot_part:
            del self.shared.pending[order_id]
            return False
        p.record = await self.shared.history.get(order_id) or p.record
        p.waiting = None
        return True

    async def _plan(self, queue: Iterable[Pending], limit: int) -> list[Planned]:
        """Stock for the most urgent orders, as if all of them were released now: up to
        ``limit`` orders that can be served (an order short of stock does not count)."""
        working = {sku: dict(locs) for sku, locs in self.shared.inventory.view().items()}
        planned: list[Planned] = []
        for p in queue:
            if len(planned) >= limit:
                break
            if p.record.id not in self.shared.pending:  # withdrawn meanwhile
                continue
            picks = dispatch.allocate(self._demand(p.record), working, self.shared.location_node)
            if isinstance(picks, dispatch.Shortage):
                if not _stock_short(p.waiting):
                    self.shared.metrics.stockouts.inc()
                totals = self.shared.inventory.totals(picks.sku)
                short = StockShort(picks.sku, picks.missing, totals.on_hand, totals.reserved)
                # what is on hand and reserved when the shortage is first seen (not recorded
                # again on every change of those numbers)
                if not same_reason(p.waiting, short):
                    await self._wait(p, short)
                continue
            for pk in picks:
                working[pk.sku][pk.location] -= pk.quantity
            planned.append((p, picks))
        return planned

    def _batches(self, planned: list[Planned]) -> dict[str, list[Planned]]:
        """Small B2C orders share a robot trip (one tote each, up to the robot's totes)."""
        capacity = min(m.tote_capacity for m in self.shared.config.robots.models.values())
        candidates = [
            batching.Candidate(
                p.record.id,
                p.record.due_at.timestamp(),
                p.record.priority,
                tuple(self.shared.roadmap.index(pk.node) for pk in picks),
                batchable=p.record.type is OrderType.B2C,
            )
            for p, picks in planned
        ]
        by_id = {p.record.id: (p, picks) for p, picks in planned}
        return {
            b.order_ids[0]: [by_id[o] for o in b.order_ids]
            for b in batching.make_batches(self.shared.roadmap.matrix, candidates, capacity)
        }

    def _assign(
        self, idle: list[dispatch.IdleRobot], batches: dict[str, list[Planned]]
    ) -> dict[str, str]:
        """Batch key -> robot serial, by minimum total cost (travel and urgency)."""
        robots = [
            assignment.Robot(
                r.serial,
                self.shared.roadmap.index(r.node),
                self.shared.models[r.serial].speed,
            )
            for r in idle
        ]
        tasks = [
            assignment.Task(
                key,
                self.shared.roadmap.index(members[0][1][0].node),
                min(p.record.due_at.timestamp() for p, _ in members),
                max(p.record.priority for p, _ in members),
            )
            for key, members in batches.items()
        ]
        now = self.shared.clock.utcnow().timestamp()
        result = assignment.assign(self.shared.roadmap.matrix, robots, tasks, now)
        return {task: serial for serial, task in result.pairs}

    def _demand(self, rec: OrderRecord) -> list[dispatch.LineDemand]:
        """What a robot picks: every line not served from the AS/RS, in units."""
        from_asrs = (
            self.shared.case_picks.released(rec.id) if self.shared.case_picks else frozenset()
        )
        return [
            dispatch.LineDemand(
                ln.line_id,
                ln.sku,
                ln.quantity * (self.shared.case_qty.get(ln.sku, 1) if ln.uom == "case" else 1),
            )
            for ln in rec.body.lines
            if ln.line_id not in from_asrs
        ]

    async def _release(self, robot: dispatch.IdleRobot, members: list[Planned]) -> bool:
        """Send one robot job carrying every member order's trip; record each order's step."""
        job_id = f"job-{uuid.uuid4().hex[:12]}"
        all_picks = [pk for _, picks in members for pk in picks]
        stops = dispatch.order_stops(self.shared.roadmap, robot.node, [pk.node for pk in all_picks])
        induction_node = dispatch.nearest(
            self.shared.roadmap, stops[-1], list(self.shared.induction_nodes)
        )
        induction = self.shared.induction_nodes[induction_node].id
        now = self.shared.clock.utcnow()
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
        path = self.shared.roadmap.tour(robot.node, [*stops, induction_node])
        order, actions = self.orders.for_trips(job_id, robot.serial, path, trips)
        if not await self._reserve(trips):
            return False
        try:
            await self.shared.fleet.send_order(robot.serial, order)
        except DeviceError as exc:
            for trip in trips:
                await self.shared.inventory.release(
                    trip.order_id, trip.picks, trip.trip_id, "not sent"
                )
            self.shared.metrics.robot_trips.labels("send_failed").inc()
            why: Waiting = (
                RobotRefused(exc.reason.value, exc.serial)
                if isinstance(exc, OrderRefused)
                else RobotUnavailable(str(exc))
            )
            for p, _ in members:
                await self._wait(p, why)
            return False
        self.shared.flight.start(job_id, trips, actions)
        self.shared.metrics.robot_trips.labels("sent").inc()
        for (p, _), trip in zip(members, trips, strict=True):
            del self.shared.pending[p.record.id]
            await self.shared.history.record(
                p.record,
                "robot_assigned",
                OrderStatus.RELEASED,
                step="robot_assigned",
                waiting=None,
                data={
                    **job_data(trip, robot.serial, job_id, actions),
                    "orders_on_trip": len(members),
                },
            )
        return True

    async def _reserve(self, trips: list[Trip]) -> bool:
        """Reserve the stock of every trip of the job, or none of it."""
        done: list[Trip] = []
        for trip in trips:
            try:
                await self.shared.inventory.reserve(trip.order_id, trip.picks, trip.trip_id)
            except InsufficientStock as exc:
                for ok in done:
                    await self.shared.inventory.release(
                        ok.order_id, ok.picks, ok.trip_id, "not sent"
                    )
                log.warning("stock changed before release", extra={"error": str(exc)})
                p = self.shared.pending.get(trip.order_id)
                if p is not None:
                    await self._wait(p, StockRefused(str(exc)))
                return False
            done.append(trip)
        return True


def _stock_short(waiting: Waiting | None) -> bool:
    return waiting is not None and waiting.kind.stock_short

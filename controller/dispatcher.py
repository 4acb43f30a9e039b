"""Releasing orders to robots: which order next, from which shelves, on which robot.

Decisions come from ``routing.dispatch`` on a snapshot of the queue, the stock and the fleet; this
module turns them into VDA 5050-neutral robot orders and records each step.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass

from controller import topology
from controller.clock import Clock
from controller.config.model import LineConfig
from controller.history import History
from controller.inventory import Inventory
from controller.metrics import Metrics
from controller.orders import OrderRecord, OrderStatus, OrderType
from controller.trips import InFlight, Trip
from devices import base as dev
from devices.errors import DeviceError
from routing import assignment, dispatch

log = logging.getLogger(__name__)

NO_ROBOT = "no_robot_free"
CONVEYOR_DOWN = "conveyor_unavailable"
OUTSIDE_WINDOW = "outside_delivery_window"
CANDIDATES_PER_ROBOT = 4  # most urgent orders considered per idle robot in one round


@dataclass
class Pending:
    record: OrderRecord
    seq: int
    waiting: str | None = None


class Dispatcher:
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
    ) -> None:
        self.config = config
        self.clock = clock
        self.history = history
        self.metrics = metrics
        self.fleet = fleet
        self.sorter = sorter
        self.flight = flight
        self.inventory = inventory
        self.roadmap = topology.roadmap(config)
        self.location_node = topology.location_nodes(config)
        self.case_qty = topology.case_quantities(config)
        self.induction_nodes = {i.node: i for i in config.robots.inductions}
        self.pending: dict[str, Pending] = {}
        self._seq = 0
        self._wake = asyncio.Event()

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
            and not s.driving
            and s.serial not in self.flight.busy_robots
        ]

    async def dispatch_once(self) -> None:
        await self._send_returns()
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
        if not self.sorter.snapshot().connected:
            for c in ready:
                await self._wait(self.pending[c.order_id], CONVEYOR_DOWN)
            return
        idle = self._idle_robots()
        planned = await self._plan(
            [c.order_id for c in ready], limit=CANDIDATES_PER_ROBOT * len(idle)
        )
        if not planned:
            return
        chosen = self._assign(idle, planned)
        by_serial = {r.serial: r for r in idle}
        for p, picks in planned:
            serial = chosen.get(p.record.id)
            if serial is None:
                await self._wait(p, NO_ROBOT)
            else:
                await self._release(p, by_serial[serial], picks)

    async def _plan(
        self, order_ids: list[str], limit: int
    ) -> list[tuple[Pending, list[dispatch.Pick]]]:
        """Stock for the most urgent orders, as if all of them were released now."""
        working = {sku: dict(locs) for sku, locs in self.inventory.view().items()}
        planned: list[tuple[Pending, list[dispatch.Pick]]] = []
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
                await self._wait(p, f"stock_short: {picks.sku} missing {picks.missing}")
                continue
            for pk in picks:
                working[pk.sku][pk.location] -= pk.quantity
            planned.append((p, picks))
        return planned

    def _assign(
        self, idle: list[dispatch.IdleRobot], planned: list[tuple[Pending, list[dispatch.Pick]]]
    ) -> dict[str, str]:
        """Order id -> robot serial, by minimum total cost (travel and urgency)."""
        robots = [
            assignment.Robot(
                r.serial, self.roadmap.index(r.node), self.config.robot_model(r.serial).speed
            )
            for r in idle
        ]
        tasks = [
            assignment.Task(
                p.record.id,
                self.roadmap.index(picks[0].node),
                p.record.due_at.timestamp(),
                p.record.priority,
            )
            for p, picks in planned
        ]
        now = self.clock.utcnow().timestamp()
        result = assignment.assign(self.roadmap.matrix, robots, tasks, now)
        return {task: serial for serial, task in result.pairs}

    def _demand(self, rec: OrderRecord) -> list[dispatch.LineDemand]:
        return [
            dispatch.LineDemand(
                ln.line_id,
                ln.sku,
                ln.quantity * (self.case_qty.get(ln.sku, 1) if ln.uom == "case" else 1),
            )
            for ln in rec.body.lines
        ]

    async def _wait(self, p: Pending, reason: str) -> None:
        if p.waiting == reason:
            return
        p.waiting = reason
        p.record = await self.history.record(p.record, "waiting", waiting_reason=reason)

    async def _release(
        self, p: Pending, robot: dispatch.IdleRobot, picks: list[dispatch.Pick]
    ) -> bool:
        trip_id = f"trip-{uuid.uuid4().hex[:12]}"
        tote = f"TOTE-{uuid.uuid4().hex[:10].upper()}"
        stops = dispatch.order_stops(self.roadmap, robot.node, [pk.node for pk in picks])
        induction_node = dispatch.nearest(self.roadmap, stops[-1], list(self.induction_nodes))
        order = self._robot_order(trip_id, robot, tote, picks, stops, induction_node)
        self.inventory.reserve(picks)
        try:
            await self.fleet.send_order(robot.serial, order)
        except DeviceError as exc:
            self.inventory.release(picks)
            self.metrics.robot_trips.labels("send_failed").inc()
            await self._wait(p, f"robot_unavailable: {exc}")
            return False
        self.flight.start(
            Trip(
                trip_id,
                p.record.id,
                robot.serial,
                tote,
                tuple(picks),
                self.induction_nodes[induction_node].id,
                self.clock.utcnow(),
                p.record.destination,
                p.record.type is OrderType.B2B,
            )
        )
        self.metrics.robot_trips.labels("sent").inc()
        del self.pending[p.record.id]
        await self.history.record(
            p.record,
            "robot_assigned",
            OrderStatus.RELEASED,
            step="robot_assigned",
            waiting_reason=None,
            data={
                "robot": robot.serial,
                "trip": trip_id,
                "tote": tote,
                "picks": [
                    {"line_id": pk.line_id, "location": pk.location, "quantity": pk.quantity}
                    for pk in picks
                ],
            },
        )
        return True

    def _robot_order(
        self,
        trip_id: str,
        robot: dispatch.IdleRobot,
        tote: str,
        picks: list[dispatch.Pick],
        stops: list[str],
        induction_node: str,
    ) -> dev.RobotOrder:
        model = self.config.robot_model(robot.serial)
        path = self.roadmap.tour(robot.node, [*stops, induction_node])
        actions: dict[int, list[dev.RobotAction]] = {}
        stop_index: dict[str, int] = {}
        cursor = 0
        for node in stops:  # the path index at which each stop is reached
            cursor = path.index(node, cursor)
            stop_index.setdefault(node, cursor)
        for i, pk in enumerate(picks):
            params = {**model.pick.parameters, "loadId": tote, "stationName": pk.location}
            actions.setdefault(stop_index[pk.node], []).append(
                dev.RobotAction(
                    f"{trip_id}-pick-{i}", "pick", model.pick.blocking_type, tuple(params.items())
                )
            )
        drop_params = {**model.drop.parameters, "loadId": tote}
        actions.setdefault(len(path) - 1, []).append(
            dev.RobotAction(
                f"{trip_id}-drop", "drop", model.drop.blocking_type, tuple(drop_params.items())
            )
        )
        return self._route(trip_id, path, actions)

    def _route(
        self, trip_id: str, path: list[str], actions: dict[int, list[dev.RobotAction]]
    ) -> dev.RobotOrder:
        nodes = []
        for i, node_id in enumerate(path):
            n = self.roadmap.node(node_id)
            nodes.append(dev.RouteNode(node_id, n.x, n.y, n.map_id, tuple(actions.get(i, ()))))
        edges = tuple(
            dev.RouteEdge(a, b, self.roadmap.length(a, b), self.roadmap.edge(a, b).max_speed)
            for a, b in itertools.pairwise(path)
        )
        return dev.RobotOrder(trip_id, tuple(nodes), edges)

    # --- bringing back the tote of a cancelled trip ----------------------------------------

    async def _send_returns(self) -> None:
        """Robots holding a cancelled order's tote drop it at the nearest induction; the
        conveyor then takes it to the reject chute for restocking."""
        snapshots = self.fleet.snapshot()
        for trip in [t for t in self.flight.trips.values() if t.returning and not t.dropped]:
            if trip.serial in self.flight.busy_robots:
                continue
            snap = snapshots.get(trip.serial)
            if snap is None or not snap.available or snap.driving or not snap.last_node_id:
                continue
            node = dispatch.nearest(self.roadmap, snap.last_node_id, list(self.induction_nodes))
            path = self.roadmap.route(snap.last_node_id, node)
            model = self.config.robot_model(trip.serial)
            params = {**model.drop.parameters, "loadId": trip.tote}
            return_id = f"return-{uuid.uuid4().hex[:12]}"
            drop = dev.RobotAction(
                f"{return_id}-drop", "drop", model.drop.blocking_type, tuple(params.items())
            )
            order = self._route(return_id, path, {len(path) - 1: [drop]})
            try:
                await self.fleet.send_order(trip.serial, order)
            except DeviceError as exc:
                log.warning(
                    "could not send a tote return trip",
                    extra={"robot": trip.serial, "tote": trip.tote, "error": str(exc)},
                )
                continue
            self.flight.rekey(trip, return_id, self.induction_nodes[node].id)

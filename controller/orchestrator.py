"""Orchestration: orders through robots, conveyor and sorter to completion.

accepted -> released (robot assigned) -> picking -> in_transit (dropped on the conveyor) ->
scanned -> diverted -> sorted -> completed, each step an event in the order's history. Decisions
come from ``routing/`` on a snapshot; this module only moves facts between the store, the
devices and those decisions.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controller import topology
from controller.clock import Clock
from controller.config.model import LineConfig
from controller.metrics import Metrics
from controller.orders import OrderRecord, OrderStatus, OrderType
from controller.store.base import OrderStore, StoreError
from controller.trips import InFlight, Trip
from devices import base as dev
from devices.errors import DeviceError
from routing import dispatch, sortation

log = logging.getLogger(__name__)

NO_ROBOT = "no_robot_free"
CONVEYOR_DOWN = "conveyor_unavailable"
OUTSIDE_WINDOW = "outside_delivery_window"


@dataclass
class Pending:
    record: OrderRecord
    seq: int
    waiting: str | None = None


class Orchestrator:
    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        store: OrderStore,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        sorter: dev.Sorter,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self.fleet = fleet
        self.sorter = sorter
        self.roadmap = topology.roadmap(config)
        self.plan = topology.sort_plan(config)
        self.stock = topology.initial_stock(config)
        self.location_node = topology.location_nodes(config)
        self.case_qty = topology.case_quantities(config)
        self.induction_nodes = {i.node: i for i in config.robots.inductions}
        self.flight = InFlight()
        self.pending: dict[str, Pending] = {}
        self._seq = 0
        self._wake = asyncio.Event()
        self._cancels: asyncio.Queue[str] = asyncio.Queue()
        # history writes of the sortation path, done after the divert call
        self._later: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()

    # --- intake ----------------------------------------------------------------------------

    def order_accepted(self, record: OrderRecord) -> None:
        self._seq += 1
        self.pending[record.id] = Pending(record, self._seq)
        self._wake.set()

    def order_changed(self, record: OrderRecord) -> None:
        pending = self.pending.get(record.id)
        if pending is not None:
            pending.record = record
            self._wake.set()

    def cancel_requested(self, record: OrderRecord) -> None:
        self._cancels.put_nowait(record.id)

    def wake(self) -> None:
        self._wake.set()

    async def resume(self) -> None:
        """Pick up non-terminal orders from the store after a start or restart."""
        for rec in await self.store.active_orders():
            if rec.status in (OrderStatus.ACCEPTED, OrderStatus.RELEASED, OrderStatus.PICKING):
                if rec.status is not OrderStatus.ACCEPTED:
                    rec = await self._record(
                        rec,
                        "requeued",
                        OrderStatus.ACCEPTED,
                        step="queued",
                        picked={},
                        data={"reason": "controller restarted before the pick finished"},
                    )
                self.order_accepted(rec)
            elif rec.status is OrderStatus.IN_TRANSIT:
                log.warning("order was on the conveyor at restart", extra={"order": rec.id})

    # --- dispatch --------------------------------------------------------------------------

    async def dispatch_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.clock.wall_seconds(2.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.dispatch_once()

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
        if not self.pending:
            return
        now = self.clock.utcnow()
        candidates = [
            dispatch.PendingOrder(
                p.record.id, p.record.due_at, p.record.priority, p.seq, p.record.body.deliver_from
            )
            for p in self.pending.values()
        ]
        ready = dispatch.release_order(candidates, now)
        ready_ids = {c.order_id for c in ready}
        for p in list(self.pending.values()):
            if p.record.id not in ready_ids:
                await self._wait(p, OUTSIDE_WINDOW)
        if not self.sorter.snapshot().connected:
            for c in ready:
                await self._wait(self.pending[c.order_id], CONVEYOR_DOWN)
            return
        idle = self._idle_robots()
        for c in ready:
            p = self.pending[c.order_id]
            if not idle:
                await self._wait(p, NO_ROBOT)
                continue
            demand = [
                dispatch.LineDemand(
                    ln.line_id,
                    ln.sku,
                    ln.quantity * (self.case_qty.get(ln.sku, 1) if ln.uom == "case" else 1),
                )
                for ln in p.record.body.lines
            ]
            picks = dispatch.allocate(demand, self.stock, self.location_node)
            if isinstance(picks, dispatch.Shortage):
                if p.waiting is None or not p.waiting.startswith("stock_short"):
                    self.metrics.stockouts.inc()
                await self._wait(p, f"stock_short: {picks.sku} missing {picks.missing}")
                continue
            robot = dispatch.nearest_idle(self.roadmap, picks[0].node, idle)
            if robot is None:
                await self._wait(p, NO_ROBOT)
                continue
            if await self._release(p, robot, picks):
                idle.remove(robot)

    async def _wait(self, p: Pending, reason: str) -> None:
        if p.waiting == reason:
            return
        p.waiting = reason
        p.record = await self._record(p.record, "waiting", None, waiting_reason=reason)

    async def _release(
        self, p: Pending, robot: dispatch.IdleRobot, picks: list[dispatch.Pick]
    ) -> bool:
        trip_id = f"trip-{uuid.uuid4().hex[:12]}"
        tote = f"TOTE-{uuid.uuid4().hex[:10].upper()}"
        stops = dispatch.order_stops(self.roadmap, robot.node, [pk.node for pk in picks])
        induction_node = dispatch.nearest(self.roadmap, stops[-1], list(self.induction_nodes))
        order = self._robot_order(trip_id, robot, tote, picks, stops, induction_node)
        for pk in picks:
            self.stock[pk.sku][pk.location] -= pk.quantity
        trip = Trip(
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
        try:
            await self.fleet.send_order(robot.serial, order)
        except DeviceError as exc:
            for pk in picks:
                self.stock[pk.sku][pk.location] += pk.quantity
            self.metrics.robot_trips.labels("send_failed").inc()
            await self._wait(p, f"robot_unavailable: {exc}")
            return False
        self.flight.start(trip)
        self.metrics.robot_trips.labels("sent").inc()
        del self.pending[p.record.id]
        await self._record(
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
        for node in [*stops, induction_node]:  # the path index where each stop is reached
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
        nodes = []
        for i, node_id in enumerate(path):
            n = self.roadmap.node(node_id)
            nodes.append(dev.RouteNode(node_id, n.x, n.y, n.map_id, tuple(actions.get(i, ()))))
        edges = tuple(
            dev.RouteEdge(a, b, self.roadmap.length(a, b), self.roadmap.edge(a, b).max_speed)
            for a, b in itertools.pairwise(path)
        )
        return dev.RobotOrder(trip_id, tuple(nodes), edges)

    # --- device events ---------------------------------------------------------------------

    async def consume(self, queue: asyncio.Queue[dev.DeviceEvent]) -> None:
        while True:
            event = await queue.get()
            try:
                await self.handle(event)
            except StoreError:
                log.exception("could not record a device event", extra={"event": repr(event)})

    async def handle(self, event: dev.DeviceEvent) -> None:
        match event:
            case dev.RobotActionFinished():
                await self._action_finished(event)
            case dev.RobotActionFailed():
                await self._action_failed(event)
            case dev.RobotOrderFinished():
                await self._trip_finished(event)
            case dev.RobotAvailability() | dev.ConveyorAvailability():
                self._wake.set()
            case dev.ItemScanned():
                await self._scanned(event)
            case dev.ItemDiverted():
                self._later.put_nowait(functools.partial(self._diverted, event))
            case dev.ItemInducted():
                self.flight.item(event.item_id)

    async def _order(self, order_id: str) -> OrderRecord | None:
        return await self.store.get_order(order_id)

    async def _record(
        self,
        rec: OrderRecord,
        event_type: str,
        status: OrderStatus | None,
        **changes: Any,
    ) -> OrderRecord:
        """Append a history event; return the order as it now stands."""
        await self.store.record(rec.id, event_type, self.clock.utcnow(), status=status, **changes)
        updated = await self.store.get_order(rec.id)
        return updated if updated is not None else rec

    async def _action_finished(self, ev: dev.RobotActionFinished) -> None:
        trip = self.flight.trips.get(ev.order_id)
        if trip is None:
            return
        rec = await self._order(trip.order_id)
        if rec is None or rec.status.terminal:
            return
        if ev.action_type == "pick":
            index = int(ev.action_id.rsplit("-", 1)[1])
            pk = trip.picks[index]
            trip.picked[pk.line_id] = trip.picked.get(pk.line_id, 0) + pk.quantity
            await self._record(
                rec,
                "picked",
                OrderStatus.PICKING,
                step="picking",
                picked=dict(trip.picked),
                data={
                    "robot": ev.serial,
                    "line_id": pk.line_id,
                    "location": pk.location,
                    "quantity": pk.quantity,
                },
            )
        elif ev.action_type == "drop":
            trip.dropped = True
            await self._record(
                rec,
                "dropped",
                OrderStatus.IN_TRANSIT,
                step="on_conveyor",
                data={"robot": ev.serial, "tote": trip.tote, "induction": trip.induction},
            )

    async def _action_failed(self, ev: dev.RobotActionFailed) -> None:
        trip = self.flight.trips.get(ev.order_id)
        if trip is None:
            return
        rec = await self._order(trip.order_id)
        if rec is not None and not rec.status.terminal:
            await self._record(
                rec,
                "robot_action_failed",
                OrderStatus.EXCEPTION,
                step="exception",
                data={"robot": ev.serial, "action": ev.action_type, "reason": ev.reason},
            )

    async def _trip_finished(self, ev: dev.RobotOrderFinished) -> None:
        trip = self.flight.robot_done(ev.serial, ev.order_id)
        self._wake.set()
        if trip is None or trip.dropped:
            return
        rec = await self._order(trip.order_id)
        if (
            rec is not None
            and rec.status not in (OrderStatus.EXCEPTION,)
            and not rec.status.terminal
        ):
            await self._record(
                rec,
                "robot_trip_ended_without_drop",
                OrderStatus.EXCEPTION,
                step="exception",
                data={"robot": ev.serial, "trip": trip.trip_id},
            )

    async def _scanned(self, ev: dev.ItemScanned) -> None:
        """Decide and divert at once; the order's history is written afterwards."""
        item = self.flight.item(ev.item_id)
        item.passes += 1
        known = {
            code: sortation.ItemInfo(trip.destination, trip.b2b)
            for code in ev.codes
            if (trip := self.flight.by_tote.get(code)) is not None
        }
        unavailable = frozenset(
            c.chute_id for c in self.sorter.snapshot().chutes if c.full or not c.enabled
        )
        decision = sortation.decide(self.plan, ev.codes, known, item.passes, unavailable)
        self.metrics.sort_decisions.labels(decision.outcome.value).inc()
        if decision.code is not None:
            item.tote = decision.code
        if decision.chute is not None:
            try:
                await self.sorter.divert(ev.item_id, decision.chute)
            except DeviceError as exc:
                log.warning("divert refused", extra={"item": ev.item_id, "error": str(exc)})
                self.metrics.sort_decisions.labels("divert_failed").inc()
                return
            self.metrics.scan_to_divert_seconds.observe(time.perf_counter() - ev.received)
            item.chute = decision.chute
        trip = self.flight.by_tote.get(item.tote) if item.tote else None
        if trip is not None:
            data = {
                "scanner": ev.scanner_id,
                "pass": item.passes,
                "outcome": decision.outcome.value,
                "chute": decision.chute,
                "reason": decision.reason.value if decision.reason else None,
            }
            self._later.put_nowait(functools.partial(self._record_scan, trip.order_id, data))

    async def _record_scan(self, order_id: str, data: dict[str, Any]) -> None:
        rec = await self._order(order_id)
        if rec is not None and not rec.status.terminal:
            await self._record(rec, "scanned", None, step="sorting", data=data)

    async def history_loop(self) -> None:
        """Write what the sortation path deferred, in order, off the time-critical path."""
        while True:
            write = await self._later.get()
            try:
                await write()
            except StoreError:
                log.exception("could not record a sortation event")

    async def _diverted(self, ev: dev.ItemDiverted) -> None:
        item = self.flight.items.get(ev.item_id)
        trip = self.flight.by_tote.get(item.tote) if item and item.tote else None
        if not ev.ok:
            # the sorter could not divert (chute full or disabled): the item rides on and is
            # scanned again on its next pass
            self.metrics.sort_decisions.labels("divert_refused").inc()
            if item is not None:
                item.chute = None
            rec = await self._order(trip.order_id) if trip is not None else None
            if rec is not None and not rec.status.terminal:
                await self._record(
                    rec,
                    "divert_refused",
                    None,
                    step="recirculating",
                    data={"chute": ev.chute_id, "divert": ev.divert_id},
                )
            return
        self.flight.items.pop(ev.item_id, None)
        if trip is None:
            return
        self.flight.forget(trip)
        rec = await self._order(trip.order_id)
        if rec is None or rec.status.terminal:
            return
        if ev.chute_id == self.plan.reject_chute:
            await self._record(
                rec,
                "rejected",
                OrderStatus.EXCEPTION,
                step="reject_chute",
                data={"chute": ev.chute_id},
            )
            self.metrics.orders_finished.labels(rec.type.value, "exception").inc()
            return
        rec = await self._record(
            rec,
            "sorted",
            OrderStatus.SORTED,
            step="in_chute",
            data={"chute": ev.chute_id, "divert": ev.divert_id},
        )
        await self._record(rec, "completed", OrderStatus.COMPLETED, step=None, waiting_reason=None)
        cycle = (self.clock.utcnow() - rec.created_at).total_seconds()
        self.metrics.order_cycle_seconds.labels(rec.type.value).observe(cycle)
        self.metrics.orders_finished.labels(rec.type.value, "completed").inc()

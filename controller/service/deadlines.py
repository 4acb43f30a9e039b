"""Every wait bounded: one watcher on the line clock checks each stage against its deadline.

The deadlines come from :func:`controller.service.deadline_limits.limits`. Once per tick the watcher
looks at what is in flight and notes when each thing entered its current stage (so nothing is
timed per order by a sleeping task); past a deadline it acts once, counts the stage in
``linectl_deadline_exceeded_total{stage}`` and logs it:

- **scan** / **sort**: a robot's tote dropped on the conveyor that does not reach the scanner,
  or once scanned does not reach a chute, within the conveyor's *running* time (while the
  conveyor is held, jammed or out of contact the clock stops: those have their own handling) is
  lost on the conveyor. Its order goes to ``exception`` with the reason; a tote of a void trip
  (the order was cancelled or given to another robot) is written off in the order's history.
  An AS/RS tote gets the reason on its order and stays followed.
- **robot_step**: a robot on a trip that makes no progress (it stands on one node, no pick done)
  for the deadline gives its trip away: ``on_robot_overdue`` (the orchestrator) sends the order
  to another robot and counts the fault against the robot. Time while the robot drives, is
  unavailable or paused, waits for a node another robot holds, or waits to drop while the
  conveyor stands does not count (traffic control and the robot watch handle those).
- **crane_command**: a crane command accepted and not reported finished is reported (it is
  never sent again: a crane command must not run twice) and the order it serves says why it
  waits.
- **station**: a B2B order waiting for verification says so in its ``waiting_reason``; people
  work there, so it never goes to exception for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from controller.asrs.flows import AsrsFlows
from controller.line.history import History
from controller.line.stations import Stations
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderStatus
from controller.orders.waiting import Overdue, Stage
from controller.service.deadline_limits import Limits
from controller.store.asrs import CommandState
from controller.store.base import StoreError
from devices import base as dev
from kernel.clock import Clock
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

RobotOverdue = Callable[[Trip, Overdue], Awaitable[None]]
RUNNING = "Execute"  # the conveyor's PackML state while its belts carry totes


class DeadlineWatch:
    def __init__(
        self,
        limits: Limits,
        clock: Clock,
        history: History,
        metrics: Metrics,
        flight: InFlight,
        sorter: dev.Sorter,
        fleet: dev.RobotFleet,
        stations: Stations,
        on_robot_overdue: RobotOverdue,
        asrs: AsrsFlows | None = None,
        waits_for_traffic: Callable[[str], bool] = lambda serial: False,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.history = history
        self.metrics = metrics
        self.flight = flight
        self.sorter = sorter
        self.fleet = fleet
        self.stations = stations
        self.on_robot_overdue = on_robot_overdue
        self.asrs = asrs
        self.waits_for_traffic = waits_for_traffic
        self.tick = max(0.5, min(5.0, min(limits.scan, limits.sort, limits.robot_step) / 20))
        self.belt_time = 0.0  # line seconds the conveyor has been running
        self._belt: dict[str, tuple[Stage, float]] = {}  # trip -> stage, belt time it began
        # trip -> (picks done, robot's last node), line time it was last seen to change
        self._steps: dict[str, tuple[tuple[int, str | None], float]] = {}
        self._since: dict[tuple[Stage, str], float] = {}  # station / crane: line time since
        self._reported: set[tuple[Stage, str]] = set()  # told once, still there
        self._failing = False  # the store refused the last write (logged once)

    async def run(self) -> None:
        log.info("deadlines in force (line seconds)", extra=self.limits.document())
        last = self.clock.now()
        while True:
            await self.clock.sleep(self.tick)
            now = self.clock.now()
            self.advance(now - last)
            last = now
            try:
                await self.check()
            except StoreError as exc:
                if not self._failing:
                    log.warning(
                        "could not record an overdue stage; tried again on the next check",
                        extra={"error": str(exc)},
                    )
                self._failing = True
            else:
                self._failing = False

    def conveyor_running(self) -> bool:
        snap = self.sorter.snapshot()
        return snap.connected and snap.state == RUNNING and not snap.jammed_zones

    def advance(self, elapsed: float) -> None:
        """``elapsed`` line seconds went by; they count on the belt only while it runs."""
        if self.conveyor_running():
            self.belt_time += elapsed

    async def check(self) -> None:
        """One round over everything that has a deadline."""
        await self._conveyor()
        await self._robots()
        await self._stations()
        await self._cranes()

    def _overdue(self, overdue: Overdue, **extra: Any) -> None:
        self.metrics.deadline_exceeded.labels(overdue.stage.value).inc()
        log.warning(
            "deadline exceeded",
            extra={**overdue.data(), **extra, "reason": overdue.render()},
        )

    # --- totes on the conveyor ------------------------------------------------------------

    async def _conveyor(self) -> None:
        scanned = {item.tote for item in self.flight.items.values() if item.tote}
        on_belt = [t for t in self.flight.trips.values() if t.dropped]
        self._belt = {k: v for k, v in self._belt.items() if k in self.flight.trips}
        totes = {f"{t.order_id}:{t.tote}" for t in on_belt}
        self._reported -= {
            k for k in self._reported if k[0] in (Stage.SCAN, Stage.SORT) and k[1] not in totes
        }
        for trip in on_belt:
            stage = Stage.SORT if trip.tote in scanned else Stage.SCAN
            entered = self._belt.get(trip.trip_id)
            if entered is None or entered[0] is not stage:
                self._belt[trip.trip_id] = (stage, self.belt_time)
                continue
            waited = self.belt_time - entered[1]
            limit = self.limits.sort if stage is Stage.SORT else self.limits.scan
            if waited <= limit:
                continue
            overdue = Overdue(stage, trip.tote, waited, limit)
            if trip.case_tote:
                await self._tell_once(trip.order_id, overdue)
            else:
                await self._lost(trip, overdue)

    async def _lost(self, trip: Trip, overdue: Overdue) -> None:
        rec = await self.history.get(trip.order_id)
        data = {**overdue.data(), "tote": trip.tote, "induction": trip.induction}
        ended = rec is not None and (rec.status.terminal or rec.status is OrderStatus.EXCEPTION)
        if rec is not None and (ended or trip.requeued):
            await self.history.record(rec, "tote_lost_on_conveyor", data=data)
        elif rec is not None and trip.void:  # on its way to the reject chute to end it
            await self.history.finish(
                rec, "cancelled", OrderStatus.CANCELLED, step=None, data={**data, "tote_lost": True}
            )
        elif rec is not None:
            await self.history.record(
                rec,
                "tote_lost_on_conveyor",
                OrderStatus.EXCEPTION,
                step="exception",
                waiting=overdue,
                data=data,
            )
            self.metrics.orders_finished.labels(rec.type.value, "exception").inc()
        self.flight.forget(trip)
        self._belt.pop(trip.trip_id, None)
        self._overdue(overdue, order=trip.order_id)

    # --- robots on their trips ------------------------------------------------------------

    async def _robots(self) -> None:
        now = self.clock.now()
        running = self.conveyor_running()
        trips = [t for t in self.flight.trips.values() if t.live and not t.case_tote]
        robots = self.fleet.snapshot_of({t.serial for t in trips})
        self._steps = {k: v for k, v in self._steps.items() if k in self.flight.trips}
        for trip in trips:
            robot = robots.get(trip.serial)
            # progress: a pick done, or a node reached on the way
            progress = (len(trip.picks_done), robot.last_node_id if robot is not None else None)
            excused = (
                robot is None
                or not robot.available
                or robot.paused
                or robot.driving
                or self.waits_for_traffic(trip.serial)
                or (not running and len(trip.picks_done) == len(trip.picks))  # waits to drop
            )
            seen = self._steps.get(trip.trip_id)
            if excused or seen is None or seen[0] != progress:
                self._steps[trip.trip_id] = (progress, now)
                continue
            waited = now - seen[1]
            if waited <= self.limits.robot_step:
                continue
            overdue = Overdue(Stage.ROBOT_STEP, trip.serial, waited, self.limits.robot_step)
            await self.on_robot_overdue(trip, overdue)
            self._steps.pop(trip.trip_id, None)
            self._overdue(overdue, order=trip.order_id, trip=trip.trip_id)

    # --- people and cranes: reported, never acted on -----------------------------------------

    async def _stations(self) -> None:
        waiting = {order_id: task.station_id for order_id, task in self.stations.tasks.items()}
        for order_id, station in waiting.items():
            if self._waited(Stage.STATION, order_id) > self.limits.station:
                overdue = Overdue(
                    Stage.STATION,
                    station,
                    self._waited(Stage.STATION, order_id),
                    self.limits.station,
                )
                await self._tell_once(order_id, overdue, key=order_id)
        self._forget(Stage.STATION, set(waiting))

    async def _cranes(self) -> None:
        if self.asrs is None:
            return
        sent = {c.command_id: c for c in self.asrs.open_commands() if c.state is CommandState.SENT}
        requests = {r.id: r for r in self.asrs.open_requests()}
        for command_id, command in sent.items():
            waited = self._waited(Stage.CRANE_COMMAND, command_id)
            if waited <= self.limits.crane_command:
                continue
            overdue = Overdue(Stage.CRANE_COMMAND, command_id, waited, self.limits.crane_command)
            served = [
                r.order_id
                for rid in (command.retrieve_request, command.store_request)
                if rid is not None and (r := requests.get(rid)) is not None and r.order_id
            ]
            if not served and (Stage.CRANE_COMMAND, command_id) not in self._reported:
                self._reported.add((Stage.CRANE_COMMAND, command_id))
                self._overdue(overdue, aisle=command.aisle)
            for order_id in served:
                await self._tell_once(order_id, overdue, key=command_id, aisle=command.aisle)
        self._forget(Stage.CRANE_COMMAND, set(sent))

    def _waited(self, stage: Stage, key: str) -> float:
        now = self.clock.now()
        return now - self._since.setdefault((stage, key), now)

    def _forget(self, stage: Stage, present: set[str]) -> None:
        for key in [k for k in self._since if k[0] is stage and k[1] not in present]:
            del self._since[key]
            self._reported.discard(key)

    async def _tell_once(
        self, order_id: str, overdue: Overdue, key: str | None = None, **extra: Any
    ) -> None:
        """Give the order the overdue stage as its waiting reason, once."""
        told = (overdue.stage, key if key is not None else f"{order_id}:{overdue.subject}")
        if told in self._reported:
            return
        rec = await self.history.get(order_id)
        if rec is not None and not rec.status.terminal:
            await self.history.record(
                rec, "deadline_exceeded", waiting=overdue, data=overdue.data()
            )
        self._reported.add(told)
        self._overdue(overdue, order=order_id, **extra)

"""Every wait bounded: the deadline watcher against a real SQLite store, on a manual clock.

Seams: the sorter and the robot fleet are stand-ins reporting a snapshot; the orchestrator's
hand-over of an overdue robot trip is a recording callback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.line import topology
from controller.line.history import History
from controller.line.stations import Stations
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderIn, OrderStatus
from controller.orders.waiting import Other, Overdue, Stage
from controller.service.deadline_limits import MARGIN, WALL_FLOOR, Limits, conveyor_lap, limits
from controller.service.deadlines import DeadlineWatch
from controller.store.asrs import (
    AsrsCommand,
    AsrsRequest,
    CommandKind,
    CommandState,
    RequestKind,
    RequestState,
)
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing.dispatch import Pick

LIMITS = Limits(scan=90.0, sort=130.0, robot_step=280.0, crane_command=160.0, station=1800.0)


def order(kind: str = "b2c") -> OrderIn:
    body = {
        "type": kind,
        "due_at": "2026-03-02T16:00:00Z",
        "destination": "DHL",
        "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
    }
    return OrderIn.model_validate(body)


class Conveyor:
    def __init__(self) -> None:
        self.state = "Execute"
        self.connected = True

    def snapshot(self) -> dev.ConveyorSnapshot:
        return dev.ConveyorSnapshot("C1", self.connected, self.state)


class Fleet:
    def __init__(self) -> None:
        self.robot = dev.RobotSnapshot(
            "R01", "m", "2.0.0", "ONLINE", "AUTOMATIC", "N1", 0, 0, False, "job", 90, (), 0.1, True
        )

    def robot_positions(self) -> dict[str, dev.RobotPosition]:
        return dev.positions_of(self.snapshot())

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, dev.RobotSnapshot]:
        return dev.snapshots_in(self.snapshot(), serials)

    def snapshot(self) -> dict[str, dev.RobotSnapshot]:
        return {"R01": self.robot}


class Setup:
    def __init__(self, store: SqliteOrderStore, clock: ManualClock) -> None:
        self.store = store
        self.clock = clock
        self.metrics = Metrics()
        self.history = History(store, clock, self.metrics)
        self.flight = InFlight()
        self.conveyor = Conveyor()
        self.fleet = Fleet()
        self.stations = Stations(self.history)
        self.given_away: list[tuple[Trip, Overdue]] = []
        self.traffic_waits: set[str] = set()
        self.watch = DeadlineWatch(
            LIMITS,
            clock,
            self.history,
            self.metrics,
            self.flight,
            self.conveyor,  # type: ignore[arg-type]
            self.fleet,  # type: ignore[arg-type]
            self.stations,
            self.give_away,
            waits_for_traffic=self.traffic_waits.__contains__,
        )

    async def give_away(self, trip: Trip, overdue: Overdue) -> None:
        trip.cancel()
        self.given_away.append((trip, overdue))

    async def trip(self, order_id: str, tote: str, *, dropped: bool, picks: int = 0) -> Trip:
        _, rec = await self.store.create_order(order_id, order(), self.clock.utcnow())
        status = OrderStatus.IN_TRANSIT if dropped else OrderStatus.RELEASED
        await self.history.record(rec, "step", status, step="on_conveyor" if dropped else None)
        pk = tuple(Pick("1", "SKU-0001", f"L{i}", f"N{i}", 1) for i in range(picks))
        trip = Trip(
            f"trip-{order_id}", order_id, "R01", tote, pk, "IN1", self.clock.utcnow(), "DHL", False
        )
        if dropped:
            trip.drop()
        self.flight.start(f"job-{order_id}", [trip], {})
        return trip

    async def run_for(self, seconds: float) -> None:
        """``seconds`` of line time, checked once per tick as the watcher's loop does."""
        end = self.clock.now() + seconds
        while self.clock.now() < end:
            step = min(self.watch.tick, end - self.clock.now())
            await self.clock.advance(step)
            self.watch.advance(step)
            await self.watch.check()

    def exceeded(self, stage: Stage) -> float:
        value = self.metrics.registry.get_sample_value(
            "linectl_deadline_exceeded_total", {"stage": stage.value}
        )
        return value or 0.0


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    try:
        yield Setup(store, ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC)))
    finally:
        await store.close()


async def test_a_tote_never_scanned_puts_its_order_in_exception_without_any_reconnect(
    setup: Setup,
) -> None:
    await setup.trip("O-1", "T-1", dropped=True)
    await setup.run_for(LIMITS.scan - 5)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT
    await setup.run_for(10)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.EXCEPTION
    assert rec.waiting_reason == Overdue(Stage.SCAN, "T-1", 0, LIMITS.scan).render()
    [event] = [e for e in await setup.store.history("O-1") if e.type == "tote_lost_on_conveyor"]
    assert event.data["stage"] == "scan" and event.data["tote"] == "T-1"
    assert event.data["deadline_seconds"] == LIMITS.scan
    assert "T-1" not in setup.flight.by_tote
    assert setup.exceeded(Stage.SCAN) == 1
    finished = setup.metrics.registry.get_sample_value(
        "linectl_orders_finished_total", {"type": "b2c", "outcome": "exception"}
    )
    assert finished == 1
    await setup.run_for(60)  # acted on once
    assert setup.exceeded(Stage.SCAN) == 1


async def test_time_the_conveyor_stands_does_not_count(setup: Setup) -> None:
    await setup.trip("O-1", "T-1", dropped=True)
    await setup.run_for(LIMITS.scan - 10)
    setup.conveyor.state = "Held"  # a jam elsewhere, an operator hold
    await setup.run_for(600)
    setup.conveyor.state, setup.conveyor.connected = "Unknown", False
    await setup.run_for(600)
    setup.conveyor.state, setup.conveyor.connected = "Execute", True
    await setup.run_for(5)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT
    await setup.run_for(10)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.EXCEPTION


async def test_a_scan_starts_the_sort_deadline(setup: Setup) -> None:
    await setup.trip("O-1", "T-1", dropped=True)
    await setup.run_for(LIMITS.scan - 10)
    setup.flight.item("C1-000001").tote = "T-1"  # scanned, a divert requested
    await setup.run_for(LIMITS.sort - 5)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT
    await setup.run_for(10)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.EXCEPTION
    assert rec.waiting_reason is not None and "scanned but not in a chute" in rec.waiting_reason
    assert setup.exceeded(Stage.SORT) == 1 and setup.exceeded(Stage.SCAN) == 0


async def test_a_tote_in_its_chute_in_time_is_left_alone(setup: Setup) -> None:
    trip = await setup.trip("O-1", "T-1", dropped=True)
    await setup.run_for(LIMITS.scan - 10)
    setup.flight.forget(trip)  # arrived in its chute
    await setup.run_for(LIMITS.scan + LIMITS.sort)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT
    assert setup.exceeded(Stage.SCAN) == setup.exceeded(Stage.SORT) == 0


async def test_the_lost_tote_of_a_cancelled_order_ends_the_cancellation(setup: Setup) -> None:
    trip = await setup.trip("O-1", "T-1", dropped=True)
    trip.cancel()
    await setup.run_for(LIMITS.scan + 5)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.CANCELLED


async def test_a_robot_without_progress_gives_its_trip_away(setup: Setup) -> None:
    trip = await setup.trip("O-1", "T-1", dropped=False, picks=2)
    await setup.run_for(LIMITS.robot_step - 10)
    trip.picks_done.add(0)  # progress: the clock starts again
    await setup.run_for(LIMITS.robot_step - 10)
    setup.fleet.robot = replace(setup.fleet.robot, last_node_id="N2")  # ... and so does a node
    await setup.run_for(LIMITS.robot_step - 10)
    setup.fleet.robot = replace(setup.fleet.robot, driving=True)  # driving is progress too
    await setup.run_for(LIMITS.robot_step * 2)
    setup.fleet.robot = replace(setup.fleet.robot, driving=False)
    setup.traffic_waits.add("R01")  # waits for a node another robot holds: traffic's to solve
    await setup.run_for(LIMITS.robot_step * 2)
    setup.traffic_waits.clear()
    await setup.run_for(LIMITS.robot_step - 10)
    assert setup.given_away == []
    await setup.run_for(20)
    [(given, overdue)] = setup.given_away
    assert given is trip and overdue.stage is Stage.ROBOT_STEP and overdue.subject == "R01"
    assert overdue.waited > LIMITS.robot_step
    assert setup.exceeded(Stage.ROBOT_STEP) == 1
    await setup.run_for(LIMITS.robot_step * 2)  # the trip is void now: once
    assert len(setup.given_away) == 1


async def test_a_robot_that_is_unavailable_or_waits_for_the_belt_is_not_overdue(
    setup: Setup,
) -> None:
    trip = await setup.trip("O-1", "T-1", dropped=False, picks=1)
    setup.fleet.robot = replace(setup.fleet.robot, available=False)  # the robot watch's case
    await setup.run_for(LIMITS.robot_step * 2)
    setup.fleet.robot = replace(setup.fleet.robot, available=True)
    trip.picks_done.add(0)
    setup.conveyor.state = "Held"  # picked everything, waits to drop
    await setup.run_for(LIMITS.robot_step * 2)
    assert setup.given_away == []


async def test_a_station_wait_is_explained_once_and_never_an_exception(setup: Setup) -> None:
    _, rec = await setup.store.create_order("B-1", order(), setup.clock.utcnow())
    rec = await setup.history.record(rec, "sorted", OrderStatus.SORTED, step="at_station")
    setup.stations.open(rec, "ST-1", ["T-9"])
    await setup.run_for(LIMITS.station + 10)
    rec2 = await setup.store.get_order("B-1")
    assert rec2 is not None and rec2.status is OrderStatus.SORTED
    assert rec2.waiting_reason == Overdue(Stage.STATION, "ST-1", 0, LIMITS.station).render()
    await setup.run_for(LIMITS.station)
    events = [e.type for e in await setup.store.history("B-1")]
    assert events.count("deadline_exceeded") == 1 and setup.exceeded(Stage.STATION) == 1


def test_derived_deadlines_follow_the_line(reference_line: LineConfig) -> None:
    roadmap = topology.roadmap(reference_line)
    derived = limits(reference_line, roadmap)
    lap = conveyor_lap(reference_line)
    assert derived.scan == pytest.approx(2 * lap + MARGIN)
    passes = reference_line.conveyor.sorter.max_passes
    assert derived.sort == pytest.approx((passes + 1) * lap + MARGIN)
    assert derived.robot_step > reference_line.robots.traffic.stall_after
    assert derived.crane_command > MARGIN
    slower = reference_line.model_copy(
        update={
            "conveyor": reference_line.conveyor.model_copy(
                update={"belt_speed": reference_line.conveyor.belt_speed / 2}
            )
        }
    )
    assert limits(slower, roadmap).scan == pytest.approx(4 * lap + MARGIN)
    given = reference_line.model_copy(
        update={"deadlines": reference_line.deadlines.model_copy(update={"scan": 45.0})}
    )
    assert limits(given, roadmap).scan == 45.0
    # a clock 30 times the wall's: no deadline shorter than WALL_FLOOR wall seconds
    fast = limits(given, roadmap, time_scale=30.0)
    assert fast.scan == WALL_FLOOR * 30.0 and fast.station == max(1800.0, WALL_FLOOR * 30.0)


class Cranes:
    """The AS/RS flows' open commands and requests, as the watcher reads them."""

    def __init__(self, at: datetime) -> None:
        self.commands = [
            AsrsCommand(
                "ns-A1-R7.1",
                "A1",
                CommandKind.RETRIEVE,
                None,
                7,
                None,
                None,
                "TOTE-7",
                "A1-L-01-01",
                CommandState.SENT,
                "",
                "",
                "",
                at,
                at,
            )
        ]
        self.requests = [
            AsrsRequest(
                7,
                RequestKind.RETRIEVE,
                "TOTE-7",
                "SKU-0001",
                "A1",
                "A1-L-01-01",
                "order",
                "B-1",
                None,
                None,
                None,
                5,
                RequestState.COMMANDED,
                "ns-A1-R7.1",
                1,
                "",
                at,
                at,
            )
        ]

    def open_commands(self) -> list[AsrsCommand]:
        return self.commands

    def open_requests(self) -> list[AsrsRequest]:
        return self.requests


async def test_a_crane_command_past_its_deadline_is_reported_on_its_order_never_resent(
    setup: Setup,
) -> None:
    await setup.store.create_order("B-1", order(), setup.clock.utcnow())
    cranes = Cranes(setup.clock.utcnow())
    setup.watch.asrs = cranes  # type: ignore[assignment]
    await setup.run_for(LIMITS.crane_command - 5)
    rec2 = await setup.store.get_order("B-1")
    assert rec2 is not None and rec2.waiting_reason is None
    await setup.run_for(10)
    rec2 = await setup.store.get_order("B-1")
    assert rec2 is not None and rec2.status is OrderStatus.ACCEPTED
    assert rec2.waiting_reason is not None and "crane command ns-A1-R7.1" in rec2.waiting_reason
    await setup.run_for(LIMITS.crane_command)
    assert setup.exceeded(Stage.CRANE_COMMAND) == 1
    cranes.commands = []  # finished after all: a later command of the same id would count anew
    await setup.run_for(setup.watch.tick)
    assert not [k for k in setup.watch._since if k[0] is Stage.CRANE_COMMAND]


async def test_the_lost_tote_of_an_order_already_in_exception_is_only_recorded(
    setup: Setup,
) -> None:
    trip = await setup.trip("O-1", "T-1", dropped=True)
    trip.cancel()  # a short pick stopped the order; its tote rides to the reject chute
    rec = await setup.store.get_order("O-1")
    assert rec is not None
    await setup.history.record(rec, "short_pick", OrderStatus.EXCEPTION, waiting=Other("short"))
    await setup.run_for(LIMITS.scan + 5)
    rec = await setup.store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.EXCEPTION
    assert rec.waiting_reason == "short"
    assert (await setup.store.history("O-1"))[-1].type == "tote_lost_on_conveyor"

"""A robot's report of a drop that comes after the conveyor scanned and sorted the tote.

One seam: the picking side of the controller with a real SQLite store; the inventory is not
touched by a drop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import ActionRef, InFlight, Trip
from controller.orders.model import OrderIn, OrderStatus
from controller.robots.picking import Picking
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.metrics import Metrics


async def sorted_before_drop(
    store: SqliteOrderStore,
) -> tuple[Picking, InFlight, History, dev.RobotActionFinished]:
    """An order whose tote the conveyor sorted while the robot's drop was still running."""
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    history = History(store, clock, Metrics())
    flight = InFlight()
    # a drop touches no stock: the picking side never reaches the inventory here
    picking = Picking(history, flight, cast(Inventory, None))
    order = OrderIn.model_validate(
        {
            "type": "b2c",
            "due_at": "2026-03-02T16:00:00Z",
            "destination": "DHL",
            "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
        }
    )
    _, rec = await store.create_order("O-1", order, clock.utcnow())
    rec = await history.record(rec, "picked", OrderStatus.PICKING, step="picking")
    trip = Trip("trip-1", "O-1", "R1", "T-1", (), "IN1", clock.utcnow(), "DHL", False)
    flight.start("job-1", [trip], {"drop-1": ActionRef("trip-1", "drop")})
    await history.record(rec, "sorted", OrderStatus.SORTED, step="sorted")
    flight.forget(trip)  # the divert into its chute ends the trip's tracking
    ev = dev.RobotActionFinished("R1", "job-1", "drop-1", "drop", "IN1", clock.utcnow())
    return picking, flight, history, ev


async def test_a_drop_reported_after_the_sort_is_recorded_and_keeps_the_status(
    store: SqliteOrderStore,
) -> None:
    picking, flight, _, ev = await sorted_before_drop(store)
    assert await picking.action_finished(ev) is None
    events = await store.history("O-1")
    assert [e.type for e in events][-2:] == ["sorted", "dropped"]
    dropped: Any = events[-1]
    assert dropped.data == {"robot": "R1", "tote": "T-1", "induction": "IN1"}
    rec = await store.get_order("O-1")
    assert rec is not None and rec.status is OrderStatus.SORTED
    # reported again (a repeated state message): recorded once
    await picking.action_finished(ev)
    assert [e.type for e in await store.history("O-1")].count("dropped") == 1
    assert not flight.undropped


async def test_the_end_of_the_robots_job_lets_the_forgotten_trip_go(
    store: SqliteOrderStore,
) -> None:
    picking, flight, _, ev = await sorted_before_drop(store)
    flight.job_done("R1", "job-1")
    assert not flight.undropped
    assert await picking.action_finished(ev) is None
    assert "dropped" not in [e.type for e in await store.history("O-1")]

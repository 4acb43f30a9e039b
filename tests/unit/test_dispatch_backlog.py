"""A dispatch round under a long queue: it plans and explains only the head of the queue, so its
work does not grow with the number of orders waiting (a real SQLite store; fleet and sorter are
stand-ins at the device seam)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight
from controller.orders.model import OrderIn
from controller.robots.dispatcher import CANDIDATES_PER_ROBOT, NO_ROBOT, Dispatcher
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

QUEUED = 3000


@dataclass
class Fleet:
    """Robots at their home nodes; ``idle`` of them available."""

    config: LineConfig
    idle: int = 0
    sent: list[tuple[str, dev.RobotOrder]] = field(default_factory=list)

    def robot_positions(self) -> dict[str, dev.RobotPosition]:
        return dev.positions_of(self.snapshot())

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, dev.RobotSnapshot]:
        return dev.snapshots_in(self.snapshot(), serials)

    def snapshot(self) -> dict[str, dev.RobotSnapshot]:
        return {
            r.serial: dev.RobotSnapshot(
                serial=r.serial,
                manufacturer="m",
                version=r.version,
                connection="ONLINE",
                operating_mode="AUTOMATIC",
                last_node_id=r.home,
                x=0.0,
                y=0.0,
                driving=False,
                order_id=None,
                battery=90.0,
                errors=(),
                state_age=0.0,
                available=i < self.idle,
                charging=False,
            )
            for i, r in enumerate(self.config.robots.fleet)
        }

    async def send_order(self, serial: str, order: dev.RobotOrder) -> None:
        self.sent.append((serial, order))


@dataclass
class Sorter:
    def snapshot(self) -> dev.ConveyorSnapshot:
        return dev.ConveyorSnapshot("C1", True, "Execute")


@dataclass
class Round:
    dispatcher: Dispatcher
    fleet: Fleet
    store: SqliteOrderStore
    seeded: int  # the history's last seq once the queue was filled

    async def waits_written(self) -> int:
        events = await self.store.events_after(self.seeded, 1000)
        return sum(1 for e in events if e.type == "waiting")


@pytest.fixture
async def backlog(
    tmp_path: Path, reference_line: LineConfig, manual_clock: ManualClock
) -> AsyncIterator[Round]:
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    metrics = Metrics()
    history = History(store, manual_clock, metrics)
    inventory = Inventory(reference_line, store, manual_clock, metrics)
    await inventory.open()
    fleet = Fleet(reference_line)
    dispatcher = Dispatcher(
        reference_line, manual_clock, history, metrics, fleet, Sorter(), InFlight(), inventory
    )
    skus = [e.sku for e in reference_line.stock]
    now = manual_clock.utcnow()

    async def one(i: int) -> None:
        body = OrderIn.model_validate(
            {
                "type": "b2c",
                "priority": 5,
                "due_at": (now + timedelta(hours=2, seconds=i)).isoformat(),
                "destination": "UPS",
                "lines": [{"line_id": "1", "sku": skus[i % len(skus)], "quantity": 1}],
            }
        )
        _, rec = await store.create_order(f"Q{i:05d}", body, now)
        dispatcher.add(rec)

    try:
        for start in range(0, QUEUED, 500):
            await asyncio.gather(*(one(i) for i in range(start, start + 500)))
        yield Round(dispatcher, fleet, store, await store.last_event_seq())
    finally:
        await store.close()


async def test_with_no_robot_free_only_the_head_of_the_queue_is_told_why(backlog: Round) -> None:
    await backlog.dispatcher.dispatch_once()
    assert await backlog.waits_written() == CANDIDATES_PER_ROBOT
    head = await backlog.store.get_order("Q00000")
    assert head is not None and head.waiting == NO_ROBOT
    await backlog.dispatcher.dispatch_once()  # nothing changed: nothing written again
    assert await backlog.waits_written() == CANDIDATES_PER_ROBOT
    deep = await backlog.store.get_order(f"Q{QUEUED - 1:05d}")
    assert deep is not None and deep.waiting_reason is None  # waits its turn, unexplained


async def test_a_free_robot_gets_the_most_urgent_orders_at_once(backlog: Round) -> None:
    backlog.fleet.idle = 1
    await backlog.dispatcher.dispatch_once()
    assert len(backlog.fleet.sent) == 1
    released = [
        o
        for o in (f"Q{i:05d}" for i in range(CANDIDATES_PER_ROBOT))
        if o not in backlog.dispatcher.pending
    ]
    assert released and released[0] == "Q00000"  # the earliest due goes first
    assert len(backlog.dispatcher.pending) == QUEUED - len(released)
    # the round planned the head only: what it wrote stays within it
    assert await backlog.waits_written() <= CANDIDATES_PER_ROBOT

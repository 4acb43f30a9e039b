"""Order events while the store cannot write: kept in order, shown, written when it can."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller.line.history import History
from controller.line.journal import HistoryJournal
from controller.orders.model import HistoryEvent, OrderIn, OrderRecord, OrderStatus
from controller.orders.waiting import LineHeld, NoRobotFree
from controller.store.base import StoreError, StoreUnavailable
from controller.store.health import StoreHealth
from kernel.clock import ManualClock
from kernel.config.model import StoreConfig
from kernel.metrics import Metrics

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


class FlakyStore:
    """The part of an order store the journal and History use; writes fail while ``full``."""

    def __init__(self) -> None:
        self.full = False
        self.orders: dict[str, OrderRecord] = {}
        self.events: list[tuple[str, str]] = []  # (order, event type) in the order written
        self.tries = 0

    def add(self, order_id: str) -> None:
        body = OrderIn.model_validate(
            {
                "type": "b2c",
                "priority": 5,
                "due_at": (T0 + timedelta(hours=3)).isoformat(),
                "destination": "DHL",
                "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
            }
        )
        self.orders[order_id] = OrderRecord(
            id=order_id,
            type=body.type,
            status=OrderStatus.ACCEPTED,
            priority=5,
            due_at=body.due_at,
            destination="DHL",
            body=body,
            fingerprint="f",
            created_at=T0,
            updated_at=T0,
        )

    async def record(
        self, order_id: str, event_type: str, at: datetime, *, status: Any = None, **changes: Any
    ) -> None:
        self.tries += 1
        if self.full:
            raise StoreUnavailable("order store line.db: database or disk is full")
        rec = self.orders.get(order_id)
        if rec is None:
            raise StoreError(f"unknown order {order_id!r}")
        if rec.status.terminal and status is not None:
            raise StoreError(f"order {order_id!r} is {rec.status.value}")
        update: dict[str, Any] = {"updated_at": at}
        if status is not None:
            update["status"] = status
        update.update({k: v for k, v in changes.items() if k in ("step", "waiting")})
        self.orders[order_id] = rec.model_copy(update=update)
        self.events.append((order_id, event_type))

    async def get_order(self, order_id: str) -> OrderRecord | None:
        return self.orders.get(order_id)

    async def history(self, order_id: str) -> list[HistoryEvent]:
        status = self.orders[order_id].status
        return [
            HistoryEvent(seq=i, at=T0, type=t, status=status)
            for i, (o, t) in enumerate(self.events)
            if o == order_id
        ]


class Waits:
    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        await asyncio.sleep(0)


def parts(backlog_limit: int = 100) -> tuple[FlakyStore, StoreHealth, HistoryJournal, History]:
    store = FlakyStore()
    for order_id in ("A", "B"):
        store.add(order_id)
    clock = ManualClock(T0)
    metrics = Metrics()
    health = StoreHealth(
        StoreConfig(retry_initial=0.1, retry_max=1.0, backlog_limit=backlog_limit),
        clock,
        metrics,
        sleep=Waits(),
    )
    journal = HistoryJournal(store, health)  # type: ignore[arg-type]
    history = History(store, clock, metrics, journal)  # type: ignore[arg-type]
    return store, health, journal, history


async def until(done: Any) -> None:
    """Let the journal's task run until ``done()`` (a few hundred turns of the loop at most)."""
    for _ in range(1000):
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("not done after 1000 turns of the event loop")


async def test_events_are_written_at_once_while_the_store_writes() -> None:
    store, _, journal, history = parts()
    rec = await history.get("A")
    assert rec is not None
    rec = await history.record(rec, "robot_assigned", OrderStatus.RELEASED, step="robot_assigned")
    assert store.events == [("A", "robot_assigned")] and journal.size == 0
    assert rec.status is OrderStatus.RELEASED


async def test_events_wait_in_order_and_the_order_shows_them_until_they_are_written() -> None:
    store, health, journal, history = parts()
    a, b = await history.get("A"), await history.get("B")
    assert a is not None and b is not None
    store.full = True
    a = await history.record(a, "robot_assigned", OrderStatus.RELEASED, step="robot_assigned")
    b = await history.record(b, "waiting", waiting=NoRobotFree())
    store.full = False  # the disk has room again, but A's and B's events are still waiting:
    a = await history.record(a, "picked", OrderStatus.PICKING, step="picking", picked={"1": 1})
    # nothing overtakes them (each order's transitions stay in order)
    assert store.events == [] and journal.size == 3 and health.backlog == 3
    assert health.failing is not None
    # the controller sees the orders as they stand
    assert (a.status, a.step, a.picked) == (OrderStatus.PICKING, "picking", {"1": 1})
    assert b.waiting_reason == "no_robot_free" and b.status is OrderStatus.ACCEPTED
    again = await history.get("A")
    assert again is not None and again.status is OrderStatus.PICKING
    assert await history.event_types("A") == ["robot_assigned", "picked"]
    run = asyncio.create_task(journal.run())
    try:
        await until(lambda: journal.size == 0)
    finally:
        run.cancel()
    assert store.events == [("A", "robot_assigned"), ("B", "waiting"), ("A", "picked")]
    assert health.failing is None and health.backlog == 0
    stored = await store.get_order("A")
    assert stored is not None and stored.status is OrderStatus.PICKING


async def test_waiting_events_are_tried_again_until_the_store_takes_them() -> None:
    store, _, journal, history = parts()
    a = await history.get("A")
    assert a is not None
    store.full = True
    await history.record(a, "dropped", step="on_conveyor")
    run = asyncio.create_task(journal.run())
    try:
        await until(lambda: store.tries >= 4)
        assert journal.size == 1 and store.events == []
        store.full = False
        await until(lambda: journal.size == 0)
    finally:
        run.cancel()
    assert store.events == [("A", "dropped")]


async def test_an_event_the_store_refuses_when_written_late_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, _, journal, history = parts()
    a = await history.get("A")
    assert a is not None
    store.full = True
    await history.finish(a, "cancelled", OrderStatus.CANCELLED, step=None)
    await journal.record("A", "completed", T0, OrderStatus.COMPLETED, {})  # after the cancel
    await journal.record("B", "waiting", T0, None, {"waiting": LineHeld()})
    store.full = False
    run = asyncio.create_task(journal.run())
    with caplog.at_level(logging.WARNING, logger="controller.line.journal"):
        try:
            await until(lambda: journal.size == 0)
        finally:
            run.cancel()
    assert store.events == [("A", "cancelled"), ("B", "waiting")]
    [refused] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused.__dict__["type"] == "completed" and "cancelled" in refused.__dict__["error"]


async def test_past_the_backlog_limit_the_line_is_held_and_nothing_is_dropped() -> None:
    store, health, journal, _ = parts(backlog_limit=2)
    store.full = True
    for i in range(5):
        await journal.record("A", f"scanned-{i}", T0, None, {})
    assert journal.size == 5
    store.full = False
    health.succeeded()  # the store writes again; five events still wait
    assert health.hold_reason == "store: 5 events waiting to be recorded (limit 2)"
    run = asyncio.create_task(journal.run())
    try:
        await until(lambda: journal.size == 0)
    finally:
        run.cancel()
    assert [t for _, t in store.events] == [f"scanned-{i}" for i in range(5)]
    assert health.hold_reason is None


async def test_at_shutdown_what_cannot_be_written_is_logged_once_with_its_contents(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, _, journal, _ = parts()
    store.full = True
    await journal.record("A", "picked", T0, OrderStatus.PICKING, {"step": "picking"})
    await journal.record("B", "waiting", T0, None, {"waiting": LineHeld()})
    with caplog.at_level(logging.ERROR, logger="controller.line.journal"):
        assert await journal.flush() == 2
    [line] = [r for r in caplog.records if r.name == "controller.line.journal"]
    assert line.__dict__["not_recorded"] == 2
    assert [e["order"] for e in line.__dict__["events"]] == ["A", "B"]
    store.full = False
    assert await journal.flush() == 0
    assert store.events == [("A", "picked"), ("B", "waiting")]

"""The SQLite order store on a disk that fills up and is freed again: a real ``ENOSPC``.

The store says it is unavailable (not a plain error); order events wait in the journal, in
order, and are written with their original times once there is room; a write the controller
must wait for waits and goes through; an order create for the API fails at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.line.history import History
from controller.line.journal import HistoryJournal
from controller.orders.model import OrderIn, OrderStatus
from controller.orders.waiting import NoRobotFree
from controller.store.base import FAIL_FAST, StoreUnavailable
from controller.store.health import StoreHealth
from controller.store.retry import retrying
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.config.model import StoreConfig
from kernel.metrics import Metrics
from tests.small_disk import SmallDisk, small_disk

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def b2c(sku: str = "SKU-0001") -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "priority": 5,
            "due_at": (T0 + timedelta(hours=3)).isoformat(),
            "destination": "DHL",
            "lines": [{"line_id": "1", "sku": sku, "quantity": 1}],
        }
    )


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk", megabytes=4) as d:
        yield d


@pytest.fixture
async def store(disk: SmallDisk) -> AsyncIterator[SqliteOrderStore]:
    s = SqliteOrderStore(disk.path / "line.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


class Waits:
    """Wall-time waits between retries, shortened: each yields to the loop a few times."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        await asyncio.sleep(0.01)


async def eventually(condition: Callable[[], bool], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.01)


def health_of() -> tuple[StoreHealth, Metrics, Waits]:
    metrics, waits = Metrics(), Waits()
    config = StoreConfig(retry_initial=0.01, retry_max=0.05)
    return StoreHealth(config, ManualClock(T0), metrics, sleep=waits), metrics, waits


async def test_a_full_disk_is_unavailability_and_the_probe_sees_it_end(
    disk: SmallDisk, store: SqliteOrderStore
) -> None:
    await store.create_order("A", b2c(), T0)
    disk.fill()
    with pytest.raises(StoreUnavailable, match="full"):
        await store.record("A", "waiting", T0, waiting=NoRobotFree())
    with pytest.raises(StoreUnavailable):
        await store.probe_write()
    with pytest.raises(StoreUnavailable):
        await store.create_order("B", b2c(), T0)
    assert await store.get_order("A") is not None  # reads go on
    disk.free()
    await store.probe_write()
    created, _ = await store.create_order("B", b2c(), T0)
    assert created.value == "created"
    assert [e.type for e in await store.history("A")] == ["accepted"]  # the probe left nothing


async def test_order_events_wait_in_order_and_are_written_with_their_times_when_there_is_room(
    disk: SmallDisk, store: SqliteOrderStore
) -> None:
    health, metrics, waits = health_of()
    clock = ManualClock(T0)
    journal = HistoryJournal(store, health)
    history = History(retrying(store, health), clock, metrics, journal)
    for order_id in ("A", "B"):
        await store.create_order(order_id, b2c(), T0)
    a, b = await history.get("A"), await history.get("B")
    assert a is not None and b is not None
    disk.fill()
    steps: list[tuple[str, str, OrderStatus | None, dict[str, Any]]] = [
        ("A", "robot_assigned", OrderStatus.RELEASED, {"step": "robot_assigned"}),
        ("B", "waiting", None, {"waiting": NoRobotFree()}),
        ("A", "picked", OrderStatus.PICKING, {"step": "picking", "picked": {"1": 1}}),
        ("A", "dropped", OrderStatus.IN_TRANSIT, {"step": "on_conveyor"}),
    ]
    for order_id, event_type, status, changes in steps:
        await clock.advance(5)
        rec = a if order_id == "A" else b
        await history.record(rec, event_type, status, **changes)
    assert journal.size == 4 and health.failing is not None
    assert metrics.registry.get_sample_value("linectl_store_available") == 0
    shown = await history.get("A")
    assert shown is not None and shown.status is OrderStatus.IN_TRANSIT
    assert [e.type for e in await store.history("A")] == ["accepted"]
    run = asyncio.create_task(journal.run())
    try:
        await eventually(lambda: waits.count >= 2, "the journal tries again")
        assert journal.size == 4 and health.failing is not None
        disk.free()
        await eventually(lambda: journal.size == 0, "the journal is written")
    finally:
        run.cancel()
    assert health.failing is None
    assert metrics.registry.get_sample_value("linectl_store_available") == 1
    written = await store.events_after(0, 100)
    assert [(e.order_id, e.type) for e in written if e.type != "accepted"] == [
        (o, t) for o, t, _, _ in steps
    ]
    a_events = [e for e in written if e.order_id == "A" and e.type != "accepted"]
    assert [e.at for e in a_events] == [T0 + timedelta(seconds=s) for s in (5, 15, 20)]
    stored = await store.get_order("A")
    assert stored is not None
    assert (stored.status, stored.step, stored.picked) == (
        OrderStatus.IN_TRANSIT,
        "on_conveyor",
        {"1": 1},
    )


async def test_a_write_the_controller_needs_waits_for_room_and_a_request_does_not(
    disk: SmallDisk, store: SqliteOrderStore
) -> None:
    health, metrics, waits = health_of()
    controller_store = retrying(store, health)
    await store.create_order("A", b2c(), T0)
    disk.fill()
    token = FAIL_FAST.set(True)
    try:
        with pytest.raises(StoreUnavailable):  # for the API: at once, a 503
            await controller_store.request_cancel("A", T0, reason="test")
    finally:
        FAIL_FAST.reset(token)
    cancel = asyncio.create_task(controller_store.request_cancel("A", T0, reason="operator"))
    await eventually(lambda: waits.count >= 3, "the cancel is tried again")
    assert not cancel.done()
    disk.free()
    async with asyncio.timeout(10):
        recorded, _ = await cancel
    assert recorded and health.failing is None
    failures = metrics.registry.get_sample_value(
        "linectl_store_write_failures_total", {"operation": "request_cancel"}
    )
    assert failures is not None and failures >= 4

"""Group commit of creates and the WMS's later changes, on every engine (SQLite, PostgreSQL); the
write-ahead log of the SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.orders.model import OrderIn, OrderStatus
from controller.store import CreateOutcome, StoreError, UnknownOrder
from controller.store.base import WrongStatus
from controller.store.sql.store import SqlStore
from controller.store.sqlite.store import SqliteOrderStore
from tests.store_backends import StoreBackend
from tests.store_sql import run_sql

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def body(priority: int = 5) -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "priority": priority,
            "due_at": "2026-03-01T16:00:00Z",
            "destination": "DHL",
            "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
        }
    )


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """An open store on each engine in turn."""
    return any_store


def commits(backend: StoreBackend) -> int:
    """Orders visible to another connection, i.e. committed."""
    [(count,)] = run_sql(backend, "SELECT COUNT(*) FROM orders")
    return int(count)


async def test_concurrent_creates_share_commits_and_keep_their_outcomes(
    store: SqlStore, store_backend: StoreBackend
) -> None:
    calls = [store.create_order(f"G-{i}", body(), T0) for i in range(200)]
    calls += [store.create_order("G-7", body(), T0), store.create_order("G-8", body(9), T0)]
    results = await asyncio.gather(*calls)
    outcomes = [outcome for outcome, _ in results]
    assert outcomes[:200] == [CreateOutcome.CREATED] * 200
    assert outcomes[200:] == [CreateOutcome.EXISTS, CreateOutcome.CONFLICT]
    assert commits(store_backend) == 200
    page = await store.list_orders(limit=1000)
    assert [o.id for o in page.orders] == [f"G-{i}" for i in range(200)]
    assert {len(await store.history(f"G-{i}")) for i in (0, 99, 199)} == {1}


async def test_a_failing_create_is_undone_alone(
    store: SqlStore, store_backend: StoreBackend
) -> None:
    broken = body().model_copy(update={"due_at": datetime(2026, 3, 1, 16, 0)})  # no zone
    results = await asyncio.gather(
        store.create_order("OK-1", body(), T0),
        store.create_order("BAD-1", broken, T0),
        store.create_order("OK-2", body(), T0),
        return_exceptions=True,
    )
    assert isinstance(results[1], StoreError)
    assert [r[0] for r in results if isinstance(r, tuple)] == [CreateOutcome.CREATED] * 2
    assert await store.get_order("BAD-1") is None
    assert await store.history("BAD-1") == []
    assert commits(store_backend) == 2


async def test_creates_after_close_fail_cleanly(store_backend: StoreBackend) -> None:
    s = store_backend.new()
    await s.open()
    await s.close()
    with pytest.raises(StoreError):
        await s.create_order("X-1", body(), T0)


async def test_a_cancelled_caller_does_not_block_others(store: SqlStore) -> None:
    first = asyncio.ensure_future(store.create_order("C-1", body(), T0))
    second = asyncio.ensure_future(store.create_order("C-2", body(), T0))
    third = asyncio.ensure_future(store.create_order("C-3", body(), T0))
    await asyncio.sleep(0)  # the first is submitted; the others wait for the next batch
    second.cancel()
    async with asyncio.timeout(5):
        assert (await first)[0] is CreateOutcome.CREATED
        assert (await third)[0] is CreateOutcome.CREATED
    with pytest.raises(asyncio.CancelledError):
        await second
    assert await store.get_order("C-2") is None


async def test_update_order_records_old_and_new(store: SqlStore) -> None:
    await store.create_order("U-1", body(), T0)
    later = T0 + timedelta(minutes=5)
    new_due = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
    order = await store.update_order("U-1", later, priority=8, due_at=new_due)
    assert (order.priority, order.due_at, order.updated_at) == (8, new_due, later)
    event = (await store.history("U-1"))[-1]
    assert event.type == "updated" and event.status is OrderStatus.ACCEPTED
    assert event.data["priority"] == {"old": 5, "new": 8}
    same = await store.update_order("U-1", later, priority=8)
    assert same == order
    assert len(await store.history("U-1")) == 2

    await store.record("U-1", "released", later, status=OrderStatus.RELEASED)
    with pytest.raises(WrongStatus) as caught:
        await store.update_order("U-1", later, priority=1)
    assert caught.value.status is OrderStatus.RELEASED
    with pytest.raises(UnknownOrder):
        await store.update_order("NOPE", later, priority=1)


async def test_request_cancel_once_and_never_when_terminal(store: SqlStore) -> None:
    await store.create_order("K-1", body(), T0)
    recorded, order = await store.request_cancel("K-1", T0, reason="wms")
    assert recorded and order.status is OrderStatus.ACCEPTED
    again, _ = await store.request_cancel("K-1", T0, reason="again")
    assert not again
    events = [(e.type, e.data) for e in await store.history("K-1")]
    assert events == [("accepted", {}), ("cancel_requested", {"reason": "wms"})]

    await store.record("K-1", "cancelled", T0, status=OrderStatus.CANCELLED)
    with pytest.raises(WrongStatus):
        await store.request_cancel("K-1", T0)
    with pytest.raises(UnknownOrder):
        await store.request_cancel("NOPE", T0)


async def test_the_write_ahead_log_is_cut_back_after_a_checkpoint(tmp_path: Path) -> None:
    """A burst grows the log; once a checkpoint has copied it into the database, the next
    write cuts it back instead of keeping the burst's size (so a full disk shows at the next
    write, not only once writes outgrow the space the log kept)."""
    path = tmp_path / "line.db"
    wal = tmp_path / "line.db-wal"
    store = SqliteOrderStore(path)
    await store.open()
    try:
        await store.create_order("O-1", body(), T0)
        for i in range(1500):  # past the automatic checkpoint (1,000 pages)
            await store.record("O-1", "waiting", T0 + timedelta(seconds=i), data={"i": i})
        largest = wal.stat().st_size
        with sqlite3.connect(path) as other:
            other.execute("PRAGMA wal_checkpoint(PASSIVE)")
        await store.record("O-1", "waiting", T0, data={"after": "checkpoint"})
        assert wal.stat().st_size < largest / 10, (wal.stat().st_size, largest)
    finally:
        await store.close()

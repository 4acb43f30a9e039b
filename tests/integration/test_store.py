"""The order store's contract on every engine (SQLite, PostgreSQL): orders, their history, pages
and counts, and what survives closing the store and opening it again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controller.orders.model import OrderIn, OrderStatus, OrderType
from controller.orders.waiting import Other
from controller.store import CreateOutcome, InvalidCursor, StoreError, UnknownOrder
from controller.store.sql.store import SqlStore
from tests.store_backends import StoreBackend

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """An open store on each engine in turn."""
    return any_store


def b2c(sku: str = "SKU-0001", quantity: int = 2, destination: str = "DHL") -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "priority": 5,
            "due_at": "2026-03-01T16:00:00Z",
            "destination": destination,
            "lines": [{"line_id": "1", "sku": sku, "quantity": quantity}],
        }
    )


def b2b() -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2b",
            "due_at": "2026-03-02T10:00:00+01:00",
            "deliver_from": "2026-03-01T06:00:00Z",
            "deliver_until": "2026-03-02T09:00:00Z",
            "destination": "CUST-ACME",
            "lines": [{"line_id": "10", "sku": "SKU-0003", "quantity": 2, "uom": "case"}],
            "handling": {"label_template": "acme-v2"},
        }
    )


async def test_create_is_idempotent_on_the_order_id(store: SqlStore) -> None:
    outcome, rec = await store.create_order("A-1", b2c(), T0)
    assert outcome is CreateOutcome.CREATED
    assert rec.status is OrderStatus.ACCEPTED
    assert rec.created_at == T0 and rec.updated_at == T0
    assert rec.body == b2c()

    outcome, again = await store.create_order("A-1", b2c(), T0 + timedelta(seconds=5))
    assert outcome is CreateOutcome.EXISTS
    assert again.created_at == T0

    outcome, existing = await store.create_order("A-1", b2c(quantity=3), T0)
    assert outcome is CreateOutcome.CONFLICT
    assert existing.body.lines[0].quantity == 2

    hist = await store.history("A-1")
    assert [(e.type, e.status) for e in hist] == [("accepted", OrderStatus.ACCEPTED)]


async def test_concurrent_creates_of_one_id_make_one_order(store: SqlStore) -> None:
    results = await asyncio.gather(*(store.create_order("SAME", b2c(), T0) for _ in range(10)))
    outcomes = sorted(o.value for o, _ in results)
    assert outcomes.count("created") == 1 and outcomes.count("exists") == 9
    assert len(await store.history("SAME")) == 1


async def test_record_changes_state_and_appends_history(store: SqlStore) -> None:
    await store.create_order("A-2", b2c(), T0)
    ev1 = await store.record(
        "A-2", "released", T0 + timedelta(seconds=1), status=OrderStatus.RELEASED, step="release"
    )
    ev2 = await store.record(
        "A-2",
        "waiting",
        T0 + timedelta(seconds=2),
        waiting=Other("no robot free"),
        data={"robots_busy": 6},
    )
    ev3 = await store.record(
        "A-2", "picked", T0 + timedelta(seconds=3), status=OrderStatus.PICKING, picked={"1": 2}
    )
    assert ev1.seq < ev2.seq < ev3.seq
    assert ev2.status is OrderStatus.RELEASED  # unchanged status is carried on the event

    rec = await store.get_order("A-2")
    assert rec is not None
    assert rec.status is OrderStatus.PICKING
    assert rec.step == "release"  # left unset: kept
    assert rec.waiting_reason == "no robot free"
    assert rec.picked == {"1": 2}
    assert rec.updated_at == T0 + timedelta(seconds=3)
    assert rec.lines_progress()[0].picked == 2

    await store.record("A-2", "moving", T0 + timedelta(seconds=4), step=None, waiting=None)
    rec = await store.get_order("A-2")
    assert rec is not None and rec.step is None and rec.waiting_reason is None

    hist = await store.history("A-2")
    assert [e.type for e in hist] == ["accepted", "released", "waiting", "picked", "moving"]
    assert hist[2].data == {"robots_busy": 6}
    assert [e.seq for e in hist] == sorted(e.seq for e in hist)


async def test_histories_of_many_orders_in_one_read(store: SqlStore) -> None:
    ids = [f"H-{i}" for i in range(1203)]  # more than one chunk of bound parameters
    await asyncio.gather(*(store.create_order(i, b2c(), T0) for i in ids))
    await store.record("H-7", "released", T0, status=OrderStatus.RELEASED)
    found = await store.histories([*ids, "unknown"])
    assert set(found) == {*ids, "unknown"} and found["unknown"] == []
    assert [e.type for e in found["H-7"]] == ["accepted", "released"]
    assert found["H-1202"] == await store.history("H-1202")


async def test_terminal_status_is_final(store: SqlStore) -> None:
    await store.create_order("A-3", b2c(), T0)
    await store.record("A-3", "cancelled", T0, status=OrderStatus.CANCELLED)
    with pytest.raises(StoreError, match="terminal"):
        await store.record("A-3", "released", T0, status=OrderStatus.RELEASED)
    # a note without a status change is still allowed, and so is repeating the same status
    await store.record("A-3", "webhook_delivered", T0)
    await store.record("A-3", "cancelled_again", T0, status=OrderStatus.CANCELLED)
    rec = await store.get_order("A-3")
    assert rec is not None and rec.status is OrderStatus.CANCELLED
    assert len(await store.history("A-3")) == 4


async def test_unknown_order(store: SqlStore) -> None:
    assert await store.get_order("nope") is None
    assert await store.history("nope") == []
    with pytest.raises(UnknownOrder):
        await store.record("nope", "x", T0)


async def test_list_filters_and_pages(store: SqlStore) -> None:
    for i in range(7):
        await store.create_order(f"C-{i}", b2c(), T0 + timedelta(seconds=i))
    for i in range(3):
        await store.create_order(f"B-{i}", b2b(), T0 + timedelta(seconds=10 + i))
    await store.record("C-0", "done", T0, status=OrderStatus.COMPLETED)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await store.list_orders(limit=3, cursor=cursor)
        seen += [o.id for o in page.orders]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"C-{i}" for i in range(7)] + [f"B-{i}" for i in range(3)]
    assert pages == 4

    b2b_page = await store.list_orders(type=OrderType.B2B)
    assert [o.id for o in b2b_page.orders] == ["B-0", "B-1", "B-2"]
    assert b2b_page.next_cursor is None
    done = await store.list_orders(status=OrderStatus.COMPLETED)
    assert [o.id for o in done.orders] == ["C-0"]
    accepted_c2c = await store.list_orders(status=OrderStatus.ACCEPTED, type=OrderType.B2C, limit=2)
    assert [o.id for o in accepted_c2c.orders] == ["C-1", "C-2"]

    with pytest.raises(InvalidCursor):
        await store.list_orders(cursor="garbage!")
    with pytest.raises(ValueError):
        await store.list_orders(limit=0)

    active = await store.active_orders()
    assert [o.id for o in active][:2] == ["C-1", "C-2"] and len(active) == 9
    counts = await store.count_by_status()
    assert counts[OrderStatus.ACCEPTED] == 9 and counts[OrderStatus.COMPLETED] == 1
    assert counts[OrderStatus.FAILED] == 0


async def test_everything_survives_close_and_reopen(store_backend: StoreBackend) -> None:
    first = store_backend.new()
    await first.open()
    await first.create_order("D-1", b2b(), T0)
    await first.record("D-1", "released", T0, status=OrderStatus.RELEASED, picked={"10": 1})
    await first.close()
    with pytest.raises(StoreError):
        await first.get_order("D-1")

    second = store_backend.new()
    await second.open()
    try:
        rec = await second.get_order("D-1")
        assert rec is not None
        assert rec.status is OrderStatus.RELEASED and rec.picked == {"10": 1}
        assert rec.body == b2b()
        assert rec.due_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        assert [e.type for e in await second.history("D-1")] == ["accepted", "released"]
        outcome, _ = await second.create_order("D-1", b2b(), T0)
        assert outcome is CreateOutcome.EXISTS
    finally:
        await second.close()


async def test_not_opened_store_refuses(store_backend: StoreBackend) -> None:
    s = store_backend.new()
    with pytest.raises(StoreError, match="not open"):
        await s.get_order("x")


async def test_ping_answers_while_open_and_fails_clearly_when_closed(
    store_backend: StoreBackend,
) -> None:
    store = store_backend.new()
    with pytest.raises(StoreError, match="not open"):
        await store.ping()
    await store.open()
    await store.ping()
    await store.probe_write()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.ping()
    with pytest.raises(StoreError, match="open it only once"):
        await store.open()

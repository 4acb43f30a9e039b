"""Waiting reasons in the store on every engine (SQLite, PostgreSQL): the typed value is stored
next to the text and read back after a restart (the dispatcher goes on from it); and a SQLite
database written before the values were stored keeps its reasons as text."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import InFlight
from controller.orders.model import OrderIn
from controller.orders.waiting import Other, StockShort, from_data
from controller.robots.dispatcher import Dispatcher
from controller.store.sql.store import SqlStore
from controller.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from tests.store_backends import StoreBackend
from tests.store_sql import run_sql
from tests.unit.test_dispatch_backlog import Fleet, Sorter

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
PREVIOUS_VERSION = 7  # the schema before the typed reasons
SHORT_TEXT = "stock_short: SKU-0001 missing 1 (on hand 4096, reserved 0)"


def body(quantity: int = 1) -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "due_at": (T0 + timedelta(hours=3)).isoformat(),
            "destination": "DHL",
            "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": quantity}],
        }
    )


def previous_database(
    tmp_path: Path, orders: dict[str, tuple[OrderIn, str | None]]
) -> StoreBackend:
    """A SQLite database as the previous release left it: schema 7, orders with their reason as
    text."""
    assert SCHEMA_VERSION == PREVIOUS_VERSION + 1
    backend = StoreBackend("sqlite", tmp_path)
    conn = sqlite3.connect(backend.folder / "line.db")
    for statements in MIGRATIONS[:PREVIOUS_VERSION]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (PREVIOUS_VERSION,))
    ts = T0.isoformat(timespec="microseconds")
    for seq, (order_id, (order, reason)) in enumerate(orders.items(), 1):
        conn.execute(
            "INSERT INTO orders (id, seq, type, status, priority, due_at, destination, body,"
            " fingerprint, created_at, updated_at, step, waiting_reason, picked)"
            " VALUES (?, ?, 'b2c', 'accepted', 5, ?, 'DHL', ?, ?, ?, ?, NULL, ?, '{}')",
            (
                order_id,
                seq,
                order.due_at.astimezone(UTC).isoformat(timespec="microseconds"),
                order.model_dump_json(),
                order.fingerprint(),
                ts,
                ts,
                reason,
            ),
        )
        conn.execute(
            "INSERT INTO events (order_id, at, type, status) VALUES (?, ?, 'accepted', 'accepted')",
            (order_id, ts),
        )
    conn.commit()
    conn.close()
    return backend


def columns(backend: StoreBackend, order_id: str) -> tuple[str | None, str | None]:
    [(text, data)] = run_sql(
        backend, "SELECT waiting_reason, waiting FROM orders WHERE id = ?", (order_id,)
    )
    return text, data


@asynccontextmanager
async def opened(backend: StoreBackend) -> AsyncIterator[SqlStore]:
    store = backend.new()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_the_migration_reads_reasons_of_the_previous_schema_as_text(tmp_path: Path) -> None:
    backend = previous_database(tmp_path, {"A": (body(), SHORT_TEXT), "B": (body(), None)})
    async with opened(backend) as store:
        a, b = await store.get_order("A"), await store.get_order("B")
        assert a is not None and b is not None
        assert a.waiting == Other(SHORT_TEXT) and a.waiting_reason == SHORT_TEXT
        assert b.waiting is None and b.waiting_reason is None
        assert [r.waiting for r in await store.active_orders()] == [Other(SHORT_TEXT), None]
    assert run_sql(backend, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    assert columns(backend, "A") == (SHORT_TEXT, None)  # the text is kept as it was


async def test_a_typed_reason_is_written_with_its_text_and_read_back_after_a_restart(
    store_backend: StoreBackend,
) -> None:
    short = StockShort("SKU-0001", 2, 1, 1)
    async with opened(store_backend) as store:
        await store.create_order("A", body(), T0)
        await store.record("A", "waiting", T0 + timedelta(seconds=1), waiting=short)
    text, data = columns(store_backend, "A")
    assert text == short.render() == "stock_short: SKU-0001 missing 2 (on hand 1, reserved 1)"
    assert data is not None and from_data(json.loads(data)) == short
    async with opened(store_backend) as store:
        rec = await store.get_order("A")
        assert rec is not None and rec.waiting == short
        await store.record("A", "robot_assigned", T0 + timedelta(seconds=2), waiting=None)
    assert columns(store_backend, "A") == (None, None)


async def test_an_unreadable_typed_reason_falls_back_to_its_text(
    store_backend: StoreBackend,
) -> None:
    async with opened(store_backend) as store:
        await store.create_order("A", body(), T0)
        await store.record("A", "waiting", T0, waiting=StockShort("SKU-0001", 2, 1, 1))
    run_sql(store_backend, """UPDATE orders SET waiting = '{"kind": "from_a_newer_release"}'""")
    async with opened(store_backend) as store:
        rec = await store.get_order("A")
        assert rec is not None
        assert rec.waiting == Other("stock_short: SKU-0001 missing 2 (on hand 1, reserved 1)")


@dataclass
class Line:
    """A dispatcher over a store, with one robot free."""

    store: SqlStore
    dispatcher: Dispatcher
    metrics: Metrics

    async def waits(self) -> int:
        """The ``waiting`` events recorded for order A."""
        return sum(1 for e in await self.store.history("A") if e.type == "waiting")

    def stockouts(self) -> float:
        value = self.metrics.registry.get_sample_value("linectl_stockouts_total")
        return value or 0.0


@asynccontextmanager
async def line_at(backend: StoreBackend, config: LineConfig) -> AsyncIterator[Line]:
    """The controller started on the backend's database: the queue filled from the store, as at
    a restart."""
    clock = ManualClock(T0 + timedelta(minutes=1))
    async with opened(backend) as store:
        metrics = Metrics()
        history = History(store, clock, metrics)
        inventory = Inventory(config, store, clock, metrics)
        await inventory.open()
        fleet = Fleet(config, idle=1)
        dispatcher = Dispatcher(
            config, clock, history, metrics, fleet, Sorter(), InFlight(), inventory
        )
        for rec in await store.active_orders():
            dispatcher.add(rec)
        yield Line(store, dispatcher, metrics)


async def test_after_a_restart_the_dispatcher_goes_on_from_the_stored_reason(
    store_backend: StoreBackend, reference_line: LineConfig
) -> None:
    async with opened(store_backend) as store:
        await store.create_order("A", body(4001), T0)  # 4000 at the pick locations
    async with line_at(store_backend, reference_line) as line:
        await line.dispatcher.dispatch_once()
        assert await line.waits() == 1 and line.stockouts() == 1
        rec = await line.store.get_order("A")
        assert rec is not None and isinstance(rec.waiting, StockShort)
        assert rec.waiting_reason == SHORT_TEXT
    async with line_at(store_backend, reference_line) as line:  # restarted
        await line.dispatcher.dispatch_once()
        assert await line.waits() == 1  # the same reason: not recorded again
        assert line.stockouts() == 0  # nor counted again


async def test_after_the_migration_a_reason_known_as_text_is_recorded_once_as_a_value(
    tmp_path: Path, reference_line: LineConfig
) -> None:
    backend = previous_database(tmp_path, {"A": (body(4001), SHORT_TEXT)})
    async with line_at(backend, reference_line) as line:
        await line.dispatcher.dispatch_once()
        await line.dispatcher.dispatch_once()
        assert await line.waits() == 1
        rec = await line.store.get_order("A")
        assert rec is not None and isinstance(rec.waiting, StockShort)
        assert rec.waiting_reason == SHORT_TEXT  # the same text as before, now typed
    async with line_at(backend, reference_line) as line:
        await line.dispatcher.dispatch_once()
        assert await line.waits() == 1

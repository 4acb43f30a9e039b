"""Order completion metrics: cycle time and on-time share against the due time, in line time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.line.history import History
from controller.orders.model import OrderIn, OrderStatus
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.metrics import Metrics

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def body(kind: str, due_in: timedelta, window_ends_in: timedelta | None = None) -> OrderIn:
    doc: dict[str, object] = {
        "type": kind,
        "due_at": (T0 + due_in).isoformat(),
        "destination": "DHL" if kind == "b2c" else "CUST-ACME",
        "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
    }
    if window_ends_in is not None:
        doc["deliver_from"] = (T0 - timedelta(hours=1)).isoformat()
        doc["deliver_until"] = (T0 + window_ends_in).isoformat()
    return OrderIn.model_validate(doc)


async def test_completion_counts_on_time_against_cut_off_or_delivery_window(
    store: SqliteOrderStore,
) -> None:
    clock = ManualClock(start=T0)
    metrics = Metrics()
    history = History(store, clock, metrics)
    orders = {
        "C-EARLY": body("b2c", timedelta(minutes=30)),
        "C-LATE": body("b2c", timedelta(minutes=5)),
        # B2B: the end of the delivery window counts, not due_at
        "B-WINDOW-LATE": body("b2b", timedelta(hours=5), window_ends_in=timedelta(minutes=5)),
        "B-NO-WINDOW": body("b2b", timedelta(hours=5)),
    }
    for order_id, order in orders.items():
        await store.create_order(order_id, order, T0)
    await clock.advance(600)  # ten minutes of line time
    for order_id in orders:
        rec = await store.get_order(order_id)
        assert rec is not None
        await history.finish(rec, "completed", OrderStatus.COMPLETED)
    # an order that does not complete is not counted
    await store.create_order("C-CANCELLED", body("b2c", timedelta(minutes=1)), T0)
    rec = await store.get_order("C-CANCELLED")
    assert rec is not None
    await history.finish(rec, "cancelled", OrderStatus.CANCELLED)

    def on_time(kind: str, value: str) -> float | None:
        return metrics.registry.get_sample_value(
            "linectl_orders_on_time_total", {"type": kind, "on_time": value}
        )

    assert (on_time("b2c", "true"), on_time("b2c", "false")) == (1.0, 1.0)
    assert (on_time("b2b", "true"), on_time("b2b", "false")) == (1.0, 1.0)
    cycles = metrics.registry.get_sample_value("linectl_order_cycle_seconds_sum", {"type": "b2c"})
    assert cycles == pytest.approx(1200.0)

"""Writing an order's steps: one history event per step, metrics when an order finishes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.clock import Clock
from controller.metrics import Metrics
from controller.orders import OrderRecord, OrderStatus
from controller.store.base import OrderStore


class History:
    def __init__(self, store: OrderStore, clock: Clock, metrics: Metrics) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        # called with the order once it ends (terminal, or in exception): what it held is free
        self.ended: list[Callable[[OrderRecord], None]] = []

    async def get(self, order_id: str) -> OrderRecord | None:
        return await self.store.get_order(order_id)

    async def record(
        self, rec: OrderRecord, event_type: str, status: OrderStatus | None = None, **changes: Any
    ) -> OrderRecord:
        """Append a history event (and apply ``changes``); return the order as it now stands."""
        await self.store.record(rec.id, event_type, self.clock.utcnow(), status=status, **changes)
        updated = await self.store.get_order(rec.id)
        rec = updated if updated is not None else rec
        if status is not None and (status.terminal or status is OrderStatus.EXCEPTION):
            for listener in self.ended:
                listener(rec)
        return rec

    async def finish(
        self, rec: OrderRecord, event_type: str, status: OrderStatus, **changes: Any
    ) -> OrderRecord:
        """Move the order to a terminal status (or ``exception``) and count it."""
        changes.setdefault("waiting_reason", None)
        rec = await self.record(rec, event_type, status, **changes)
        self.metrics.orders_finished.labels(rec.type.value, status.value).inc()
        if status is OrderStatus.COMPLETED:
            now = self.clock.utcnow()
            cycle = (now - rec.created_at).total_seconds()
            self.metrics.order_cycle_seconds.labels(rec.type.value).observe(cycle)
            # B2C by the carrier cut-off, B2B by the end of its delivery window when it has one
            due = rec.body.deliver_until or rec.due_at
            on_time = "true" if now <= due else "false"
            self.metrics.orders_on_time.labels(rec.type.value, on_time).inc()
        return rec

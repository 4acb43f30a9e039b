"""Writing an order's steps: one history event per step, metrics when an order finishes.

With a :class:`~controller.line.journal.HistoryJournal` (the service always has one), events
go through it: written at once while the store takes writes, kept in order and written later
while it does not; orders are read with the events still waiting applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.line.journal import HistoryJournal
from controller.orders.model import OrderRecord, OrderStatus
from controller.store.base import OrderStore
from kernel.clock import Clock
from kernel.metrics import Metrics


class History:
    def __init__(
        self,
        store: OrderStore,
        clock: Clock,
        metrics: Metrics,
        journal: HistoryJournal | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.journal = journal
        # called with the order once it ends (terminal, or in exception): what it held is free
        self.ended: list[Callable[[OrderRecord], None]] = []

    async def get(self, order_id: str) -> OrderRecord | None:
        """The order as it stands (with its events not written yet)."""
        rec = await self.store.get_order(order_id)
        if rec is None or self.journal is None:
            return rec
        return self.journal.overlay(rec)

    async def event_types(self, order_id: str) -> list[str]:
        """The types of the order's events, oldest first, those not written yet included."""
        types = [e.type for e in await self.store.history(order_id)]
        if self.journal is not None:
            types += [e.event_type for e in self.journal.waiting(order_id)]
        return types

    async def record(
        self, rec: OrderRecord, event_type: str, status: OrderStatus | None = None, **changes: Any
    ) -> OrderRecord:
        """Append a history event (and apply ``changes``); return the order as it now stands."""
        at = self.clock.utcnow()
        if self.journal is None:
            await self.store.record(rec.id, event_type, at, status=status, **changes)
        else:
            await self.journal.record(rec.id, event_type, at, status, changes)
        updated = await self.get(rec.id)
        rec = updated if updated is not None else rec
        if status is not None and (status.terminal or status is OrderStatus.EXCEPTION):
            for listener in self.ended:
                listener(rec)
        return rec

    async def finish(
        self, rec: OrderRecord, event_type: str, status: OrderStatus, **changes: Any
    ) -> OrderRecord:
        """Move the order to a terminal status (or ``exception``) and count it."""
        changes.setdefault("waiting", None)
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

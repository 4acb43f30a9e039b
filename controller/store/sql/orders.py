"""The store's orders and their history, as an async part of the store.

Creates that arrive together share one transaction (:class:`~controller.store.sql.batch.
CreateBatcher`), each answered after that commit; every other call is one call on the store's
writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controller.orders.model import HistoryEvent, OrderIn, OrderRecord, OrderStatus, OrderType
from controller.orders.waiting import Waiting
from controller.store.base import UNCHANGED, CreateOutcome, Page, Unchanged
from controller.store.sql import changes, ops
from controller.store.sql.batch import CreateBatcher
from controller.store.sql.worker import StoreWorker

MAX_PAGE = 1000


class SqlOrders:
    """Orders, their history events and their counts on the store's writer (the order part of
    :class:`~controller.store.base.OrderStore`)."""

    def __init__(self, writer: StoreWorker) -> None:
        self._writer = writer
        self._creates = CreateBatcher(writer.submit_nowait)

    async def create(
        self, order_id: str, body: OrderIn, at: datetime
    ) -> tuple[CreateOutcome, OrderRecord]:
        """Insert the order with an ``accepted`` history event, idempotently on ``order_id``."""
        created = await self._creates.create(order_id, body, at)
        await self._writer.publish_changes()
        return created

    async def get(self, order_id: str) -> OrderRecord | None:
        return await self._writer.run(ops.get_order, order_id)

    async def history(self, order_id: str) -> list[HistoryEvent]:
        """The order's events, oldest first (empty for an unknown id)."""
        return await self._writer.run(ops.history, order_id)

    async def histories(self, order_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
        """The events of each order, oldest first, in one read."""
        return await self._writer.run(ops.histories, list(order_ids))

    async def page(
        self,
        *,
        status: OrderStatus | None = None,
        type: OrderType | None = None,
        limit: int = 100,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        due_after: datetime | None = None,
        due_before: datetime | None = None,
    ) -> Page:
        """Orders in arrival order. Raises :class:`~controller.store.base.InvalidCursor`."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
        after = ops.decode_cursor(cursor) if cursor else 0
        bounds = {
            "created_after": created_after,
            "created_before": created_before,
            "due_after": due_after,
            "due_before": due_before,
        }
        return await self._writer.run(ops.list_orders, status, type, limit, after, bounds)

    async def update(
        self,
        order_id: str,
        at: datetime,
        *,
        priority: int | None = None,
        due_at: datetime | None = None,
    ) -> OrderRecord:
        """New priority and/or due time of an accepted order (see the protocol)."""
        return await self._writer.run(changes.update_order, order_id, at, priority, due_at)

    async def request_cancel(
        self, order_id: str, at: datetime, *, reason: str | None = None
    ) -> tuple[bool, OrderRecord]:
        """Record the WMS's cancel request once (see the protocol)."""
        return await self._writer.run(changes.request_cancel, order_id, at, reason)

    async def record(
        self,
        order_id: str,
        event_type: str,
        at: datetime,
        *,
        status: OrderStatus | None = None,
        step: str | Unchanged | None = UNCHANGED,
        waiting: Waiting | Unchanged | None = UNCHANGED,
        picked: dict[str, int] | None = None,
        data: dict[str, Any] | None = None,
    ) -> HistoryEvent:
        """Append a history event and apply the changes in one transaction (see the protocol)."""
        return await self._writer.run(
            ops.record, order_id, event_type, at, status, step, waiting, picked, data
        )

    async def active(self) -> list[OrderRecord]:
        return await self._writer.run(ops.active_orders)

    async def count_by_status(self) -> dict[OrderStatus, int]:
        return await self._writer.run(ops.count_by_status)

"""The store's event feed and webhook outbox: history events of all orders in ``seq``
order, for SSE readers and the webhook dispatcher, and the durable delivery rows fanned out from
them.

Waiting for a new event does not poll the database: the store's writer wakes waiters when a call
that added events has committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.store.base import StoredEvent
from controller.store.outbox import Delivery, DeliveryState, FanOutResult, FanOutTarget
from controller.store.sql import events, outbox
from controller.store.sql.worker import StoreWorker


class SqlEventFeed:
    """The event feed (part of :class:`~controller.store.base.OrderStore`) and the
    :class:`~controller.store.outbox.OutboxStore` on the store's writer."""

    def __init__(self, writer: StoreWorker) -> None:
        self._writer = writer

    # --- event feed -----------------------------------------------------------------------

    async def events_after(
        self, after_seq: int, limit: int, *, order_id: str | None = None
    ) -> list[StoredEvent]:
        """History events with ``seq > after_seq``, oldest first, at most ``limit``."""
        if not 1 <= limit <= events.MAX_EVENT_PAGE:
            raise ValueError(f"limit must be between 1 and {events.MAX_EVENT_PAGE}, got {limit}")
        return await self._writer.run(events.events_after, max(0, after_seq), limit, order_id)

    async def last_event_seq(self) -> int:
        return await self._writer.run(events.last_event_seq)

    async def wait_for_event(self, after_seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` wall seconds for an event newer than ``after_seq``."""
        return await self._writer.wait_for_event(after_seq, timeout)

    # --- webhook outbox -------------------------------------------------------------------

    async def feed_cursor(self, name: str) -> int:
        return await self._writer.run(outbox.feed_cursor, name)

    async def fan_out(
        self,
        targets: Sequence[FanOutTarget],
        *,
        callbacks: bool,
        at: datetime,
        limit: int,
        after: int = 0,
    ) -> FanOutResult:
        return await self._writer.run(outbox.fan_out, list(targets), callbacks, at, limit, after)

    async def due_deliveries(
        self, now: datetime, *, per_receiver: int, limit: int
    ) -> list[Delivery]:
        return await self._writer.run(outbox.due_deliveries, now, per_receiver, limit)

    async def next_delivery_due(self, after: datetime) -> datetime | None:
        return await self._writer.run(outbox.next_delivery_due, after)

    async def finish_attempt(
        self,
        delivery_id: int,
        state: DeliveryState,
        *,
        attempts: int,
        at: datetime,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        await self._writer.run(
            outbox.finish_attempt, delivery_id, state, attempts, at, next_attempt_at, error
        )

    async def pending_deliveries(self) -> int:
        return await self._writer.run(outbox.pending_deliveries)

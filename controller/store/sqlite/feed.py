"""The SQLite store's event feed and webhook outbox, as async methods of the store.

:class:`SqliteFeedMixin` is mixed into :class:`~controller.store.sqlite.store.SqliteOrderStore`; it
runs the statements of :mod:`controller.store.sqlite.events` and
:mod:`controller.store.sqlite.outbox` on the store's worker thread and keeps the in-process
:class:`~controller.store.event_signal.EventSignal` current: the worker notes the newest event
``seq`` after every statement batch that changed rows (:meth:`_note_changes`), and the event loop
publishes it once the call has returned, that is after the commit (:meth:`_publish_changes`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from controller.store.base import StoredEvent
from controller.store.event_signal import EventSignal
from controller.store.outbox import Delivery, DeliveryState, FanOutResult, FanOutTarget
from controller.store.sqlite import events, outbox

T = TypeVar("T")


class SqliteFeedMixin:
    """Event feed (:class:`~controller.store.base.OrderStore`) and
    :class:`~controller.store.outbox.OutboxStore` methods of the SQLite store."""

    _event_signal: EventSignal
    _noted_head: int | None

    if TYPE_CHECKING:

        async def _run(self, fn: Callable[..., T], *args: Any) -> T: ...

    def _init_feed(self) -> None:
        self._event_signal = EventSignal()
        self._noted_head = None  # written on the worker thread, read on the loop

    # --- change notification --------------------------------------------------------------

    def _note_changes(self, conn: sqlite3.Connection, changes_before: int) -> None:
        """Worker thread, after a call: remember the newest event if rows were changed."""
        if self._noted_head is None or conn.total_changes != changes_before:
            self._noted_head = events.last_event_seq(conn)

    async def _publish_changes(self) -> None:
        """Event loop, after a call returned: wake readers waiting for newer events."""
        head = self._noted_head
        if head is not None:
            await self._event_signal.advance(head)

    # --- event feed -----------------------------------------------------------------------

    async def events_after(
        self, after_seq: int, limit: int, *, order_id: str | None = None
    ) -> list[StoredEvent]:
        """History events with ``seq > after_seq``, oldest first, at most ``limit``."""
        if not 1 <= limit <= events.MAX_EVENT_PAGE:
            raise ValueError(f"limit must be between 1 and {events.MAX_EVENT_PAGE}, got {limit}")
        return await self._run(events.events_after, max(0, after_seq), limit, order_id)

    async def last_event_seq(self) -> int:
        return await self._run(events.last_event_seq)

    async def wait_for_event(self, after_seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` wall seconds for an event newer than ``after_seq``."""
        if self._noted_head is None:
            await self.last_event_seq()  # learns the head of a freshly opened file
        return await self._event_signal.wait_beyond(after_seq, timeout)

    # --- webhook outbox -------------------------------------------------------------------

    async def feed_cursor(self, name: str) -> int:
        return await self._run(outbox.feed_cursor, name)

    async def fan_out(
        self,
        targets: Sequence[FanOutTarget],
        *,
        callbacks: bool,
        at: datetime,
        limit: int,
        after: int = 0,
    ) -> FanOutResult:
        return await self._run(outbox.fan_out, list(targets), callbacks, at, limit, after)

    async def due_deliveries(
        self, now: datetime, *, per_receiver: int, limit: int
    ) -> list[Delivery]:
        return await self._run(outbox.due_deliveries, now, per_receiver, limit)

    async def next_delivery_due(self, after: datetime) -> datetime | None:
        return await self._run(outbox.next_delivery_due, after)

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
        await self._run(
            outbox.finish_attempt, delivery_id, state, attempts, at, next_attempt_at, error
        )

    async def pending_deliveries(self) -> int:
        return await self._run(outbox.pending_deliveries)

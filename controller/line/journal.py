"""Order events kept in order while the store cannot write them.

What happened on the line (a pick, a drop, a scan, a cancel) has happened whether or not the
disk takes it. :class:`HistoryJournal` is the way every order event goes to the store
(:class:`controller.line.history.History` calls :meth:`HistoryJournal.record`): while the store
takes writes and nothing waits, the event is written at once, as before. When the store is
unavailable, or events are already waiting, the event is kept in memory behind them and
:meth:`HistoryJournal.run` writes them, oldest first, as soon as the store takes writes again
(trying after jittered, doubling waits). One queue for every order, so each order's status
transitions are written in the order they happened, and the events' sequence numbers follow
the order of the events on the line.

Until then :meth:`HistoryJournal.overlay` shows an order as it stands with its waiting events
applied, so that the controller decides on what happened, not on what is on disk. An event the
store refuses when it is finally written (the order is unknown, or already terminal) is logged
and dropped: it would have been refused at once had the store been up. The journal has no hard
bound (dropping what happened would be worse), but past ``store.backlog_limit`` events the line
is held (:attr:`controller.store.health.StoreHealth.hold_reason`), which stops new work.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.orders.model import OrderRecord, OrderStatus
from controller.store.base import OrderStore, StoreError, StoreUnavailable
from controller.store.health import StoreHealth
from kernel.backoff import Backoff

log = logging.getLogger(__name__)

SHUTDOWN_LISTED = 50  # events named in the log line when the store is down at shutdown


@dataclass(frozen=True)
class PendingEvent:
    """An order event not written yet: the arguments of ``OrderStore.record``."""

    order_id: str
    event_type: str
    at: datetime
    status: OrderStatus | None
    changes: Mapping[str, Any]  # step, waiting, picked, data: only those given

    def summary(self) -> dict[str, Any]:
        """The event as the log shows it (a waiting reason as its text)."""
        status = self.status.value if self.status is not None else None
        changes: dict[str, Any] = {}
        for key, value in self.changes.items():
            if key == "waiting":  # logged as the text the API shows, as it always was
                key, value = "waiting_reason", None if value is None else value.render()
            changes[key] = value
        return {"order": self.order_id, "type": self.event_type, "at": self.at.isoformat(),
                "status": status, **changes}  # fmt: skip


class HistoryJournal:
    """The way of order events to the store (see the module docstring)."""

    def __init__(self, store: OrderStore, health: StoreHealth) -> None:
        self.store = store  # the store itself, not retrying: the journal waits on its own
        self.health = health
        self._events: deque[PendingEvent] = deque()
        self._by_order: dict[str, list[PendingEvent]] = {}
        self._lock = asyncio.Lock()  # one write at a time: nothing overtakes a failed one
        self._wake = asyncio.Event()
        health.backlog_sources.append(lambda: len(self._events))

    @property
    def size(self) -> int:
        return len(self._events)

    async def record(
        self,
        order_id: str,
        event_type: str,
        at: datetime,
        status: OrderStatus | None,
        changes: Mapping[str, Any],
    ) -> bool:
        """Write the event now, or keep it behind those waiting; True when it was written.
        Errors of the event itself (:class:`StoreError` other than unavailability) are raised
        when it is written now, as the store raises them."""
        event = PendingEvent(order_id, event_type, at, status, dict(changes))
        async with self._lock:
            if self._events or self.health.failing is not None:
                self._keep(event)
                return False
            try:
                await self._write(event)
            except StoreUnavailable as exc:
                self.health.failed("record", exc)
                self._keep(event)
                return False
        self.health.succeeded()
        return True

    def overlay(self, rec: OrderRecord) -> OrderRecord:
        """``rec`` as read from the store, with the events still waiting applied."""
        update: dict[str, Any] = {}
        for event in self._by_order.get(rec.id, ()):
            if event.status is not None:
                update["status"] = event.status
            for key in ("step", "waiting"):
                if key in event.changes:
                    update[key] = event.changes[key]
            if event.changes.get("picked") is not None:
                update["picked"] = dict(event.changes["picked"])
            update["updated_at"] = event.at
        return rec.model_copy(update=update) if update else rec

    def waiting(self, order_id: str) -> list[PendingEvent]:
        """The order's events not written yet, oldest first."""
        return list(self._by_order.get(order_id, ()))

    async def run(self) -> None:
        """Write the waiting events, oldest first, until cancelled."""
        backoff: Backoff | None = None
        while True:
            while not self._events:
                self._wake.clear()
                await self._wake.wait()
            event = self._events[0]
            try:
                async with self._lock:
                    await self._write(event)
            except StoreUnavailable as exc:
                self.health.failed("record", exc)
                backoff = backoff or self.health.backoff()
                await self.health.sleep(backoff.next_delay())
                continue
            except StoreError as exc:
                log.warning(
                    "order event refused by the store when written late; dropped",
                    extra={**event.summary(), "error": str(exc)},
                )
            else:
                self.health.succeeded()
                backoff = None
            self._drop_head()

    async def flush(self) -> int:
        """Write what waits, each once, until the first failure (at shutdown); the number of
        events left, which are logged once with their contents."""
        while self._events:
            event = self._events[0]
            try:
                async with self._lock:
                    await self._write(event)
            except StoreUnavailable as exc:
                self.health.failed("record", exc)
                break
            except StoreError as exc:
                log.warning(
                    "order event refused by the store when written late; dropped",
                    extra={**event.summary(), "error": str(exc)},
                )
            self._drop_head()
        left = len(self._events)
        if left:
            log.error(
                "order store unavailable at shutdown: order events not recorded",
                extra={
                    "not_recorded": left,
                    "events": [e.summary() for e in list(self._events)[:SHUTDOWN_LISTED]],
                },
            )
        return left

    # --- the queue -------------------------------------------------------------------------

    async def _write(self, event: PendingEvent) -> None:
        await self.store.record(
            event.order_id, event.event_type, event.at, status=event.status, **event.changes
        )

    def _keep(self, event: PendingEvent) -> None:
        self._events.append(event)
        self._by_order.setdefault(event.order_id, []).append(event)
        self.health.backlog_changed()
        self._wake.set()

    def _drop_head(self) -> None:
        event = self._events.popleft()
        mine = self._by_order[event.order_id]
        mine.pop(0)
        if not mine:
            del self._by_order[event.order_id]
        self.health.backlog_changed()

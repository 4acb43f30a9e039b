"""The order store interface. The controller and the API see only this; SQLite (default) and,
later, PostgreSQL sit behind it. Every write is committed before the call returns."""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Protocol

from controller.orders.model import HistoryEvent, OrderIn, OrderRecord, OrderStatus, OrderType
from controller.orders.waiting import Waiting


class CreateOutcome(StrEnum):
    CREATED = "created"  # new order, 201
    EXISTS = "exists"  # same id, same body, 200
    CONFLICT = "conflict"  # same id, different body, 409


@dataclass(frozen=True)
class Page:
    orders: list[OrderRecord]
    next_cursor: str | None


class StoreError(Exception):
    """The store could not do what was asked (I/O, corruption, closed)."""


class StoreUnavailable(StoreError):
    """The store cannot write (or read) now: a full disk, an I/O error, a locked or damaged
    file. The same call may succeed later; nothing of it was applied."""


class Fenced(StoreError):
    """A write of a controller whose lease of the line was taken over by another: refused,
    nothing of it applied. The controller that gets it must stop: it is not the active one."""


# Set while answering an HTTP request: a store call that meets StoreUnavailable is not tried
# again (the client gets a 503 and tries again itself); see controller.store.retry.
FAIL_FAST: contextvars.ContextVar[bool] = contextvars.ContextVar("store_fail_fast", default=False)


class UnknownOrder(StoreError):
    pass


class WrongStatus(StoreError):
    """The order's current status does not allow the change that was asked for."""

    def __init__(self, order_id: str, status: OrderStatus, message: str) -> None:
        super().__init__(message)
        self.order_id = order_id
        self.status = status


class Unchanged(Enum):
    """The type of :data:`UNCHANGED`, so a type checker tells it from ``str | None``."""

    UNCHANGED = "unchanged"


# The default of a column argument of :meth:`OrderStore.record`: the call leaves the stored value
# as it is. None is a value (it clears the column), so it cannot mean "not given".
UNCHANGED = Unchanged.UNCHANGED


class OrderStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Answer a trivial query; StoreError when the store cannot (readiness probes)."""
        ...

    async def fence_writes(self, term: int) -> None:
        """From now on refuse every write (:class:`Fenced`) unless the line's controller lease
        is still of ``term``; StoreError for a store without a lease (SQLite)."""
        ...

    async def probe_write(self) -> None:
        """Commit a write that needs new space and leaves nothing behind; StoreUnavailable when
        the store cannot write (how a failing store is seen to work again)."""
        ...

    async def create_order(
        self, order_id: str, body: OrderIn, at: datetime
    ) -> tuple[CreateOutcome, OrderRecord]:
        """Insert the order with an ``accepted`` history event, idempotently on ``order_id``."""
        ...

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def history(self, order_id: str) -> list[HistoryEvent]: ...

    async def histories(self, order_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
        """:meth:`history` of many orders in one read (every id a key)."""
        ...

    async def list_orders(
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
        """Orders in arrival order; ``*_after`` bounds are inclusive, ``*_before`` exclusive."""
        ...

    async def update_order(
        self,
        order_id: str,
        at: datetime,
        *,
        priority: int | None = None,
        due_at: datetime | None = None,
    ) -> OrderRecord:
        """Change priority and/or due time of an ``accepted`` order, with an ``updated``
        history event holding the old and new values, in one transaction.

        Raises :class:`UnknownOrder`, or :class:`WrongStatus` once the order is released.
        """
        ...

    async def request_cancel(
        self, order_id: str, at: datetime, *, reason: str | None = None
    ) -> tuple[bool, OrderRecord]:
        """Record a ``cancel_requested`` event (no status change) unless one is recorded
        already; True when this call recorded it.

        Raises :class:`UnknownOrder`, or :class:`WrongStatus` if the order is terminal.
        """
        ...

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
        """Append a history event and apply the given changes in one transaction.

        ``status`` None keeps the status; ``step``/``waiting`` left :data:`UNCHANGED` keep
        theirs (None clears them); ``picked`` replaces the per-line picked quantities. Raises
        :class:`UnknownOrder` for an unknown id and :class:`StoreError` if the order is terminal
        and ``status`` would change it.
        """
        ...

    async def active_orders(self) -> list[OrderRecord]:
        """Every non-terminal order, oldest first (used at start-up to resume work)."""
        ...

    async def count_by_status(self) -> dict[OrderStatus, int]: ...

    async def events_after(
        self, after_seq: int, limit: int, *, order_id: str | None = None
    ) -> list[StoredEvent]:
        """History events of every order with ``seq > after_seq``, oldest first (one page)."""
        ...

    async def last_event_seq(self) -> int:
        """The ``seq`` of the newest history event (0 when there is none)."""
        ...

    async def wait_for_event(self, after_seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` wall seconds for an event with ``seq > after_seq`` to be
        committed by this process; True if there is one (a timeout is an answer, not an
        error). Does not poll the database."""
        ...


class InvalidCursor(ValueError):
    """A paging cursor that this store did not issue (or that was altered)."""


@dataclass(frozen=True)
class StoredEvent:
    """One history event as the event feed (SSE, webhooks) publishes it."""

    seq: int
    order_id: str
    at: datetime
    type: str
    status: OrderStatus
    data: dict[str, Any]

    def document(self) -> dict[str, Any]:
        """The event as a JSON-ready document, the same for SSE and webhooks."""
        return {
            "seq": self.seq,
            "order_id": self.order_id,
            "type": self.type,
            "status": self.status.value,
            "at": self.at.isoformat(),
            "data": self.data,
        }

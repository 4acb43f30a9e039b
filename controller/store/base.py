"""The order store interface. The controller and the API see only this; SQLite (default) and,
later, PostgreSQL sit behind it. Every write is committed before the call returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from controller.orders import HistoryEvent, OrderIn, OrderRecord, OrderStatus, OrderType


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


class UnknownOrder(StoreError):
    pass


_UNSET: Any = object()


class OrderStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def create_order(
        self, order_id: str, body: OrderIn, at: datetime
    ) -> tuple[CreateOutcome, OrderRecord]:
        """Insert the order with an ``accepted`` history event, idempotently on ``order_id``."""
        ...

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def history(self, order_id: str) -> list[HistoryEvent]: ...

    async def list_orders(
        self,
        *,
        status: OrderStatus | None = None,
        type: OrderType | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page: ...

    async def record(
        self,
        order_id: str,
        event_type: str,
        at: datetime,
        *,
        status: OrderStatus | None = None,
        step: str | None = _UNSET,
        waiting_reason: str | None = _UNSET,
        picked: dict[str, int] | None = None,
        data: dict[str, Any] | None = None,
    ) -> HistoryEvent:
        """Append a history event and apply the given changes in one transaction.

        ``status`` None keeps the status; ``step``/``waiting_reason`` left unset keep theirs
        (None clears them); ``picked`` replaces the per-line picked quantities. Raises
        :class:`UnknownOrder` for an unknown id and :class:`StoreError` if the order is terminal
        and ``status`` would change it.
        """
        ...

    async def active_orders(self) -> list[OrderRecord]:
        """Every non-terminal order, oldest first (used at start-up to resume work)."""
        ...

    async def count_by_status(self) -> dict[OrderStatus, int]: ...


class InvalidCursor(ValueError):
    """A paging cursor that this store did not issue (or that was altered)."""

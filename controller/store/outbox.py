"""The webhook outbox as the store offers it: durable delivery rows fanned out from events.

A fan-out step reads history events after its durable cursor and, in one transaction, inserts
one row per matching receiver and advances the cursor, so every event is fanned out exactly once
even across a crash. Delivery rows then live until they are delivered or dead; a row that is in
flight when the controller stops is still ``pending`` and is sent again (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from controller.store.base import StoredEvent

WEBHOOK_CURSOR = "webhooks"


class ReceiverKind(StrEnum):
    TARGET = "target"  # a receiver from the config (``webhooks.targets``)
    CALLBACK = "callback"  # the order's own ``callback_url``


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(frozen=True)
class FanOutTarget:
    """A configured receiver: its URL and the event types it wants (None: all)."""

    url: str
    event_types: frozenset[str] | None = None

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


@dataclass(frozen=True)
class FanOutResult:
    events: int  # events read after the cursor
    deliveries: int  # outbox rows inserted
    cursor: int  # the cursor after this step


@dataclass(frozen=True)
class Delivery:
    """One pending outbox row with the event it carries."""

    id: int
    kind: ReceiverKind
    url: str
    attempts: int
    event: StoredEvent


@runtime_checkable
class OutboxStore(Protocol):
    """What the webhook dispatcher needs from the store."""

    async def wait_for_event(self, after_seq: int, timeout: float) -> bool: ...  # noqa: ASYNC109

    async def feed_cursor(self, name: str) -> int:
        """The durable cursor ``name`` (the last event ``seq`` it has consumed)."""
        ...

    async def fan_out(
        self,
        targets: Sequence[FanOutTarget],
        *,
        callbacks: bool,
        at: datetime,
        limit: int,
        after: int = 0,
    ) -> FanOutResult:
        """Insert delivery rows for up to ``limit`` events after the webhook cursor (or after
        ``after``, the caller's own position, when that is further) and advance the cursor, in
        one transaction. ``callbacks``: also deliver each event to its order's ``callback_url``.
        Fanning out an event twice inserts nothing the second time."""
        ...

    async def due_deliveries(
        self, now: datetime, *, per_receiver: int, limit: int
    ) -> list[Delivery]:
        """Pending rows due at ``now``, at most ``per_receiver`` per URL, earliest due first."""
        ...

    async def next_delivery_due(self, after: datetime) -> datetime | None:
        """When the first pending row due strictly after ``after`` is due."""
        ...

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
        """Record one attempt: delivered, dead, or pending again from ``next_attempt_at``."""
        ...

    async def pending_deliveries(self) -> int: ...

"""The inventory store interface: stock, reservations and the movement ledger.

Stock lives in the same database as the orders. A stock row is one SKU at one place, either
loose at a location (``tote`` None: a robot pick location) or in a tote (AS/RS totes, wherever
the tote is). ``on_hand`` only changes with a confirmed event, and every change appends a row to
the movement ledger (:class:`Movement`) in the same transaction: for every (location, tote, SKU)
the ledger's deltas add up to its on-hand. Each confirmed event is applied once: a write carrying
an event reference already applied returns the first outcome and changes nothing.

A reservation holds units for an order: loose ones at a location (robot picks, given back when
the controller restarts, as no trip survives it), tote ones in a tote (case picks from the AS/RS,
kept over a restart with the tote's transport). A tote reservation names the tote, not a place,
so it follows the tote from the rack over the P&D and the conveyor to a station.

The records these calls return (stock rows, movements, events, :class:`Applied`) are defined in
:mod:`controller.store.stock` and exported here as well, where their callers have always found
them. The SQLite store implements this protocol (:mod:`controller.store.sqlite.inventory.parts`); a
PostgreSQL backend follows the same contract.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from controller.store.asrs import AsrsStore
from controller.store.audit import AuditStore
from controller.store.base import OrderStore, StoreError
from controller.store.reject_totes import RejectToteStore
from controller.store.stock import (
    Applied,
    Difference,
    InventoryEvent,
    Movement,
    MovementKind,
    PickOutcome,
    StockRow,
)

__all__ = [
    "Applied",
    "Difference",
    "InitialStock",
    "InsufficientStock",
    "InventoryError",
    "InventoryEvent",
    "InventoryStore",
    "LineStore",
    "Movement",
    "MovementKind",
    "NegativeStock",
    "PickLine",
    "PickOutcome",
    "ReservationState",
    "StockRow",
    "ToteLine",
    "ToteReservation",
    "UnknownTote",
]


class ReservationState(StrEnum):
    RESERVED = "reserved"
    CONSUMED = "consumed"  # picked (possibly short: see ``short``)
    RELEASED = "released"  # given back (order cancelled, trip void, restart)


class InventoryError(StoreError):
    """A stock change that cannot be applied; nothing was changed."""


class InsufficientStock(InventoryError):
    """A reservation asks for more than is available (on hand minus reserved)."""


class NegativeStock(InventoryError):
    """A change would take on-hand below zero."""


class UnknownTote(InventoryError):
    pass


@dataclass(frozen=True)
class PickLine:
    """One pick to reserve or release: ``quantity`` of ``sku`` at ``location`` for a line."""

    line_id: str
    sku: str
    location: str
    quantity: int


@dataclass(frozen=True)
class ToteReservation:
    """An open reservation in an AS/RS tote."""

    holder: str  # the order (or replenishment) it is for
    ref_id: str
    line_id: str
    sku: str
    tote: str
    units: int  # still held


@dataclass(frozen=True)
class ToteLine:
    """One line to reserve in an AS/RS tote: ``quantity`` of ``sku`` in ``tote``."""

    line_id: str
    sku: str
    tote: str
    quantity: int


@dataclass(frozen=True)
class InitialStock:
    location: str
    sku: str
    quantity: int
    tote: str | None = None


class InventoryStore(Protocol):
    """Stock, reservations and the ledger; every write is one transaction, committed before
    the call returns. ``levels`` are the low-stock levels per SKU: a write that takes a SKU's
    total on-hand below its level records one ``low_stock`` event (``low_stock_cleared`` when
    it is back at or above)."""

    async def inventory_initial_load(
        self, stock: Sequence[InitialStock], levels: Mapping[str, int], at: datetime
    ) -> bool:
        """Load ``stock`` if the inventory has never been loaded; True if it was loaded now."""
        ...

    async def inventory_stock(
        self,
        *,
        skus: Collection[str] | None = None,
        location: str | None = None,
        tote: str | None = None,
    ) -> list[StockRow]: ...

    async def inventory_reserve(
        self, order_id: str, trip_id: str, picks: Sequence[PickLine], at: datetime
    ) -> Applied:
        """Reserve every pick or none (:class:`InsufficientStock`)."""
        ...

    async def inventory_release(
        self,
        order_id: str,
        trip_id: str | None,
        picks: Sequence[PickLine] | None,
        at: datetime,
        reason: str,
        *,
        tote: str | None = None,
    ) -> Applied:
        """Give back open reservations of the order, loose and tote ones (of one trip or
        reference if ``trip_id``; only up to the given loose picks if ``picks``; only those in
        one tote if ``tote``, which excludes ``picks``). Releasing what is not reserved changes
        nothing."""
        ...

    async def inventory_release_open(self, at: datetime, reason: str) -> int:
        """Release every open loose reservation (at start-up: no trip survives a restart, while
        the AS/RS transports that tote reservations belong to do)."""
        ...

    async def inventory_reserve_totes(
        self, order_id: str, ref_id: str, lines: Sequence[ToteLine], at: datetime
    ) -> Applied:
        """Reserve every line in its tote or none: :class:`UnknownTote` if the tote holds no row
        of the SKU, :class:`InsufficientStock` if its on-hand minus what is reserved in it is
        less. ``ref_id`` (e.g. the transport's request) is kept as the reservations' trip."""
        ...

    async def inventory_confirm_tote_pick(
        self,
        order_id: str,
        line_id: str,
        tote: str,
        sku: str,
        taken: int,
        ref: str,
        levels: Mapping[str, int],
        at: datetime,
        put_to: str | None = None,
    ) -> Applied:
        """``taken`` units of ``sku`` were counted out of ``tote`` for the order's line: they
        consume its open reservations there (fewer: a short pick) and leave on-hand, or, with
        ``put_to``, go to that location's loose stock in the same transaction; idempotent on
        ``ref``."""
        ...

    async def inventory_tote_reservations(self, prefix: str) -> list[ToteReservation]:
        """Open tote reservations whose holder id starts with ``prefix``."""
        ...

    async def inventory_totes(self) -> dict[str, str]:
        """Every tote the inventory knows, with its location."""
        ...

    async def inventory_confirm_pick(
        self,
        order_id: str,
        trip_id: str,
        pick: PickLine,
        picked: int,
        ref: str,
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        """A robot picked ``picked`` units of ``pick`` (fewer: a short pick); idempotent on
        ``ref``."""
        ...

    async def inventory_count(
        self,
        location: str,
        tote: str | None,
        sku: str,
        counted: int,
        ref: str,
        data: Mapping[str, Any],
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        """Set on-hand to ``counted`` (a verification or cycle count); idempotent on ``ref``."""
        ...

    async def inventory_move_tote(
        self,
        tote: str,
        to_location: str,
        kind: MovementKind,
        ref: str,
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        """The tote and everything in it is now at ``to_location``; idempotent on ``ref``."""
        ...

    async def inventory_adjust(
        self,
        location: str | None,
        tote: str | None,
        sku: str,
        delta: int,
        kind: MovementKind,
        ref: str,
        data: Mapping[str, Any],
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        """Add ``delta`` units (negative: take) at a location or in a tote (``location`` None:
        wherever the tote is); idempotent on ``ref``."""
        ...

    async def inventory_reconcile(
        self, contents: Mapping[str, str | None], ref: str, at: datetime
    ) -> Applied:
        """Compare the totes the AS/RS reports per location with ours; record each difference
        as an ``asrs_difference`` event. Stock is not changed."""
        ...

    async def inventory_movements(
        self,
        *,
        sku: str | None = None,
        location: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[Movement]: ...

    async def inventory_events(self, after: int = 0, limit: int = 100) -> list[InventoryEvent]: ...

    async def inventory_low_skus(self) -> dict[str, int]:
        """SKUs below their low-stock level now, with their total on-hand."""
        ...


class LineStore(OrderStore, InventoryStore, RejectToteStore, AsrsStore, AuditStore, Protocol):
    """Orders, stock, AS/RS commands and the audit log in one database (what the controller
    opens)."""

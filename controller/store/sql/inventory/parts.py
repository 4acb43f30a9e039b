"""The store's inventory and reject-tote register, as async parts of the store.

Stock shares the order database, its single writer thread and its transactions: a reservation,
a pick or a restock is committed with its ledger rows and events, or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from controller.store.inventory import InitialStock, PickLine, ToteLine, ToteReservation
from controller.store.reject_totes import RejectLine, RejectTote, RejectToteState, RestockLine
from controller.store.sql.inventory import ops as inventory_ops
from controller.store.sql.inventory import read as inventory_read
from controller.store.sql.inventory import reject_totes, reservations
from controller.store.sql.inventory import totes as tote_ops
from controller.store.sql.worker import StoreWorker
from controller.store.stock import Applied, InventoryEvent, Movement, MovementKind, StockRow


class SqlInventory:
    """Stock, reservations and the movement ledger
    (:class:`~controller.store.inventory.InventoryStore`) on the store's writer."""

    def __init__(self, writer: StoreWorker) -> None:
        self._writer = writer

    async def initial_load(
        self, stock: Sequence[InitialStock], levels: Mapping[str, int], at: datetime
    ) -> bool:
        return await self._writer.run(inventory_ops.initial_load, list(stock), dict(levels), at)

    async def stock(
        self,
        *,
        skus: Collection[str] | None = None,
        location: str | None = None,
        tote: str | None = None,
    ) -> list[StockRow]:
        return await self._writer.run(
            inventory_read.stock_rows, None if skus is None else list(skus), location, tote
        )

    async def reserve(
        self, order_id: str, trip_id: str, picks: Sequence[PickLine], at: datetime
    ) -> Applied:
        return await self._writer.run(reservations.reserve, order_id, trip_id, list(picks), at)

    async def release(
        self,
        order_id: str,
        trip_id: str | None,
        picks: Sequence[PickLine] | None,
        at: datetime,
        reason: str,
        *,
        tote: str | None = None,
    ) -> Applied:
        chosen = None if picks is None else list(picks)
        return await self._writer.run(
            reservations.release, order_id, trip_id, chosen, at, reason, tote
        )

    async def release_open(self, at: datetime, reason: str) -> int:
        return await self._writer.run(reservations.release_open, at, reason)

    async def reserve_totes(
        self, order_id: str, ref_id: str, lines: Sequence[ToteLine], at: datetime
    ) -> Applied:
        return await self._writer.run(tote_ops.reserve_totes, order_id, ref_id, list(lines), at)

    async def confirm_tote_pick(
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
        return await self._writer.run(
            tote_ops.confirm_tote_pick,
            order_id,
            line_id,
            tote,
            sku,
            taken,
            ref,
            dict(levels),
            at,
            put_to,
        )

    async def tote_reservations(self, prefix: str) -> list[ToteReservation]:
        return await self._writer.run(tote_ops.tote_reservations, prefix)

    async def totes(self) -> dict[str, str]:
        return await self._writer.run(tote_ops.totes)

    async def confirm_pick(
        self,
        order_id: str,
        trip_id: str,
        pick: PickLine,
        picked: int,
        ref: str,
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        return await self._writer.run(
            inventory_ops.confirm_pick, order_id, trip_id, pick, picked, ref, dict(levels), at
        )

    async def count(
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
        return await self._writer.run(
            inventory_ops.count, location, tote, sku, counted, ref, dict(data), dict(levels), at
        )

    async def move_tote(
        self,
        tote: str,
        to_location: str,
        kind: MovementKind,
        ref: str,
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        return await self._writer.run(
            inventory_ops.move_tote, tote, to_location, kind, ref, dict(levels), at
        )

    async def adjust(
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
        return await self._writer.run(
            inventory_ops.adjust,
            location,
            tote,
            sku,
            delta,
            kind,
            ref,
            dict(data),
            dict(levels),
            at,
        )

    async def reconcile(
        self, contents: Mapping[str, str | None], ref: str, at: datetime
    ) -> Applied:
        return await self._writer.run(inventory_ops.reconcile, dict(contents), ref, at)

    async def movements(
        self,
        *,
        sku: str | None = None,
        location: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[Movement]:
        if not 1 <= limit <= inventory_read.MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {inventory_read.MAX_PAGE}, got {limit}")
        return await self._writer.run(inventory_read.movements, sku, location, max(0, after), limit)

    async def events(self, after: int = 0, limit: int = 100) -> list[InventoryEvent]:
        if not 1 <= limit <= inventory_read.MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {inventory_read.MAX_PAGE}, got {limit}")
        return await self._writer.run(inventory_read.events, max(0, after), limit)

    async def low_skus(self) -> dict[str, int]:
        return await self._writer.run(inventory_read.low_skus)


class SqlRejectTotes:
    """The register of totes sent to the reject chute
    (:class:`~controller.store.reject_totes.RejectToteStore`) on the store's writer."""

    def __init__(self, writer: StoreWorker) -> None:
        self._writer = writer

    async def register(
        self,
        tote: str,
        order_id: str,
        trip_id: str,
        chute: str,
        reason: str,
        lines: Sequence[RejectLine],
        at: datetime,
    ) -> RejectTote:
        return await self._writer.run(
            reject_totes.register, tote, order_id, trip_id, chute, reason, list(lines), at
        )

    async def listing(
        self, state: RejectToteState | None = None, limit: int = 500
    ) -> list[RejectTote]:
        if not 1 <= limit <= inventory_read.MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {inventory_read.MAX_PAGE}, got {limit}")
        return await self._writer.run(reject_totes.listing, state, limit)

    async def find(self, tote: str) -> RejectTote | None:
        return await self._writer.run(reject_totes.find, tote)

    async def open_totals(self) -> tuple[int, int]:
        return await self._writer.run(reject_totes.open_totals)

    async def restock(
        self,
        tote: str,
        lines: Sequence[RestockLine],
        by: str,
        note: str,
        levels: dict[str, int],
        at: datetime,
    ) -> tuple[RejectTote, Applied]:
        return await self._writer.run(
            reject_totes.restock, tote, list(lines), by, note, dict(levels), at
        )

    async def write_off(self, tote: str, by: str, note: str, at: datetime) -> RejectTote:
        return await self._writer.run(reject_totes.write_off, tote, by, note, at)

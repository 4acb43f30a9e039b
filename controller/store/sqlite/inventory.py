"""The SQLite store's inventory, as async methods of the store.

:class:`SqliteInventoryMixin` is mixed into
:class:`~controller.store.sqlite.store.SqliteOrderStore`, so stock shares the order database, its
single writer thread and its transactions; it runs the functions of
:mod:`controller.store.sqlite.inventory_ops` (stock changes),
:mod:`controller.store.sqlite.reservations` (loose reservations),
:mod:`controller.store.sqlite.tote_ops` (reservations in AS/RS totes) and
:mod:`controller.store.sqlite.inventory_read` (read queries) on that thread.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from controller.store.inventory import (
    Applied,
    InitialStock,
    InventoryEvent,
    Movement,
    MovementKind,
    PickLine,
    StockRow,
    ToteLine,
    ToteReservation,
)
from controller.store.reject_totes import RejectLine, RejectTote, RejectToteState, RestockLine
from controller.store.sqlite import inventory_ops as ops
from controller.store.sqlite import inventory_read as reads
from controller.store.sqlite import reject_totes, reservations, tote_ops

T = TypeVar("T")


class SqliteInventoryMixin:
    """:class:`~controller.store.inventory.InventoryStore` methods of the SQLite store."""

    if TYPE_CHECKING:

        async def _run(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def inventory_initial_load(
        self, stock: Sequence[InitialStock], levels: Mapping[str, int], at: datetime
    ) -> bool:
        return await self._run(ops.initial_load, list(stock), dict(levels), at)

    async def inventory_stock(
        self,
        *,
        skus: Collection[str] | None = None,
        location: str | None = None,
        tote: str | None = None,
    ) -> list[StockRow]:
        return await self._run(
            reads.stock_rows, None if skus is None else list(skus), location, tote
        )

    async def inventory_reserve(
        self, order_id: str, trip_id: str, picks: Sequence[PickLine], at: datetime
    ) -> Applied:
        return await self._run(reservations.reserve, order_id, trip_id, list(picks), at)

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
        chosen = None if picks is None else list(picks)
        return await self._run(reservations.release, order_id, trip_id, chosen, at, reason, tote)

    async def inventory_release_open(self, at: datetime, reason: str) -> int:
        return await self._run(reservations.release_open, at, reason)

    async def inventory_reserve_totes(
        self, order_id: str, ref_id: str, lines: Sequence[ToteLine], at: datetime
    ) -> Applied:
        return await self._run(tote_ops.reserve_totes, order_id, ref_id, list(lines), at)

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
        return await self._run(
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

    async def inventory_tote_reservations(self, prefix: str) -> list[ToteReservation]:
        return await self._run(tote_ops.tote_reservations, prefix)

    async def inventory_totes(self) -> dict[str, str]:
        return await self._run(tote_ops.totes)

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
        return await self._run(
            ops.confirm_pick, order_id, trip_id, pick, picked, ref, dict(levels), at
        )

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
        return await self._run(
            ops.count, location, tote, sku, counted, ref, dict(data), dict(levels), at
        )

    async def inventory_move_tote(
        self,
        tote: str,
        to_location: str,
        kind: MovementKind,
        ref: str,
        levels: Mapping[str, int],
        at: datetime,
    ) -> Applied:
        return await self._run(ops.move_tote, tote, to_location, kind, ref, dict(levels), at)

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
        return await self._run(
            ops.adjust, location, tote, sku, delta, kind, ref, dict(data), dict(levels), at
        )

    async def inventory_reconcile(
        self, contents: Mapping[str, str | None], ref: str, at: datetime
    ) -> Applied:
        return await self._run(ops.reconcile, dict(contents), ref, at)

    async def inventory_movements(
        self,
        *,
        sku: str | None = None,
        location: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[Movement]:
        if not 1 <= limit <= reads.MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {reads.MAX_PAGE}, got {limit}")
        return await self._run(reads.movements, sku, location, max(0, after), limit)

    async def inventory_events(self, after: int = 0, limit: int = 100) -> list[InventoryEvent]:
        if not 1 <= limit <= reads.MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {reads.MAX_PAGE}, got {limit}")
        return await self._run(reads.events, max(0, after), limit)

    async def inventory_low_skus(self) -> dict[str, int]:
        return await self._run(reads.low_skus)

    # --- totes sent to the reject chute (controller.store.reject_totes) ---------------------

    async def reject_tote_register(
        self,
        tote: str,
        order_id: str,
        trip_id: str,
        chute: str,
        reason: str,
        lines: Sequence[RejectLine],
        at: datetime,
    ) -> RejectTote:
        return await self._run(
            reject_totes.register, tote, order_id, trip_id, chute, reason, list(lines), at
        )

    async def reject_totes(
        self, state: RejectToteState | None = None, limit: int = 500
    ) -> list[RejectTote]:
        if not 1 <= limit <= reads.MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {reads.MAX_PAGE}, got {limit}")
        return await self._run(reject_totes.listing, state, limit)

    async def reject_tote(self, tote: str) -> RejectTote | None:
        return await self._run(reject_totes.find, tote)

    async def reject_totes_open(self) -> tuple[int, int]:
        return await self._run(reject_totes.open_totals)

    async def reject_tote_restock(
        self,
        tote: str,
        lines: Sequence[RestockLine],
        by: str,
        note: str,
        levels: dict[str, int],
        at: datetime,
    ) -> tuple[RejectTote, Applied]:
        return await self._run(reject_totes.restock, tote, list(lines), by, note, dict(levels), at)

    async def reject_tote_write_off(
        self, tote: str, by: str, note: str, at: datetime
    ) -> RejectTote:
        return await self._run(reject_totes.write_off, tote, by, note, at)

"""The live inventory: stock per SKU, tote and location, changed only by confirmed events.

:class:`Inventory` sits over the store's :class:`~controller.store.inventory.InventoryStore` (the
truth, in the order database) and keeps an in-memory mirror of it, refreshed from every write,
so the dispatcher plans on :meth:`Inventory.view` without a database read. On the first start the
line file's stock (``stock`` and ``asrs.totes``) is loaded; after that the database is the truth.

Reservations are made when an order is released to a robot and given back when its trip ends
without the units; a robot's pick confirmation consumes them and takes the units off on-hand,
once per robot action however often the message comes. A pick of fewer units than reserved is a
short pick: it is recorded, and the caller puts the order into exception with the result's
reason. Low stock is a line-level event (``low_stock`` / ``low_stock_cleared``) in the
inventory's event journal, raised once when a SKU's total falls below its level.

B2B case picks are served from AS/RS totes: an order reserves units of a SKU in a tote when it
is released (:meth:`Inventory.reserve_totes`), the reservation follows the tote to a station, and
the units counted out there consume it (:meth:`Inventory.confirm_tote_pick`). Tote reservations
survive a restart with the transports that carry their totes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from controller.line import topology
from controller.store.inventory import (
    Applied,
    Difference,
    InitialStock,
    InventoryEvent,
    InventoryStore,
    Movement,
    MovementKind,
    PickLine,
    PickOutcome,
    StockRow,
    ToteLine,
    ToteReservation,
)
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing.dispatch import Pick

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkuTotals:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class UnknownPlace(ValueError):
    """A count names a place or SKU the line does not have; nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _line(pk: Pick) -> PickLine:
    return PickLine(pk.line_id, pk.sku, pk.location, pk.quantity)


class Inventory:
    def __init__(
        self, config: LineConfig, store: InventoryStore, clock: Clock, metrics: Metrics
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.levels = {s.sku: s.low_stock for s in config.skus}
        # loose stock at these locations is what robots pick from
        self.pickable = set(topology.location_nodes(config))
        self._stock: dict[str, list[StockRow]] = {}
        self._view: dict[str, dict[str, int]] = {}
        self._tote_view: dict[str, dict[str, int]] = {}
        self._tote_at: dict[str, str] = {}
        self._low: set[str] = set()

    # --- start-up ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the line file's stock on the first start, give back the loose reservations of
        trips that did not survive a restart (tote reservations stay with their transports),
        and fill the mirror."""
        now = self.clock.utcnow()
        initial = [InitialStock(e.location, e.sku, e.quantity) for e in self.config.stock]
        initial += [
            InitialStock(t.location, t.sku, t.quantity, t.tote) for t in self.config.asrs.totes
        ]
        if await self.store.inventory_initial_load(initial, self.levels, now):
            log.info("inventory loaded from the line file", extra={"rows": len(initial)})
        released = await self.store.inventory_release_open(now, "controller restarted")
        if released:
            log.info("reservations of the last run released", extra={"reservations": released})
        self._stock = {}
        for row in await self.store.inventory_stock():
            self._stock.setdefault(row.sku, []).append(row)
        self._rebuild(self._stock)
        self._tote_at = await self.store.inventory_totes()
        self._low = set(await self.store.inventory_low_skus())
        self._gauges()

    # --- what the dispatcher reads ----------------------------------------------------------

    def view(self) -> Mapping[str, Mapping[str, int]]:
        """Units a robot may still be sent for: sku -> pick location -> on hand - reserved."""
        return self._view

    def tote_view(self) -> Mapping[str, Mapping[str, int]]:
        """Units a case pick may still reserve: sku -> tote -> on hand - reserved."""
        return self._tote_view

    def tote_location(self, tote: str) -> str | None:
        """Where ``tote`` is now (a rack location, ``PD:<aisle>``, ``CONVEYOR``, ``STATION:<id>``),
        None for a tote the inventory does not know."""
        return self._tote_at.get(tote)

    def on_hand(self, location: str, sku: str) -> int:
        """Loose units of ``sku`` on hand at ``location`` (from the mirror)."""
        return sum(
            r.on_hand for r in self._stock.get(sku, []) if r.tote is None and r.location == location
        )

    def totals(self, sku: str) -> SkuTotals:
        rows = self._stock.get(sku, [])
        return SkuTotals(sum(r.on_hand for r in rows), sum(r.reserved for r in rows))

    async def rows(self, *, sku: str | None = None, location: str | None = None) -> list[StockRow]:
        """Stock rows from the database (the truth), by SKU and/or location."""
        return await self.store.inventory_stock(
            skus=None if sku is None else [sku], location=location
        )

    async def movements(
        self,
        *,
        sku: str | None = None,
        location: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[Movement]:
        return await self.store.inventory_movements(
            sku=sku, location=location, after=after, limit=limit
        )

    async def events(self, *, after: int = 0, limit: int = 100) -> list[InventoryEvent]:
        return await self.store.inventory_events(after, limit)

    # --- reservations -----------------------------------------------------------------------

    async def reserve(self, order_id: str, picks: Iterable[Pick], trip_id: str = "") -> None:
        """Reserve every pick of the order or none (InsufficientStock)."""
        applied = await self.store.inventory_reserve(
            order_id, trip_id, [_line(pk) for pk in picks], self.clock.utcnow()
        )
        self._apply(applied)

    async def release(
        self,
        order_id: str,
        picks: Iterable[Pick] | None = None,
        trip_id: str | None = None,
        reason: str = "released",
        *,
        tote: str | None = None,
    ) -> None:
        """Give back the order's open reservations, loose and in totes (``trip_id``: of one trip,
        or of the ``ref_id`` given to :meth:`reserve_totes`; up to the loose ``picks``; only
        those in ``tote``)."""
        lines = None if picks is None else [_line(pk) for pk in picks]
        applied = await self.store.inventory_release(
            order_id, trip_id, lines, self.clock.utcnow(), reason, tote=tote
        )
        self._apply(applied)

    async def reserve_totes(
        self, order_id: str, lines: Iterable[ToteLine], ref_id: str = ""
    ) -> None:
        """Reserve every line in its tote or none (UnknownTote: the tote holds no such SKU;
        InsufficientStock: fewer units not yet reserved in it). ``ref_id`` names what the
        reservations are for (e.g. the AS/RS transport) and selects them in :meth:`release`."""
        applied = await self.store.inventory_reserve_totes(
            order_id, ref_id, list(lines), self.clock.utcnow()
        )
        self._apply(applied)

    # --- confirmed events -------------------------------------------------------------------

    async def confirm_pick(
        self, order_id: str, trip_id: str, pick: Pick, picked: int, ref: str
    ) -> PickOutcome:
        """A robot confirmed ``picked`` units of ``pick`` (action ``ref``). Fewer than reserved
        is a short pick: see :attr:`PickOutcome.reason`. A repeated ``ref`` changes nothing."""
        applied = await self.store.inventory_confirm_pick(
            order_id, trip_id, _line(pick), picked, ref, self.levels, self.clock.utcnow()
        )
        return self._picked(applied, order=order_id, trip=trip_id)

    async def confirm_tote_pick(
        self, order_id: str, line_id: str, tote: str, sku: str, taken: int, ref: str
    ) -> PickOutcome:
        """``taken`` units of ``sku`` were counted out of ``tote`` at a station for the order's
        line (event ``ref``): they consume its reservation there and leave on-hand. Fewer than
        reserved is a short pick (:attr:`PickOutcome.reason`); more than on hand is
        NegativeStock and changes nothing; a repeated ``ref`` changes nothing."""
        applied = await self.store.inventory_confirm_tote_pick(
            order_id, line_id, tote, sku, taken, ref, self.levels, self.clock.utcnow()
        )
        return self._picked(applied, order=order_id, tote=tote)

    async def replenish_from_tote(
        self, holder: str, tote: str, sku: str, location: str, units: int, ref: str
    ) -> PickOutcome:
        """``units`` of ``sku`` moved out of ``tote`` to the pick ``location`` (one
        transaction: the tote's reservation for ``holder`` consumed, the tote's on-hand down,
        the location's up, two ledger rows with ``ref``); a repeated ``ref`` changes nothing."""
        applied = await self.store.inventory_confirm_tote_pick(
            holder, location, tote, sku, units, ref, self.levels, self.clock.utcnow(), location
        )
        return self._picked(applied, order=holder, tote=tote)

    async def tote_reservations(self, prefix: str) -> list[ToteReservation]:
        """Open tote reservations whose holder id starts with ``prefix``."""
        return await self.store.inventory_tote_reservations(prefix)

    async def count(
        self,
        location: str,
        sku: str,
        counted: int,
        who: str,
        *,
        tote: str | None = None,
        ref: str | None = None,
        station: str | None = None,
        order_id: str | None = None,
    ) -> Applied:
        """A verification or cycle count sets on-hand (idempotent on ``ref`` when given).

        Only where the line keeps stock: loose stock at a storage location of the line file,
        or a tote the inventory knows at the place it is (the store checks the tote). A count
        naming anything else raises :class:`UnknownPlace` and writes nothing.
        """
        if sku not in self.levels:
            raise UnknownPlace("sku", f"unknown SKU {sku!r}: not in the line's SKU master")
        if tote is None and location not in self.pickable:
            raise UnknownPlace(
                "location",
                f"unknown location {location!r}: loose stock is counted at a storage location "
                "of the line (robots.storage_locations); stock in a tote is counted with its "
                "tote id",
            )
        data: dict[str, Any] = {"who": who}
        if station is not None:
            data["station"] = station
        if order_id is not None:
            data["order_id"] = order_id
        applied = await self.store.inventory_count(
            location,
            tote,
            sku,
            counted,
            ref or f"count-{uuid.uuid4().hex[:12]}",
            data,
            self.levels,
            self.clock.utcnow(),
        )
        self._apply(applied)
        return applied

    async def tote_stored(self, tote: str, location: str, ref: str) -> Applied:
        """A crane confirmed storing ``tote`` at rack ``location`` (command ``ref``)."""
        return await self._move(tote, location, MovementKind.CRANE_STORE_CONFIRMED, ref)

    async def tote_retrieved(self, tote: str, to_location: str, ref: str) -> Applied:
        """A crane confirmed bringing ``tote`` out, to ``to_location`` (e.g. ``PD:A1``)."""
        return await self._move(tote, to_location, MovementKind.CRANE_RETRIEVE_CONFIRMED, ref)

    async def tote_moved(self, tote: str, to_location: str, ref: str) -> Applied:
        """``tote`` arrived at ``to_location`` (``CONVEYOR``, ``STATION:<id>``, ...)."""
        return await self._move(tote, to_location, MovementKind.TOTE_MOVED, ref)

    async def take_from_tote(self, tote: str, sku: str, quantity: int, ref: str) -> Applied:
        """``quantity`` units of ``sku`` confirmed taken out of ``tote``."""
        return await self._adjust(None, tote, sku, -quantity, MovementKind.TOTE_PICK_CONFIRMED, ref)

    async def put_to_location(self, location: str, sku: str, quantity: int, ref: str) -> Applied:
        """``quantity`` units of ``sku`` confirmed put at ``location`` (replenishment)."""
        return await self._adjust(location, None, sku, quantity, MovementKind.PUT_CONFIRMED, ref)

    async def reconcile_asrs(
        self, contents: Mapping[str, str | None], ref: str | None = None
    ) -> list[Difference]:
        """Compare the cranes' report (location -> tote or None) with the inventory; each
        difference becomes an ``asrs_difference`` event. Stock is not changed."""
        applied = await self.store.inventory_reconcile(
            contents, ref or f"reconcile-{uuid.uuid4().hex[:12]}", self.clock.utcnow()
        )
        for d in applied.differences:
            log.warning(
                "AS/RS differs from the inventory",
                extra={
                    "kind": d.kind,
                    "location": d.location,
                    "reported_tote": d.reported_tote,
                    "expected_tote": d.expected_tote,
                },
            )
        return applied.differences

    async def _move(self, tote: str, to: str, kind: MovementKind, ref: str) -> Applied:
        applied = await self.store.inventory_move_tote(
            tote, to, kind, ref, self.levels, self.clock.utcnow()
        )
        self._apply(applied)
        return applied

    async def _adjust(
        self,
        location: str | None,
        tote: str | None,
        sku: str,
        delta: int,
        kind: MovementKind,
        ref: str,
    ) -> Applied:
        applied = await self.store.inventory_adjust(
            location, tote, sku, delta, kind, ref, {}, self.levels, self.clock.utcnow()
        )
        self._apply(applied)
        return applied

    def _picked(self, applied: Applied, **where: str) -> PickOutcome:
        """Mirror a pick confirmation; count and log it when it was short."""
        self._apply(applied)
        assert applied.pick is not None
        if applied.pick.short and not applied.duplicate:
            self.metrics.short_picks.inc()
            log.warning(
                "short pick",
                extra={**where, "reason": applied.pick.reason},
            )
        return applied.pick

    # --- the mirror -------------------------------------------------------------------------

    def mirror(self, applied: Applied) -> None:
        """Take a write made elsewhere on the store into the in-memory view."""
        self._apply(applied)

    def _apply(self, applied: Applied) -> None:
        for sku, rows in applied.stock.items():
            if rows:
                self._stock[sku] = rows
            else:
                self._stock.pop(sku, None)
        self._rebuild(applied.stock)
        self._tote_at.update(applied.totes)
        for m in applied.movements:
            self.metrics.stock_movements.labels(m.kind.value).inc()
        for event in applied.events:
            if event.type == "low_stock" and event.sku is not None:
                self._low.add(event.sku)
                log.warning("low stock", extra={"sku": event.sku, **event.data})
            elif event.type == "low_stock_cleared" and event.sku is not None:
                self._low.discard(event.sku)
                log.info("low stock cleared", extra={"sku": event.sku, **event.data})
        self._gauges()

    def _rebuild(self, changed: Mapping[str, list[StockRow]]) -> None:
        for sku, rows in changed.items():
            per_location: dict[str, int] = {}
            per_tote: dict[str, int] = {}
            for row in rows:
                if row.tote is not None:
                    per_tote[row.tote] = row.available
                elif row.location in self.pickable:
                    per_location[row.location] = row.available
            for view, entries in ((self._view, per_location), (self._tote_view, per_tote)):
                if entries:
                    view[sku] = entries
                else:
                    view.pop(sku, None)

    def _gauges(self) -> None:
        on_hand = sum(r.on_hand for rows in self._stock.values() for r in rows)
        reserved = sum(r.reserved for rows in self._stock.values() for r in rows)
        self.metrics.stock_units.labels("on_hand").set(on_hand)
        self.metrics.stock_units.labels("reserved").set(reserved)
        self.metrics.stock_units.labels("available").set(on_hand - reserved)
        self.metrics.low_stock_skus.set(len(self._low))

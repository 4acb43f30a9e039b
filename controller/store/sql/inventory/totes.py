"""The inventory's reservations in AS/RS totes, run on the store's worker thread.

A tote reservation is a ``reservations`` row whose ``tote`` names the tote (migration 5 in
:mod:`controller.store.sqlite.schema`); its ``location`` stays '' because the tote moves, rack to
P&D to conveyor to station, and the reservation goes with it: what a tote row of ``stock`` has
reserved is summed by (tote, SKU), wherever the row is. Releasing them is
:func:`controller.store.sql.inventory.reservations.release`, which handles both kinds. Each
write function is one transaction, built from the blocks of
:mod:`controller.store.sql.inventory.write`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from controller.store.inventory import (
    InsufficientStock,
    InventoryError,
    ToteLine,
    ToteReservation,
    UnknownTote,
)
from controller.store.sql.db import Connection, transaction
from controller.store.sql.inventory.read import OPEN
from controller.store.sql.inventory.write import (
    Write,
    applied_before,
    mark_applied,
    open_rows,
    require_ref,
)
from controller.store.stock import Applied, MovementKind, PickOutcome


def _tote_stock(conn: Connection, tote: str, sku: str) -> tuple[str, int]:
    """Where ``tote`` is and how many units of ``sku`` it holds (UnknownTote: no such row)."""
    row = conn.execute(
        "SELECT location, on_hand FROM stock WHERE tote = ? AND sku = ?", (tote, sku)
    ).fetchone()
    if row is None:
        raise UnknownTote(f"tote {tote!r} holds no SKU {sku} in the inventory")
    return str(row["location"]), int(row["on_hand"])


def _reserved_in(conn: Connection, tote: str, sku: str) -> int:
    row = conn.execute(
        f"SELECT COALESCE(SUM({OPEN}), 0) FROM reservations"
        " WHERE state = 'reserved' AND tote = ? AND sku = ?",
        (tote, sku),
    ).fetchone()
    return int(row[0])


def tote_reservations(conn: Connection, prefix: str) -> list[ToteReservation]:
    """Open tote reservations of the orders (or other holders) whose id starts with prefix."""
    rows = conn.execute(
        f"SELECT order_id, trip_id, line_id, sku, tote, {OPEN} AS open FROM reservations"
        " WHERE state = 'reserved' AND tote != '' AND substr(order_id, 1, ?) = ? ORDER BY id",
        (len(prefix), prefix),
    )
    return [
        ToteReservation(r["order_id"], r["trip_id"], r["line_id"], r["sku"], r["tote"], r["open"])
        for r in rows
    ]


def totes(conn: Connection) -> dict[str, str]:
    return {r["tote"]: r["location"] for r in conn.execute("SELECT tote, location FROM totes")}


def reserve_totes(
    conn: Connection,
    order_id: str,
    ref_id: str,
    lines: Sequence[ToteLine],
    at: datetime,
) -> Applied:
    with transaction(conn):
        w = Write(conn, at)
        asked: dict[tuple[str, str], int] = {}
        for line in lines:
            if not line.tote:
                raise InventoryError(f"a tote reservation of SKU {line.sku} without a tote")
            if line.quantity <= 0:
                raise InventoryError(f"reservation of {line.quantity} units of SKU {line.sku}")
            key = (line.tote, line.sku)
            asked[key] = asked.get(key, 0) + line.quantity
        for (tote, sku), quantity in asked.items():
            location, on_hand = _tote_stock(conn, tote, sku)
            reserved = _reserved_in(conn, tote, sku)
            if quantity > on_hand - reserved:
                raise InsufficientStock(
                    f"SKU {sku} in tote {tote} at {location}: on hand {on_hand}, "
                    f"reserved {reserved}, cannot reserve {quantity} more"
                )
        for line in lines:
            w.skus.add(line.sku)
            conn.execute(
                "INSERT INTO reservations (order_id, trip_id, line_id, sku, location, tote,"
                " quantity, state, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, '', ?, ?, 'reserved', ?, ?)",
                (order_id, ref_id, line.line_id, line.sku, line.tote, line.quantity, w.ts, w.ts),
            )
        return w.applied()


def confirm_tote_pick(
    conn: Connection,
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
    require_ref(ref)
    if taken < 0:
        raise InventoryError(f"a pick of {taken} units")
    if put_to is not None and not put_to:
        raise InventoryError("a put needs a location")
    kind = MovementKind.TOTE_PICK_CONFIRMED
    with transaction(conn):
        w = Write(conn, at)
        w.skus.add(sku)
        seen = applied_before(conn, kind, ref)
        if seen is not None:
            if "order_id" not in seen:  # the same reference took units without an order
                raise InventoryError(f"{kind.value} {ref} was applied as a plain tote adjustment")
            return w.applied(duplicate=True, pick=PickOutcome(**seen, duplicate=True))
        location, _ = _tote_stock(conn, tote, sku)
        rows = open_rows(conn, order_id, None, line_id, sku=sku, tote=tote)
        expected = sum(r["open"] for r in rows)
        w.change(location, tote, sku, -taken, kind, ref, order_id, {"line_id": line_id})
        if put_to is not None:  # moved over to a pick location in the same transaction
            put = MovementKind.PUT_CONFIRMED
            w.change(put_to, "", sku, taken, put, ref, order_id, {"line_id": line_id, "tote": tote})
        left = taken
        for row in rows:
            take = min(left, row["open"])
            left -= take
            conn.execute(
                "UPDATE reservations SET picked = picked + ?, short = short + ?,"
                " state = 'consumed', updated_at = ? WHERE id = ?",
                (take, row["open"] - take, w.ts, row["id"]),
            )
        outcome = PickOutcome(order_id, line_id, sku, location, expected, taken, tote=tote)
        if outcome.short:
            w.event(
                "short_pick",
                sku,
                location,
                {
                    "order_id": order_id,
                    "line_id": line_id,
                    "tote": tote,
                    "action": ref,
                    "reserved": expected,
                    "picked": taken,
                    "short": outcome.short,
                },
            )
        w.check_levels(levels)
        mark_applied(
            w,
            kind,
            ref,
            {
                "order_id": order_id,
                "line_id": line_id,
                "sku": sku,
                "location": location,
                "tote": tote,
                "reserved": expected,
                "picked": taken,
            },
        )
        return w.applied(pick=outcome)

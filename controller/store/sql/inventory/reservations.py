"""The inventory's reservations of loose stock (``tote`` ''): reserve units at pick
locations for an order's trip, release them (all, some picks, or an order's tote reservations),
and release every open loose one after a restart.

Reserving checks on-hand less what is already reserved at the location; a reservation holds
``quantity - picked - short`` units (:data:`~controller.store.sql.inventory.read.OPEN`) until a
pick consumes it (:func:`controller.store.sql.inventory.ops.confirm_pick`). Reservations in
AS/RS totes are made and picked in :mod:`controller.store.sql.inventory.totes`; :func:`release`
handles both kinds. Each write function is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.store.inventory import InsufficientStock, InventoryError, PickLine
from controller.store.sql.db import Connection, Row, transaction
from controller.store.sql.inventory.read import OPEN, on_hand_at
from controller.store.sql.inventory.write import Write, open_rows
from controller.store.sql.ops import iso
from controller.store.stock import Applied


def _reserved(conn: Connection, location: str, sku: str) -> int:
    row = conn.execute(
        f"SELECT COALESCE(SUM({OPEN}), 0) FROM reservations"
        " WHERE state = 'reserved' AND tote = '' AND location = ? AND sku = ?",
        (location, sku),
    ).fetchone()
    return int(row[0])


def reserve(
    conn: Connection,
    order_id: str,
    trip_id: str,
    picks: Sequence[PickLine],
    at: datetime,
) -> Applied:
    with transaction(conn):
        w = Write(conn, at)
        asked: dict[tuple[str, str], int] = {}
        for pk in picks:
            if pk.quantity <= 0:
                raise InventoryError(f"reservation of {pk.quantity} units of SKU {pk.sku}")
            key = (pk.location, pk.sku)
            asked[key] = asked.get(key, 0) + pk.quantity
        for (location, sku), quantity in asked.items():
            on_hand = on_hand_at(conn, location, "", sku)
            reserved = _reserved(conn, location, sku)
            if quantity > on_hand - reserved:
                raise InsufficientStock(
                    f"SKU {sku} at {location}: on hand {on_hand}, reserved {reserved}, "
                    f"cannot reserve {quantity} more"
                )
        for pk in picks:
            w.skus.add(pk.sku)
            conn.execute(
                "INSERT INTO reservations (order_id, trip_id, line_id, sku, location, quantity,"
                " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'reserved', ?, ?)",
                (order_id, trip_id, pk.line_id, pk.sku, pk.location, pk.quantity, w.ts, w.ts),
            )
        return w.applied()


def _give_back(conn: Connection, row: Row, units: int, ts: str) -> None:
    """Release ``units`` of an open reservation row (all of it: state ``released``)."""
    if units >= row["open"]:
        conn.execute(
            "UPDATE reservations SET state = 'released', updated_at = ? WHERE id = ?",
            (ts, row["id"]),
        )
    else:
        conn.execute(
            "UPDATE reservations SET quantity = quantity - ?, updated_at = ? WHERE id = ?",
            (units, ts, row["id"]),
        )


def release(
    conn: Connection,
    order_id: str,
    trip_id: str | None,
    picks: Sequence[PickLine] | None,
    at: datetime,
    reason: str,
    tote: str | None = None,
) -> Applied:
    if picks is not None and tote is not None:
        raise ValueError("release either loose picks or a tote's reservations, not both")
    with transaction(conn):
        w = Write(conn, at)
        if picks is None:
            for row in open_rows(conn, order_id, trip_id, tote=tote):
                w.skus.add(row["sku"])
                _give_back(conn, row, row["open"], w.ts)
        else:
            for pk in picks:
                left = pk.quantity
                rows = open_rows(conn, order_id, trip_id, pk.line_id, pk.location, pk.sku, "")
                for row in rows:
                    if left <= 0:
                        break
                    units = min(left, row["open"])
                    w.skus.add(row["sku"])
                    _give_back(conn, row, units, w.ts)
                    left -= units
        return w.applied()


def release_open(conn: Connection, at: datetime, reason: str) -> int:
    """Release the open loose reservations; tote reservations stay with their AS/RS transports,
    which survive a restart."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE reservations SET state = 'released', updated_at = ?"
            " WHERE state = 'reserved' AND tote = ''",
            (iso(at),),
        )
        return cur.rowcount

"""The inventory's read queries: stock rows with what is reserved of them, the stock
ledger (``stock_movements``), the line-level ``inventory_events`` and the SKUs below their level.

Plain functions over one connection, run on the store's worker thread; none of them writes.
The writes read stock through :func:`on_hand_at` and :func:`snapshot` inside their own
transactions.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime
from typing import Any

from controller.store.sql.db import Connection, Row
from controller.store.stock import InventoryEvent, Movement, MovementKind, StockRow

MAX_PAGE = 1001  # the API asks one more than its page of 1000 to see if more follow
OPEN = "quantity - picked - short"  # units an open reservation still holds


def on_hand_at(conn: Connection, location: str, tote: str, sku: str) -> int:
    row = conn.execute(
        "SELECT on_hand FROM stock WHERE location = ? AND tote = ? AND sku = ?",
        (location, tote, sku),
    ).fetchone()
    return 0 if row is None else int(row[0])


def stock_rows(
    conn: Connection,
    skus: Collection[str] | None = None,
    location: str | None = None,
    tote: str | None = None,
) -> list[StockRow]:
    where: list[str] = []
    params: list[Any] = []
    if skus is not None:
        if not skus:
            return []
        where.append(f"s.sku IN ({', '.join('?' * len(skus))})")
        params.extend(skus)
    if location is not None:
        where.append("s.location = ?")
        params.append(location)
    if tote is not None:
        where.append("s.tote = ?")
        params.append(tote)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        "SELECT s.location, s.tote, s.sku, s.on_hand, s.updated_at,"
        # a tote's reservations follow the tote wherever it is; loose ones are per location
        f" (SELECT COALESCE(SUM({OPEN}), 0) FROM reservations r"
        "   WHERE r.state = 'reserved' AND r.sku = s.sku AND r.tote = s.tote"
        "   AND (s.tote != '' OR r.location = s.location)) AS reserved"
        f" FROM stock s {clause} ORDER BY s.sku, s.location, s.tote",
        params,
    ).fetchall()
    return [
        StockRow(
            location=r["location"],
            tote=r["tote"] or None,
            sku=r["sku"],
            on_hand=r["on_hand"],
            reserved=r["reserved"],
            updated_at=datetime.fromisoformat(r["updated_at"]),
        )
        for r in rows
    ]


def snapshot(conn: Connection, skus: Collection[str]) -> dict[str, list[StockRow]]:
    out: dict[str, list[StockRow]] = {sku: [] for sku in skus}
    for row in stock_rows(conn, skus=sorted(set(skus))):
        out[row.sku].append(row)
    return out


def _movement(row: Row) -> Movement:
    return Movement(
        seq=row["seq"],
        at=datetime.fromisoformat(row["at"]),
        kind=MovementKind(row["kind"]),
        location=row["location"],
        tote=row["tote"] or None,
        sku=row["sku"],
        delta=row["delta"],
        on_hand=row["on_hand"],
        ref=row["ref"],
        order_id=row["order_id"],
        data=json.loads(row["data"]),
    )


def _event(row: Row) -> InventoryEvent:
    return InventoryEvent(
        seq=row["seq"],
        at=datetime.fromisoformat(row["at"]),
        type=row["type"],
        sku=row["sku"],
        location=row["location"],
        data=json.loads(row["data"]),
    )


def movements(
    conn: Connection, sku: str | None, location: str | None, after: int, limit: int
) -> list[Movement]:
    where = ["seq > ?"]
    params: list[Any] = [after]
    if sku is not None:
        where.append("sku = ?")
        params.append(sku)
    if location is not None:
        where.append("location = ?")
        params.append(location)
    params.append(limit)
    rows = conn.execute(
        f"SELECT * FROM stock_movements WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?", params
    ).fetchall()
    return [_movement(r) for r in rows]


def events(conn: Connection, after: int, limit: int) -> list[InventoryEvent]:
    rows = conn.execute(
        "SELECT * FROM inventory_events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    return [_event(r) for r in rows]


def low_skus(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT l.sku, COALESCE((SELECT SUM(on_hand) FROM stock s WHERE s.sku = l.sku), 0)"
        " FROM stock_low l ORDER BY l.sku"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}

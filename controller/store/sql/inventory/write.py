"""The building blocks every inventory write is made of: stock changes, reservations,
tote picks and reject-tote restocks alike.

:class:`Write` gathers what one transaction did: each stock change with its ledger row
(``stock_movements``), the ``inventory_events`` it raised and the SKUs it touched, checked against
their low-stock levels and returned as :class:`~controller.store.stock.Applied`.
:func:`applied_before` and :func:`mark_applied` make a confirmed event apply once
(``stock_applied``, by kind and reference; :func:`require_ref` refuses a change without one);
:func:`open_rows` lists an order's open reservations. None of them opens a transaction: the
caller holds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from controller.store.inventory import InventoryError, NegativeStock
from controller.store.sql.db import Connection, Row
from controller.store.sql.inventory.read import OPEN, on_hand_at, snapshot
from controller.store.sql.ops import iso
from controller.store.stock import Applied, InventoryEvent, Movement, MovementKind


def json_data(data: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(data or {}), sort_keys=True, separators=(",", ":"))


class Write:
    """What one transaction did, gathered as it goes."""

    def __init__(self, conn: Connection, at: datetime) -> None:
        self.conn = conn
        self.at = at
        self.ts = iso(at)
        self.movements: list[Movement] = []
        self.events: list[InventoryEvent] = []
        self.skus: set[str] = set()

    def change(
        self,
        location: str,
        tote: str,
        sku: str,
        delta: int,
        kind: MovementKind,
        ref: str,
        order_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        keep_empty: bool = True,
    ) -> int:
        """Add ``delta`` to on-hand with its ledger row; returns the new on-hand."""
        self.skus.add(sku)
        before = on_hand_at(self.conn, location, tote, sku)
        after = before + delta
        if after < 0:
            where = f"tote {tote} at {location}" if tote else location
            raise NegativeStock(
                f"SKU {sku} at {where}: on hand {before}, cannot take {-delta} ({kind.value} {ref})"
            )
        if delta == 0:
            return before
        if after == 0 and not keep_empty:
            self.conn.execute(
                "DELETE FROM stock WHERE location = ? AND tote = ? AND sku = ?",
                (location, tote, sku),
            )
        else:
            self.conn.execute(
                "INSERT INTO stock (location, tote, sku, on_hand, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (location, tote, sku)"
                " DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at",
                (location, tote, sku, after, self.ts),
            )
        cur = self.conn.execute(
            "INSERT INTO stock_movements"
            " (at, kind, location, tote, sku, delta, on_hand, ref, order_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
            (
                self.ts,
                kind.value,
                location,
                tote,
                sku,
                delta,
                after,
                ref,
                order_id,
                json_data(data),
            ),
        )
        self.movements.append(
            Movement(
                int(cur.fetchone()[0]),
                datetime.fromisoformat(self.ts),
                kind,
                location,
                tote or None,
                sku,
                delta,
                after,
                ref,
                order_id,
                dict(data or {}),
            )
        )
        return after

    def event(
        self, type_: str, sku: str | None, location: str | None, data: Mapping[str, Any]
    ) -> None:
        cur = self.conn.execute(
            "INSERT INTO inventory_events (at, type, sku, location, data) VALUES (?, ?, ?, ?, ?)"
            " RETURNING seq",
            (self.ts, type_, sku, location, json_data(data)),
        )
        seq = int(cur.fetchone()[0])
        at = datetime.fromisoformat(self.ts)
        self.events.append(InventoryEvent(seq, at, type_, sku, location, dict(data)))

    def check_levels(self, levels: Mapping[str, int]) -> None:
        """One ``low_stock`` event when a SKU's total falls below its level, one
        ``low_stock_cleared`` when it is back at or above."""
        for sku in sorted(self.skus):
            level = levels.get(sku, 0)
            total = int(
                self.conn.execute(
                    "SELECT COALESCE(SUM(on_hand), 0) FROM stock WHERE sku = ?", (sku,)
                ).fetchone()[0]
            )
            was_low = (
                self.conn.execute("SELECT 1 FROM stock_low WHERE sku = ?", (sku,)).fetchone()
                is not None
            )
            is_low = total < level
            if is_low and not was_low:
                self.conn.execute(
                    "INSERT INTO stock_low (sku, since) VALUES (?, ?)", (sku, self.ts)
                )
                self.event("low_stock", sku, None, {"on_hand": total, "low_stock": level})
            elif was_low and not is_low:
                self.conn.execute("DELETE FROM stock_low WHERE sku = ?", (sku,))
                self.event("low_stock_cleared", sku, None, {"on_hand": total, "low_stock": level})

    def applied(self, **extra: Any) -> Applied:
        return Applied(
            movements=self.movements,
            events=self.events,
            stock=snapshot(self.conn, self.skus),
            **extra,
        )


def applied_before(conn: Connection, kind: MovementKind, ref: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT result FROM stock_applied WHERE kind = ? AND ref = ?", (kind.value, ref)
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def mark_applied(w: Write, kind: MovementKind, ref: str, result: Mapping[str, Any]) -> None:
    w.conn.execute(
        "INSERT INTO stock_applied (kind, ref, at, result) VALUES (?, ?, ?, ?)",
        (kind.value, ref, w.ts, json_data(result)),
    )


def require_ref(ref: str) -> None:
    if not ref:
        raise InventoryError("a stock change needs the reference of the event behind it")


def open_rows(
    conn: Connection,
    order_id: str,
    trip_id: str | None,
    line_id: str | None = None,
    location: str | None = None,
    sku: str | None = None,
    tote: str | None = None,
) -> list[Row]:
    """The order's open reservations, oldest first, narrowed by each column given (``tote``
    '': loose stock only)."""
    where = ["state = 'reserved'", "order_id = ?"]
    params: list[Any] = [order_id]
    for column, value in (
        ("trip_id", trip_id),
        ("line_id", line_id),
        ("location", location),
        ("sku", sku),
        ("tote", tote),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return conn.execute(
        f"SELECT *, {OPEN} AS open FROM reservations WHERE {' AND '.join(where)} ORDER BY id",
        params,
    ).fetchall()

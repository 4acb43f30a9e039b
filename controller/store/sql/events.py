"""The store's event feed: history events of all orders in ``seq`` order.

Plain functions over one connection, run on the store's worker thread like
:mod:`controller.store.sql.ops`. ``seq`` is an ``AUTOINCREMENT`` key, so it only grows and is
never reused, and events are committed in the same transaction as the order change they describe:
a reader that resumes after the last ``seq`` it saw misses nothing and sees nothing twice.
"""

from __future__ import annotations

import json
from datetime import datetime

from controller.orders.model import OrderStatus
from controller.store.base import StoredEvent, StoreError
from controller.store.sql.db import Connection, Row

MAX_EVENT_PAGE = 1000


def stored_event(row: Row) -> StoredEvent:
    try:
        return StoredEvent(
            seq=row["seq"],
            order_id=row["order_id"],
            at=datetime.fromisoformat(row["at"]),
            type=row["type"],
            status=OrderStatus(row["status"]),
            data=json.loads(row["data"]),
        )
    except ValueError as exc:
        raise StoreError(f"history event {row['seq']} cannot be read: {exc}") from exc


def events_after(
    conn: Connection, after_seq: int, limit: int, order_id: str | None
) -> list[StoredEvent]:
    if order_id is None:
        rows = conn.execute(
            "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM events WHERE order_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (order_id, after_seq, limit),
        ).fetchall()
    return [stored_event(r) for r in rows]


def last_event_seq(conn: Connection) -> int:
    row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
    return int(row[0])

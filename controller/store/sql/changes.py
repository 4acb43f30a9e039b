"""Changes the WMS asks for after creating an order: new priority or due time, and cancel.

Like :mod:`controller.store.sql.ops`, these are plain functions over the store's one
connection, run on its worker thread. That thread runs one store call at a time, so the status
check and the write of each function see the same order: nothing else changes it in between.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from controller.orders.model import OrderRecord, OrderStatus
from controller.store.base import UNCHANGED, UnknownOrder, WrongStatus
from controller.store.sql.db import Connection, transaction
from controller.store.sql.ops import get_order, iso, record

UPDATED = "updated"
CANCEL_REQUESTED = "cancel_requested"


def _existing(conn: Connection, order_id: str) -> OrderRecord:
    found = get_order(conn, order_id)
    if found is None:
        raise UnknownOrder(f"no order with id {order_id!r}")
    return found


def update_order(
    conn: Connection,
    order_id: str,
    at: datetime,
    priority: int | None,
    due_at: datetime | None,
) -> OrderRecord:
    """Apply a new priority and/or due time to an ``accepted`` order.

    Values equal to the current ones are no change; when nothing changes, nothing is written and
    the order is returned as it is.
    """
    if priority is None and due_at is None:
        raise ValueError("update_order needs a priority or a due_at")
    ts = iso(at)
    with transaction(conn):
        before = _existing(conn, order_id)
        if before.status is not OrderStatus.ACCEPTED:
            raise WrongStatus(
                order_id,
                before.status,
                f"order {order_id!r} is {before.status.value}; priority and due time can only "
                "change while it is accepted",
            )
        changes: dict[str, dict[str, Any]] = {}
        sets: list[str] = []
        params: list[Any] = []
        if priority is not None and priority != before.priority:
            changes["priority"] = {"old": before.priority, "new": priority}
            sets.append("priority = ?")
            params.append(priority)
        if due_at is not None and due_at != before.due_at:
            changes["due_at"] = {"old": iso(before.due_at), "new": iso(due_at)}
            sets.append("due_at = ?")
            params.append(iso(due_at))
        if not changes:
            return before
        conn.execute(
            f"UPDATE orders SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
            [*params, ts, order_id],
        )
        conn.execute(
            "INSERT INTO events (order_id, at, type, status, data) VALUES (?, ?, ?, ?, ?)",
            (
                order_id,
                ts,
                UPDATED,
                before.status.value,
                json.dumps(changes, sort_keys=True, separators=(",", ":")),
            ),
        )
        return _existing(conn, order_id)


def request_cancel(
    conn: Connection, order_id: str, at: datetime, reason: str | None
) -> tuple[bool, OrderRecord]:
    """Record that the WMS asked to cancel the order, once; True when this call recorded it."""
    current = _existing(conn, order_id)
    if current.status.terminal:
        raise WrongStatus(
            order_id,
            current.status,
            f"order {order_id!r} is {current.status.value}, a terminal status; it cannot be "
            "cancelled",
        )
    asked = conn.execute(
        "SELECT 1 FROM events WHERE order_id = ? AND type = ? LIMIT 1",
        (order_id, CANCEL_REQUESTED),
    ).fetchone()
    if asked is not None:
        return False, current
    data = {"reason": reason} if reason is not None else {}
    record(conn, order_id, CANCEL_REQUESTED, at, None, UNCHANGED, UNCHANGED, None, data)
    return True, _existing(conn, order_id)

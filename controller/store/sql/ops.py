"""The order store's operations: plain functions over one connection.

Every function here runs on the store's worker thread (see :mod:`controller.store.sql.worker`)
and never touches the event loop. Writes run in one transaction each, so a
write is either wholly on disk or not at all.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from controller.orders.model import HistoryEvent, OrderIn, OrderRecord, OrderStatus, OrderType
from controller.orders.waiting import Other, Waiting, from_data, to_data
from controller.store.base import (
    UNCHANGED,
    CreateOutcome,
    InvalidCursor,
    Page,
    StoreError,
    Unchanged,
    UnknownOrder,
)
from controller.store.sql.db import Connection, Row, transaction
from controller.store.sql.events import stored_event

_CURSOR_PREFIX = "o1:"


def iso(at: datetime) -> str:
    """A timestamp as fixed-width UTC ISO 8601 (sorts as text in time order)."""
    if at.tzinfo is None:
        raise ValueError(f"timestamp {at!r} has no time zone; pass an aware datetime")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor("not a cursor issued by this store") from None
    if not text.startswith(_CURSOR_PREFIX) or not text[len(_CURSOR_PREFIX) :].isdigit():
        raise InvalidCursor("not a cursor issued by this store")
    return int(text[len(_CURSOR_PREFIX) :])


def _order(row: Row) -> OrderRecord:
    try:
        return OrderRecord(
            id=row["id"],
            type=OrderType(row["type"]),
            status=OrderStatus(row["status"]),
            priority=row["priority"],
            due_at=datetime.fromisoformat(row["due_at"]),
            destination=row["destination"],
            body=OrderIn.model_validate_json(row["body"]),
            fingerprint=row["fingerprint"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            step=row["step"],
            waiting=_waiting(row),
            picked=json.loads(row["picked"]),
        )
    except ValueError as exc:  # includes pydantic's ValidationError and JSON errors
        raise StoreError(f"order {row['id']!r} cannot be read back: {exc}") from exc


def _waiting(row: Row) -> Waiting | None:
    """The order's waiting reason: the typed value, else (a row written before it was stored,
    or of a kind this release does not know) the text, as a reason of kind ``other``."""
    text: str | None = row["waiting_reason"]
    if row["waiting"] is not None:
        try:
            return from_data(json.loads(row["waiting"]))
        except ValueError:
            pass
    return None if text is None else Other(text)


def _waiting_columns(waiting: Waiting | None) -> tuple[str | None, str | None]:
    """The ``waiting_reason`` text and the ``waiting`` JSON of a reason."""
    if waiting is None:
        return None, None
    return waiting.render(), json.dumps(to_data(waiting), separators=(",", ":"))


def _event(row: Row) -> HistoryEvent:
    e = stored_event(row)
    return HistoryEvent(seq=e.seq, at=e.at, type=e.type, status=e.status, data=e.data)


def create_order(
    conn: Connection, order_id: str, body: OrderIn, at: datetime
) -> tuple[CreateOutcome, OrderRecord]:
    with transaction(conn):
        return insert_order(conn, order_id, body, at)


def insert_order(
    conn: Connection, order_id: str, body: OrderIn, at: datetime
) -> tuple[CreateOutcome, OrderRecord]:
    """:func:`create_order`'s statements, inside a transaction the caller holds: the order row
    (its ``seq`` the next after the newest, drawn under the write lock) and its ``accepted``
    event, or, when the id is taken, the order that holds it. Two statements for a new order,
    so the create costs two round trips to a database server rather than five."""
    fingerprint = body.fingerprint()
    ts = iso(at)
    row = conn.execute(
        "INSERT INTO orders (id, seq, type, status, priority, due_at, destination, body,"
        " fingerprint, created_at, updated_at, picked)"
        " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM orders),"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}')"
        " ON CONFLICT (id) DO NOTHING RETURNING *",
        (
            order_id,
            body.type.value,
            OrderStatus.ACCEPTED.value,
            body.priority,
            iso(body.due_at),
            body.destination,
            body.model_dump_json(),
            fingerprint,
            ts,
            ts,
        ),
    ).fetchone()
    if row is None:  # the id is taken: the same order again, or another one
        row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        same = row["fingerprint"] == fingerprint
        return (CreateOutcome.EXISTS if same else CreateOutcome.CONFLICT), _order(row)
    conn.execute(
        "INSERT INTO events (order_id, at, type, status, data) VALUES (?, ?, ?, ?, '{}')",
        (order_id, ts, "accepted", OrderStatus.ACCEPTED.value),
    )
    return CreateOutcome.CREATED, _order(row)


def get_order(conn: Connection, order_id: str) -> OrderRecord | None:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    return None if row is None else _order(row)


def history(conn: Connection, order_id: str) -> list[HistoryEvent]:
    rows = conn.execute(
        "SELECT * FROM events WHERE order_id = ? ORDER BY seq", (order_id,)
    ).fetchall()
    return [_event(r) for r in rows]


def histories(conn: Connection, order_ids: list[str]) -> dict[str, list[HistoryEvent]]:
    found: dict[str, list[HistoryEvent]] = {o: [] for o in order_ids}
    for start in range(0, len(order_ids), 500):  # within every engine's limit on bound parameters
        chunk = order_ids[start : start + 500]
        rows = conn.execute(
            f"SELECT * FROM events WHERE order_id IN ({','.join('?' * len(chunk))}) ORDER BY seq",
            chunk,
        )
        for r in rows:
            found[r["order_id"]].append(_event(r))
    return found


# Time bounds of list_orders: each name maps to a fixed condition (after inclusive, before not).
TIME_BOUNDS = {
    "created_after": "created_at >= ?",
    "created_before": "created_at < ?",
    "due_after": "due_at >= ?",
    "due_before": "due_at < ?",
}


def list_orders(
    conn: Connection,
    status: OrderStatus | None,
    type_: OrderType | None,
    limit: int,
    after_seq: int,
    bounds: Mapping[str, datetime | None] | None = None,
) -> Page:
    where = ["seq > ?"]
    params: list[Any] = [after_seq]
    for name, bound in (bounds or {}).items():
        if bound is not None:
            where.append(TIME_BOUNDS[name])
            params.append(iso(bound))
    if status is not None:
        where.append("status = ?")
        params.append(status.value)
    if type_ is not None:
        where.append("type = ?")
        params.append(type_.value)
    params.append(limit + 1)
    rows = conn.execute(
        f"SELECT * FROM orders WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?", params
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["seq"]) if more and rows else None
    return Page(orders=[_order(r) for r in rows], next_cursor=next_cursor)


def record(
    conn: Connection,
    order_id: str,
    event_type: str,
    at: datetime,
    status: OrderStatus | None,
    step: str | Unchanged | None,
    waiting: Waiting | Unchanged | None,
    picked: dict[str, int] | None,
    data: dict[str, Any] | None,
) -> HistoryEvent:
    ts = iso(at)
    data_json = json.dumps(data or {}, separators=(",", ":"))
    with transaction(conn):
        row = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            raise UnknownOrder(f"no order with id {order_id!r}")
        current = OrderStatus(row["status"])
        new = status if status is not None else current
        if current.terminal and new is not current:
            raise StoreError(
                f"order {order_id!r} is {current.value}, a terminal status; "
                f"it cannot become {new.value}"
            )
        sets = ["status = ?", "updated_at = ?"]
        params: list[Any] = [new.value, ts]
        if step is not UNCHANGED:
            sets.append("step = ?")
            params.append(step)
        if waiting is not UNCHANGED:
            sets.append("waiting_reason = ?")
            sets.append("waiting = ?")
            params.extend(_waiting_columns(waiting))
        if picked is not None:
            sets.append("picked = ?")
            params.append(json.dumps(picked, sort_keys=True, separators=(",", ":")))
        params.append(order_id)
        conn.execute(f"UPDATE orders SET {', '.join(sets)} WHERE id = ?", params)
        seq = int(
            conn.execute(
                "INSERT INTO events (order_id, at, type, status, data) VALUES (?, ?, ?, ?, ?)"
                " RETURNING seq",
                (order_id, ts, event_type, new.value, data_json),
            ).fetchone()[0]
        )
    return HistoryEvent(
        seq=seq, at=datetime.fromisoformat(ts), type=event_type, status=new, data=dict(data or {})
    )


def active_orders(conn: Connection) -> list[OrderRecord]:
    terminal = [s.value for s in OrderStatus if s.terminal]
    marks = ", ".join("?" * len(terminal))
    rows = conn.execute(
        f"SELECT * FROM orders WHERE status NOT IN ({marks}) ORDER BY seq", terminal
    ).fetchall()
    return [_order(r) for r in rows]


def count_by_status(conn: Connection) -> dict[OrderStatus, int]:
    counts = dict.fromkeys(OrderStatus, 0)
    for status, n in conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status"):
        counts[OrderStatus(status)] = n
    return counts

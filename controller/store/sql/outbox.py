"""The store's webhook outbox: fan-out, due rows and attempt results.

Plain functions over one connection, run on the store's worker thread. The schema (tables
``outbox`` and ``feed_cursors``) is migration 2 in :mod:`controller.store.sqlite.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller.store.base import StoreError
from controller.store.outbox import (
    WEBHOOK_CURSOR,
    Delivery,
    DeliveryState,
    FanOutResult,
    FanOutTarget,
    ReceiverKind,
)
from controller.store.sql.db import Connection, transaction
from controller.store.sql.events import stored_event
from controller.store.sql.ops import iso

CURSOR_LAG = 500  # events the durable cursor may trail when none of them had a receiver


def feed_cursor(conn: Connection, name: str) -> int:
    row = conn.execute("SELECT seq FROM feed_cursors WHERE name = ?", (name,)).fetchone()
    return 0 if row is None else int(row[0])


def fan_out(
    conn: Connection,
    targets: Sequence[FanOutTarget],
    callbacks: bool,
    at: datetime,
    limit: int,
    after: int,
) -> FanOutResult:
    """Rows for the events after ``max(after, durable cursor)``, then the cursor moved on.

    Re-running fan-out over events already handled inserts nothing (rows are unique per event
    and receiver), so when no event matched a receiver the durable cursor is written only every
    :data:`CURSOR_LAG` events: a line without webhooks pays no extra commit per event.
    """
    persisted = feed_cursor(conn, WEBHOOK_CURSOR)
    start = max(after, persisted)
    rows = conn.execute(
        f"SELECT e.seq, e.type, {conn.dialect.json_text('o.body', 'callback_url')} AS callback_url"
        " FROM events e JOIN orders o ON o.id = e.order_id"
        " WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
        (start, limit),
    ).fetchall()
    if not rows:
        return FanOutResult(events=0, deliveries=0, cursor=start)
    planned: list[tuple[int, ReceiverKind, str]] = []
    for row in rows:
        planned += [
            (row["seq"], ReceiverKind.TARGET, t.url) for t in targets if t.wants(row["type"])
        ]
        if callbacks and row["callback_url"]:
            planned.append((row["seq"], ReceiverKind.CALLBACK, str(row["callback_url"])))
    cursor = int(rows[-1]["seq"])
    if not planned and cursor - persisted < CURSOR_LAG:
        return FanOutResult(events=len(rows), deliveries=0, cursor=cursor)
    ts = iso(at)
    inserted = 0
    with transaction(conn):
        for seq, kind, url in planned:
            cur = conn.execute(
                "INSERT INTO outbox (event_seq, kind, url, next_attempt_at, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (seq, kind.value, url, ts, ts),
            )
            inserted += cur.rowcount
        conn.execute(
            "INSERT INTO feed_cursors (name, seq) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET seq = CASE WHEN excluded.seq > feed_cursors.seq"
            " THEN excluded.seq ELSE feed_cursors.seq END",
            (WEBHOOK_CURSOR, cursor),
        )
    return FanOutResult(events=len(rows), deliveries=inserted, cursor=cursor)


def due_deliveries(
    conn: Connection, now: datetime, per_receiver: int, limit: int
) -> list[Delivery]:
    rows = conn.execute(
        "SELECT d.id AS delivery_id, d.kind, d.url, d.attempts, e.*"
        " FROM (SELECT *, ROW_NUMBER() OVER"
        "   (PARTITION BY url ORDER BY next_attempt_at, id) AS rank"
        "   FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?) AS d"
        " JOIN events e ON e.seq = d.event_seq"
        " WHERE d.rank <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
        (iso(now), per_receiver, limit),
    ).fetchall()
    try:
        return [
            Delivery(
                id=r["delivery_id"],
                kind=ReceiverKind(r["kind"]),
                url=r["url"],
                attempts=r["attempts"],
                event=stored_event(r),
            )
            for r in rows
        ]
    except ValueError as exc:
        raise StoreError(f"outbox row cannot be read: {exc}") from exc


def next_delivery_due(conn: Connection, after: datetime) -> datetime | None:
    row = conn.execute(
        "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending' AND next_attempt_at > ?",
        (iso(after),),
    ).fetchone()
    return None if row[0] is None else datetime.fromisoformat(row[0])


def finish_attempt(
    conn: Connection,
    delivery_id: int,
    state: DeliveryState,
    attempts: int,
    at: datetime,
    next_attempt_at: datetime | None,
    error: str | None,
) -> None:
    if state is DeliveryState.PENDING and next_attempt_at is None:
        raise ValueError("a pending delivery needs next_attempt_at")
    ts = iso(at)
    with transaction(conn):
        conn.execute(
            "UPDATE outbox SET state = ?, attempts = ?, last_error = ?,"
            " next_attempt_at = COALESCE(?, next_attempt_at), finished_at = ?"
            " WHERE id = ?",
            (
                state.value,
                attempts,
                error,
                iso(next_attempt_at) if next_attempt_at is not None else None,
                None if state is DeliveryState.PENDING else ts,
                delivery_id,
            ),
        )


def pending_deliveries(conn: Connection) -> int:
    row = conn.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()
    return int(row[0])

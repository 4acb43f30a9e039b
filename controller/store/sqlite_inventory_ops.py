"""The SQLite inventory: plain functions over one connection, run on the store's worker thread.

Tables (migration 3 in :mod:`controller.store.sqlite_schema`): ``stock`` (on-hand per location,
tote and SKU; ``tote`` '' is loose stock; ``CHECK (on_hand >= 0)``), ``totes`` (where each tote
is), ``reservations`` (``tote`` '' for loose stock; reservations of units in AS/RS totes, from
migration 5, are made and picked in :mod:`controller.store.sqlite_tote_ops`),
``stock_movements`` (the ledger), ``stock_applied`` (confirmed events already applied, by kind
and reference), ``inventory_events`` (line-level events: low stock, short picks, AS/RS
differences), ``stock_low`` (SKUs below their level) and ``inventory_meta``.
Each write function is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from controller.store.inventory import (
    Applied,
    Difference,
    InitialStock,
    InsufficientStock,
    InventoryError,
    InventoryEvent,
    Movement,
    MovementKind,
    NegativeStock,
    PickLine,
    PickOutcome,
    StockRow,
    UnknownTote,
)
from controller.store.sqlite_ops import iso, transaction

MAX_PAGE = 1001  # the API asks one more than its page of 1000 to see if more follow
OPEN = "quantity - picked - short"  # units an open reservation still holds


def _json(data: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(data or {}), sort_keys=True, separators=(",", ":"))


# --- reading ------------------------------------------------------------------------------------


def _reserved(conn: sqlite3.Connection, location: str, sku: str) -> int:
    row = conn.execute(
        f"SELECT COALESCE(SUM({OPEN}), 0) FROM reservations"
        " WHERE state = 'reserved' AND tote = '' AND location = ? AND sku = ?",
        (location, sku),
    ).fetchone()
    return int(row[0])


def _on_hand(conn: sqlite3.Connection, location: str, tote: str, sku: str) -> int:
    row = conn.execute(
        "SELECT on_hand FROM stock WHERE location = ? AND tote = ? AND sku = ?",
        (location, tote, sku),
    ).fetchone()
    return 0 if row is None else int(row[0])


def stock_rows(
    conn: sqlite3.Connection,
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


def _snapshot(conn: sqlite3.Connection, skus: Collection[str]) -> dict[str, list[StockRow]]:
    out: dict[str, list[StockRow]] = {sku: [] for sku in skus}
    for row in stock_rows(conn, skus=sorted(set(skus))):
        out[row.sku].append(row)
    return out


def _movement(row: sqlite3.Row) -> Movement:
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


def _event(row: sqlite3.Row) -> InventoryEvent:
    return InventoryEvent(
        seq=row["seq"],
        at=datetime.fromisoformat(row["at"]),
        type=row["type"],
        sku=row["sku"],
        location=row["location"],
        data=json.loads(row["data"]),
    )


def movements(
    conn: sqlite3.Connection, sku: str | None, location: str | None, after: int, limit: int
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


def events(conn: sqlite3.Connection, after: int, limit: int) -> list[InventoryEvent]:
    rows = conn.execute(
        "SELECT * FROM inventory_events WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    return [_event(r) for r in rows]


def low_skus(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT l.sku, COALESCE((SELECT SUM(on_hand) FROM stock s WHERE s.sku = l.sku), 0)"
        " FROM stock_low l ORDER BY l.sku"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


# --- writing: the building blocks ---------------------------------------------------------------


class Write:
    """What one transaction did, gathered as it goes."""

    def __init__(self, conn: sqlite3.Connection, at: datetime) -> None:
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
        before = _on_hand(self.conn, location, tote, sku)
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
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.ts, kind.value, location, tote, sku, delta, after, ref, order_id, _json(data)),
        )
        assert cur.lastrowid is not None
        self.movements.append(
            Movement(
                cur.lastrowid,
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
            "INSERT INTO inventory_events (at, type, sku, location, data) VALUES (?, ?, ?, ?, ?)",
            (self.ts, type_, sku, location, _json(data)),
        )
        assert cur.lastrowid is not None
        self.events.append(
            InventoryEvent(
                cur.lastrowid, datetime.fromisoformat(self.ts), type_, sku, location, dict(data)
            )
        )

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
            stock=_snapshot(self.conn, self.skus),
            **extra,
        )


def applied_before(conn: sqlite3.Connection, kind: MovementKind, ref: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT result FROM stock_applied WHERE kind = ? AND ref = ?", (kind.value, ref)
    ).fetchone()
    return None if row is None else dict(json.loads(row[0]))


def mark_applied(w: Write, kind: MovementKind, ref: str, result: Mapping[str, Any]) -> None:
    w.conn.execute(
        "INSERT INTO stock_applied (kind, ref, at, result) VALUES (?, ?, ?, ?)",
        (kind.value, ref, w.ts, _json(result)),
    )


def require_ref(ref: str) -> None:
    if not ref:
        raise InventoryError("a stock change needs the reference of the event behind it")


# --- writing: the operations --------------------------------------------------------------------


def initial_load(
    conn: sqlite3.Connection,
    stock: Sequence[InitialStock],
    levels: Mapping[str, int],
    at: datetime,
) -> bool:
    with transaction(conn):
        done = conn.execute("SELECT 1 FROM inventory_meta WHERE key = 'initial_load'").fetchone()
        if done is not None or conn.execute("SELECT 1 FROM stock LIMIT 1").fetchone():
            return False
        w = Write(conn, at)
        for entry in stock:
            tote = entry.tote or ""
            if tote:
                conn.execute(
                    "INSERT INTO totes (tote, location, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (tote) DO UPDATE SET location = excluded.location",
                    (tote, entry.location, w.ts),
                )
            if entry.quantity == 0:
                w.skus.add(entry.sku)
                conn.execute(
                    "INSERT OR IGNORE INTO stock (location, tote, sku, on_hand, updated_at)"
                    " VALUES (?, ?, ?, 0, ?)",
                    (entry.location, tote, entry.sku, w.ts),
                )
                continue
            w.change(
                entry.location, tote, entry.sku, entry.quantity, MovementKind.INITIAL_LOAD, "config"
            )
        w.skus.update(levels)
        w.check_levels(levels)
        conn.execute("INSERT INTO inventory_meta (key, value) VALUES ('initial_load', ?)", (w.ts,))
        return True


def reserve(
    conn: sqlite3.Connection,
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
            on_hand = _on_hand(conn, location, "", sku)
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


def open_rows(
    conn: sqlite3.Connection,
    order_id: str,
    trip_id: str | None,
    line_id: str | None = None,
    location: str | None = None,
    sku: str | None = None,
    tote: str | None = None,
) -> list[sqlite3.Row]:
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


def _give_back(conn: sqlite3.Connection, row: sqlite3.Row, units: int, ts: str) -> None:
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
    conn: sqlite3.Connection,
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


def release_open(conn: sqlite3.Connection, at: datetime, reason: str) -> int:
    """Release the open loose reservations; tote reservations stay with their AS/RS transports,
    which survive a restart."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE reservations SET state = 'released', updated_at = ?"
            " WHERE state = 'reserved' AND tote = ''",
            (iso(at),),
        )
        return cur.rowcount


def confirm_pick(
    conn: sqlite3.Connection,
    order_id: str,
    trip_id: str,
    pick: PickLine,
    picked: int,
    ref: str,
    levels: Mapping[str, int],
    at: datetime,
) -> Applied:
    require_ref(ref)
    if picked < 0:
        raise InventoryError(f"a pick of {picked} units")
    kind = MovementKind.ROBOT_PICK_CONFIRMED
    with transaction(conn):
        w = Write(conn, at)
        seen = applied_before(conn, kind, ref)
        if seen is not None:
            outcome = PickOutcome(**seen, duplicate=True)
            w.skus.add(pick.sku)
            return w.applied(duplicate=True, pick=outcome)
        rows = open_rows(conn, order_id, trip_id, pick.line_id, pick.location, pick.sku, "")
        expected = sum(r["open"] for r in rows) if rows else pick.quantity
        data = {"trip": trip_id, "line_id": pick.line_id, "action": ref}
        w.change(pick.location, "", pick.sku, -picked, kind, ref, order_id, data)
        left = picked
        for row in rows:
            take = min(left, row["open"])
            left -= take
            short = row["open"] - take
            conn.execute(
                "UPDATE reservations SET picked = picked + ?, short = short + ?,"
                " state = 'consumed', updated_at = ? WHERE id = ?",
                (take, short, w.ts, row["id"]),
            )
        outcome = PickOutcome(order_id, pick.line_id, pick.sku, pick.location, expected, picked)
        if outcome.short:
            w.event(
                "short_pick",
                pick.sku,
                pick.location,
                {
                    "order_id": order_id,
                    "line_id": pick.line_id,
                    "trip": trip_id,
                    "action": ref,
                    "reserved": expected,
                    "picked": picked,
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
                "line_id": pick.line_id,
                "sku": pick.sku,
                "location": pick.location,
                "reserved": expected,
                "picked": picked,
            },
        )
        return w.applied(pick=outcome)


def count(
    conn: sqlite3.Connection,
    location: str,
    tote: str | None,
    sku: str,
    counted: int,
    ref: str,
    data: Mapping[str, Any],
    levels: Mapping[str, int],
    at: datetime,
) -> Applied:
    require_ref(ref)
    if counted < 0:
        raise InventoryError(f"a count of {counted} units")
    kind = MovementKind.VERIFICATION_COUNT
    with transaction(conn):
        w = Write(conn, at)
        w.skus.add(sku)
        if applied_before(conn, kind, ref) is not None:
            return w.applied(duplicate=True)
        tote_id = tote or ""
        if tote_id:
            where = conn.execute("SELECT location FROM totes WHERE tote = ?", (tote_id,)).fetchone()
            if where is None:
                raise UnknownTote(f"no tote {tote_id!r} in the inventory")
            if where[0] != location:
                raise InventoryError(f"tote {tote_id} is at {where[0]}, not at {location}")
        before = _on_hand(conn, location, tote_id, sku)
        w.change(location, tote_id, sku, counted - before, kind, ref, None, data)
        if before == counted:  # a count that confirms the stock is still a fact worth keeping
            w.conn.execute(
                "INSERT OR IGNORE INTO stock (location, tote, sku, on_hand, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (location, tote_id, sku, counted, w.ts),
            )
        w.event(
            "counted",
            sku,
            location,
            {**data, "tote": tote, "before": before, "counted": counted},
        )
        w.check_levels(levels)
        mark_applied(w, kind, ref, {"before": before, "counted": counted})
        return w.applied()


def move_tote(
    conn: sqlite3.Connection,
    tote: str,
    to_location: str,
    kind: MovementKind,
    ref: str,
    levels: Mapping[str, int],
    at: datetime,
) -> Applied:
    require_ref(ref)
    with transaction(conn):
        w = Write(conn, at)
        if applied_before(conn, kind, ref) is not None:
            rows = conn.execute("SELECT DISTINCT sku FROM stock WHERE tote = ?", (tote,))
            w.skus.update(r[0] for r in rows)
            return w.applied(duplicate=True)
        where = conn.execute("SELECT location FROM totes WHERE tote = ?", (tote,)).fetchone()
        source = None if where is None else str(where[0])
        if source is not None and source != to_location:
            contents = conn.execute(
                "SELECT sku, on_hand FROM stock WHERE location = ? AND tote = ? ORDER BY sku",
                (source, tote),
            ).fetchall()
            data = {"tote": tote, "from": source, "to": to_location}
            for row in contents:
                w.change(source, tote, row["sku"], -row["on_hand"], kind, ref, None, data,
                         keep_empty=False)  # fmt: skip
                w.change(to_location, tote, row["sku"], row["on_hand"], kind, ref, None, data)
                conn.execute(
                    "DELETE FROM stock WHERE location = ? AND tote = ? AND sku = ?",
                    (source, tote, row["sku"]),
                )
        conn.execute(
            "INSERT INTO totes (tote, location, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (tote) DO UPDATE SET location = excluded.location,"
            " updated_at = excluded.updated_at",
            (tote, to_location, w.ts),
        )
        if source is None:
            w.event("tote_registered", None, to_location, {"tote": tote, "ref": ref})
        mark_applied(w, kind, ref, {"tote": tote, "from": source, "to": to_location})
        w.check_levels(levels)
        return w.applied(totes={tote: to_location})


def adjust(
    conn: sqlite3.Connection,
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
    require_ref(ref)
    with transaction(conn):
        w = Write(conn, at)
        w.skus.add(sku)
        if applied_before(conn, kind, ref) is not None:
            return w.applied(duplicate=True)
        tote_id = tote or ""
        if tote_id:
            where = conn.execute("SELECT location FROM totes WHERE tote = ?", (tote_id,)).fetchone()
            if where is None:
                raise UnknownTote(f"no tote {tote_id!r} in the inventory")
            location = str(where[0])
        if location is None:
            raise InventoryError("a stock change needs a location or a tote")
        w.change(location, tote_id, sku, delta, kind, ref, None, data)
        w.check_levels(levels)
        mark_applied(w, kind, ref, {"location": location, "tote": tote, "sku": sku, "delta": delta})
        return w.applied()


def reconcile(
    conn: sqlite3.Connection, contents: Mapping[str, str | None], ref: str, at: datetime
) -> Applied:
    with transaction(conn):
        w = Write(conn, at)
        ours_at: dict[str, str] = {}
        where_is: dict[str, str] = {}
        for row in conn.execute("SELECT tote, location FROM totes"):
            where_is[row["tote"]] = row["location"]
            if row["location"] in contents:
                ours_at[row["location"]] = row["tote"]
        differences: list[Difference] = []
        for location in sorted(contents):
            reported = contents[location] or None
            expected = ours_at.get(location)
            if reported == expected:
                continue
            if reported is not None:
                known = where_is.get(reported)
                if known is None:
                    differences.append(Difference("unexpected_tote", location, reported, expected))
                elif known != location:
                    differences.append(
                        Difference("tote_elsewhere", location, reported, expected, known)
                    )
            if expected is not None:
                differences.append(Difference("tote_missing", location, reported, expected))
        for d in differences:
            w.event(
                "asrs_difference",
                None,
                d.location,
                {
                    "kind": d.kind,
                    "reported_tote": d.reported_tote,
                    "expected_tote": d.expected_tote,
                    "expected_location": d.expected_location,
                    "ref": ref,
                },
            )
        return w.applied(differences=differences)

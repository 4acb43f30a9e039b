"""The inventory: plain functions over one connection, run on the store's worker thread.

Tables (migration 3 in :mod:`controller.store.sqlite.schema`): ``stock`` (on-hand per location,
tote and SKU; ``tote`` '' is loose stock; ``CHECK (on_hand >= 0)``), ``totes`` (where each tote
is), ``reservations`` (``tote`` '' for loose stock; reservations of units in AS/RS totes came
with migration 5), ``stock_movements`` (the ledger), ``stock_applied`` (confirmed events already
applied, by kind and reference), ``inventory_events`` (line-level events: low stock, short picks,
AS/RS differences), ``stock_low`` (SKUs below their level) and ``inventory_meta``.

Each write function is one transaction. This module holds the stock changes: the initial load,
confirmed robot picks (which consume loose reservations), verification counts, tote moves,
adjustments and the AS/RS contents reconciliation; reservations and reads are kept apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from controller.store.inventory import InitialStock, InventoryError, PickLine, UnknownTote
from controller.store.sql.db import Connection, transaction
from controller.store.sql.inventory.read import on_hand_at
from controller.store.sql.inventory.write import (
    Write,
    applied_before,
    mark_applied,
    open_rows,
    require_ref,
)
from controller.store.stock import Applied, Difference, MovementKind, PickOutcome


def initial_load(
    conn: Connection,
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
                    "INSERT INTO stock (location, tote, sku, on_hand, updated_at)"
                    " VALUES (?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
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


def confirm_pick(
    conn: Connection,
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
    conn: Connection,
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
        before = on_hand_at(conn, location, tote_id, sku)
        w.change(location, tote_id, sku, counted - before, kind, ref, None, data)
        if before == counted:  # a count that confirms the stock is still a fact worth keeping
            w.conn.execute(
                "INSERT INTO stock (location, tote, sku, on_hand, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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
    conn: Connection,
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
    conn: Connection,
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
    conn: Connection, contents: Mapping[str, str | None], ref: str, at: datetime
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

"""The store's register of reject-chute totes (:mod:`controller.store.reject_totes`).

Functions run on the store's writer thread inside one transaction each, like the inventory's
(:mod:`controller.store.sql.inventory.ops`): a restock's ledger rows and the tote's new state
are committed together or not at all.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from controller.store.reject_totes import (
    RejectLine,
    RejectTote,
    RejectToteError,
    RejectToteResolved,
    RejectToteState,
    RestockLine,
    UnknownRejectTote,
)
from controller.store.sql.db import Connection, Row, transaction
from controller.store.sql.inventory.write import Write, json_data
from controller.store.sql.ops import iso
from controller.store.stock import Applied, MovementKind


def _tote(row: Row) -> RejectTote:
    return RejectTote(
        id=int(row["id"]),
        tote=row["tote"],
        order_id=row["order_id"],
        trip_id=row["trip_id"],
        chute=row["chute"],
        reason=row["reason"],
        lines=tuple(RejectLine(**ln) for ln in json.loads(row["lines"])),
        state=RejectToteState(row["state"]),
        arrived_at=datetime.fromisoformat(row["arrived_at"]),
        resolved_at=(
            datetime.fromisoformat(row["resolved_at"]) if row["resolved_at"] is not None else None
        ),
        resolved_by=row["resolved_by"],
        resolution=dict(json.loads(row["resolution"])),
    )


def register(
    conn: Connection,
    tote: str,
    order_id: str,
    trip_id: str,
    chute: str,
    reason: str,
    lines: Sequence[RejectLine],
    at: datetime,
) -> RejectTote:
    with transaction(conn):
        conn.execute(
            "INSERT INTO reject_totes (tote, order_id, trip_id, chute, reason, lines, state,"
            " arrived_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?) ON CONFLICT (trip_id) DO NOTHING",
            (
                tote,
                order_id,
                trip_id,
                chute,
                reason,
                json.dumps([ln.document() for ln in lines]),
                iso(at),
            ),
        )
        row = conn.execute("SELECT * FROM reject_totes WHERE trip_id = ?", (trip_id,)).fetchone()
    return _tote(row)


def listing(conn: Connection, state: RejectToteState | None, limit: int) -> list[RejectTote]:
    if state is None:
        rows = conn.execute("SELECT * FROM reject_totes ORDER BY id LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            "SELECT * FROM reject_totes WHERE state = ? ORDER BY id LIMIT ?", (state.value, limit)
        )
    return [_tote(r) for r in rows.fetchall()]


def find(conn: Connection, tote: str) -> RejectTote | None:
    """The tote's registration still open, else its newest."""
    row = conn.execute(
        "SELECT * FROM reject_totes WHERE tote = ? ORDER BY state = 'open' DESC, id DESC LIMIT 1",
        (tote,),
    ).fetchone()
    return None if row is None else _tote(row)


def open_totals(conn: Connection) -> tuple[int, int]:
    totes = 0
    units = 0
    for row in conn.execute("SELECT lines FROM reject_totes WHERE state = 'open'"):
        totes += 1
        units += sum(int(ln["quantity"]) for ln in json.loads(row[0]))
    return totes, units


def _open(conn: Connection, tote: str) -> RejectTote:
    found = find(conn, tote)
    if found is None:
        raise UnknownRejectTote(f"tote {tote} is not registered as a reject-chute tote")
    if found.state is not RejectToteState.OPEN:
        raise RejectToteResolved(
            f"tote {tote} was {found.state.value.replace('_', ' ')} by {found.resolved_by} "
            f"at {found.resolved_at.isoformat() if found.resolved_at else '?'}"
        )
    return found


def _close(
    w: Write, found: RejectTote, state: RejectToteState, by: str, resolution: dict[str, object]
) -> RejectTote:
    w.conn.execute(
        "UPDATE reject_totes SET state = ?, resolved_at = ?, resolved_by = ?, resolution = ?"
        " WHERE id = ?",
        (state.value, w.ts, by, json_data(resolution), found.id),
    )
    row = w.conn.execute("SELECT * FROM reject_totes WHERE id = ?", (found.id,)).fetchone()
    return _tote(row)


def restock(
    conn: Connection,
    tote: str,
    lines: Sequence[RestockLine],
    by: str,
    note: str,
    levels: dict[str, int],
    at: datetime,
) -> tuple[RejectTote, Applied]:
    with transaction(conn):
        found = _open(conn, tote)
        held = Counter[str]()
        for held_line in found.lines:
            held[held_line.sku] += held_line.quantity
        counted = Counter[str]()
        for ln in lines:
            counted[ln.sku] += ln.quantity
        for sku, units in counted.items():
            if sku not in held:
                raise RejectToteError(f"tote {tote} held no {sku}")
            if units > held[sku]:
                raise RejectToteError(
                    f"tote {tote} held {held[sku]} units of {sku}, not {units}: count again, "
                    "or record the surplus with a cycle count at the location"
                )
        w = Write(conn, at)
        for i, ln in enumerate(lines):
            if ln.quantity > 0:
                w.change(
                    ln.location,
                    "",
                    ln.sku,
                    ln.quantity,
                    MovementKind.REJECT_RESTOCKED,
                    f"reject-{found.id}-{i}",
                    found.order_id,
                    {"tote": tote, "by": by},
                )
        missing = {sku: held[sku] - counted[sku] for sku in held if held[sku] > counted[sku]}
        resolution: dict[str, object] = {
            "restocked": [
                {"sku": ln.sku, "location": ln.location, "quantity": ln.quantity}
                for ln in lines
                if ln.quantity > 0
            ],
            "written_off": missing,
            "note": note,
        }
        w.event(
            "reject_restocked",
            None,
            None,
            {"tote": tote, "order_id": found.order_id, "by": by, **resolution},
        )
        w.check_levels(levels)
        closed = _close(w, found, RejectToteState.RESTOCKED, by, resolution)
        return closed, w.applied()


def write_off(conn: Connection, tote: str, by: str, note: str, at: datetime) -> RejectTote:
    with transaction(conn):
        found = _open(conn, tote)
        w = Write(conn, at)
        units = {ln.sku: 0 for ln in found.lines}
        for ln in found.lines:
            units[ln.sku] += ln.quantity
        resolution: dict[str, object] = {"written_off": units, "note": note}
        w.event(
            "reject_written_off",
            None,
            None,
            {"tote": tote, "order_id": found.order_id, "by": by, **resolution},
        )
        return _close(w, found, RejectToteState.WRITTEN_OFF, by, resolution)

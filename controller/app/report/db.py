"""Read the rows the KPIs need from an order database, read-only.

The connection is opened with ``mode=ro``, so a live service's database (WAL) can be read while
the service writes it; nothing is ever written, not even a migration.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from controller.app.report.model import EVENT_TYPES, CommandRow, EventRow, OrderRow


class KpiSourceError(Exception):
    """The file is missing or is not a linectl order database."""


@dataclass(frozen=True)
class Rows:
    orders: list[OrderRow]
    events: list[EventRow]
    commands: list[CommandRow]


def parse_time(text: str) -> float:
    """An ISO 8601 time as seconds since the epoch; a time without an offset is UTC."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def read_rows(path: str | Path) -> Rows:
    """Every order, the history events the KPIs use, and the AS/RS crane commands."""
    p = Path(path)
    if not p.is_file():
        raise KpiSourceError(f"{p}: no such file")
    try:
        conn = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise KpiSourceError(f"{p}: cannot open: {exc}") from None
    try:
        conn.row_factory = sqlite3.Row
        tables = _tables(conn, p)
        if not {"orders", "events", "schema_version"} <= tables:
            raise KpiSourceError(f"{p}: not a linectl order database (no orders/events tables)")
        return Rows(
            [_order(r) for r in conn.execute("SELECT * FROM orders ORDER BY seq")],
            _events(conn),
            _commands(conn) if "asrs_commands" in tables else [],
        )
    except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
        raise KpiSourceError(f"{p}: not a readable linectl order database: {exc}") from None
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection, p: Path) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise KpiSourceError(f"{p}: not a linectl order database: {exc}") from None
    return {str(r[0]) for r in rows}


def _order(r: sqlite3.Row) -> OrderRow:
    body: dict[str, Any] = json.loads(r["body"])
    until = body.get("deliver_until") if r["type"] == "b2b" else None
    return OrderRow(
        id=r["id"],
        type=r["type"],
        status=r["status"],
        created_at=parse_time(r["created_at"]),
        cutoff=parse_time(until or r["due_at"]),
    )


def _events(conn: sqlite3.Connection) -> list[EventRow]:
    marks = ",".join("?" * len(EVENT_TYPES))
    rows = conn.execute(
        f"SELECT order_id, at, type, data FROM events WHERE type IN ({marks}) ORDER BY seq",
        sorted(EVENT_TYPES),
    )
    out = []
    for r in rows:
        data = json.loads(r["data"] or "{}")
        out.append(
            EventRow(
                r["order_id"],
                parse_time(r["at"]),
                r["type"],
                data if isinstance(data, dict) else {},
            )
        )
    return out


def _commands(conn: sqlite3.Connection) -> list[CommandRow]:
    rows = conn.execute(
        "SELECT aisle, kind, state, created_at, updated_at FROM asrs_commands ORDER BY seq"
    )
    return [
        CommandRow(
            r["aisle"],
            r["kind"],
            r["state"],
            parse_time(r["created_at"]),
            parse_time(r["updated_at"]),
        )
        for r in rows
    ]

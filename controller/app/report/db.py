"""Read the rows the KPIs need from a line's order store, read-only.

A SQLite store is opened with ``mode=ro``, so a live service's database (WAL) can be read while
the service writes it. A PostgreSQL store is one line's schema in a database that several lines
may share (:class:`PostgresSource`): it is read in one read-only transaction (a consistent
snapshot while the controller writes), with only that schema on the search path, so the report
sees that line's orders and no other's. Nothing is ever written, not even a migration; a schema
that does not exist is not created.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from controller.app.report.model import EVENT_TYPES, CommandRow, EventRow, OrderRow
from kernel.config.model import StoreConfig, default_schema

REQUIRED_TABLES = {"orders", "events", "schema_version"}
CONNECT_TIMEOUT = 10  # seconds to wait for a PostgreSQL server


class KpiSourceError(Exception):
    """The store is missing, cannot be reached, or is not a linectl order store."""


@dataclass(frozen=True)
class PostgresSource:
    """One line's order store in PostgreSQL: the database at ``dsn``, the line's ``schema``."""

    dsn: str = field(repr=False)  # may hold a password: never printed
    schema: str

    def __str__(self) -> str:
        from controller.store.postgresql.engine import server_name

        return f"postgresql {server_name(self.dsn)} schema {self.schema}"


Source = Path | PostgresSource

# a query with ``?`` placeholders and its parameters -> rows readable by column name
Query = Callable[[str, Sequence[Any]], Iterable[Any]]


def source_of(store: StoreConfig, line_id: str) -> Source:
    """Where a line file's store section keeps the line's orders."""
    if store.backend == "postgresql":
        assert store.dsn is not None  # the configuration's validator requires it
        return PostgresSource(
            store.dsn.get_secret_value(), store.db_schema or default_schema(line_id)
        )
    return Path(store.path)


@dataclass(frozen=True)
class Rows:
    orders: list[OrderRow]
    events: list[EventRow]
    commands: list[CommandRow]


def parse_time(text: str) -> float:
    """An ISO 8601 time as seconds since the epoch; a time without an offset is UTC."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def read_rows(source: str | Source) -> Rows:
    """Every order, the history events the KPIs use, and the AS/RS crane commands."""
    if isinstance(source, PostgresSource):
        return _read_postgres(source)
    p = Path(source)
    if not p.is_file():
        raise KpiSourceError(f"{p}: no such file")
    try:
        conn = sqlite3.connect(f"file:{quote(str(p.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise KpiSourceError(f"{p}: cannot open: {exc}") from None
    try:
        conn.row_factory = sqlite3.Row
        tables = _tables(conn, p)
        if not tables >= REQUIRED_TABLES:
            raise KpiSourceError(f"{p}: not a linectl order database (no orders/events tables)")
        return _rows(conn.execute, tables)
    except (sqlite3.Error, ValueError, KeyError, TypeError) as exc:
        raise KpiSourceError(f"{p}: not a readable linectl order database: {exc}") from None
    finally:
        conn.close()


def _read_postgres(src: PostgresSource) -> Rows:
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    try:
        psycopg.conninfo.conninfo_to_dict(src.dsn)
    except psycopg.Error:  # its message may quote the string, password and all
        raise KpiSourceError("the DSN is not a libpq connection string or URI") from None
    try:
        conn = psycopg.connect(
            src.dsn,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="linectl-report",
            row_factory=dict_row,
        )
    except psycopg.Error as exc:
        raise KpiSourceError(f"{src}: cannot connect: {str(exc).strip()}") from None
    try:
        # one read-only snapshot: orders, events and commands as of one moment
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        tables = {
            str(r["table_name"])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (src.schema,),
            )
        }
        if not tables:
            there = _stores_there(conn)
            raise KpiSourceError(f"{src}: no such schema, or no tables in it; {there}")
        if not tables >= REQUIRED_TABLES:
            raise KpiSourceError(f"{src}: not a linectl order store (no orders/events tables)")
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(src.schema)))

        def query(statement: str, params: Sequence[Any] = ()) -> Iterable[Any]:
            return conn.execute(statement.replace("?", "%s"), params)

        return _rows(query, tables)
    except psycopg.Error as exc:
        raise KpiSourceError(f"{src}: cannot read: {str(exc).strip()}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KpiSourceError(f"{src}: not a readable linectl order store: {exc}") from None
    finally:
        conn.close()  # the read-only transaction ends with the connection


def _stores_there(conn: Any) -> str:
    """The schemas of the database that hold a linectl store, for the message about one
    that does not exist."""
    rows = conn.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'orders'"
        " INTERSECT SELECT table_schema FROM information_schema.tables"
        " WHERE table_name = 'schema_version' ORDER BY 1"
    ).fetchall()
    names = [str(r["table_schema"]) for r in rows]
    if not names:
        return "no linectl store in this database"
    more = f" and {len(names) - 20} more" if len(names) > 20 else ""
    return f"linectl stores in this database: {', '.join(names[:20])}{more}"


def _rows(query: Query, tables: set[str]) -> Rows:
    return Rows(
        [_order(r) for r in query("SELECT * FROM orders ORDER BY seq", ())],
        _events(query),
        _commands(query) if "asrs_commands" in tables else [],
    )


def _tables(conn: sqlite3.Connection, p: Path) -> set[str]:
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:  # "file is not a database"
        raise KpiSourceError(f"{p}: not a linectl order database: {exc}") from None
    return {str(r[0]) for r in rows}


def _order(r: Any) -> OrderRow:
    body: dict[str, Any] = json.loads(r["body"])
    until = body.get("deliver_until") if r["type"] == "b2b" else None
    return OrderRow(
        id=r["id"],
        type=r["type"],
        status=r["status"],
        created_at=parse_time(r["created_at"]),
        cutoff=parse_time(until or r["due_at"]),
    )


def _events(query: Query) -> list[EventRow]:
    marks = ",".join("?" * len(EVENT_TYPES))
    rows = query(
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


def _commands(query: Query) -> list[CommandRow]:
    rows = query(
        "SELECT aisle, kind, state, created_at, updated_at FROM asrs_commands ORDER BY seq", ()
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

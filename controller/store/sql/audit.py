"""The store's audit log and line hold (:mod:`controller.store.audit`).

Plain functions over one connection, run on the store's worker thread, and
:class:`SqlAuditLog`, the async part of the store over them. Times are stored as UTC ISO text
of one width, so they sort as text.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from controller.store.audit import AuditEntry, AuditFilter, AuditPage, AuditResult, LineHold
from controller.store.base import StoreError
from controller.store.sql.db import Connection, Row, transaction
from controller.store.sql.ops import decode_cursor, encode_cursor
from controller.store.sql.worker import StoreWorker
from kernel.redact import redact

MAX_AUDIT_PAGE = 1000
HOLD_KEY = "hold"


def utc_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def insert_entry(conn: Connection, e: AuditEntry) -> int:
    with transaction(conn):
        return _insert(conn, e)


def _insert(conn: Connection, e: AuditEntry) -> int:
    cur = conn.execute(
        "INSERT INTO audit (at, who, action, target, params, result, status, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (
            utc_text(e.at),
            e.who,
            e.action,
            e.target,
            json.dumps(redact(e.params), sort_keys=True, default=str),
            e.result.value,
            e.status,
            e.detail,
        ),
    )
    return int(cur.fetchone()[0])


def _entry(row: Row) -> AuditEntry:
    try:
        return AuditEntry(
            seq=row["seq"],
            at=datetime.fromisoformat(row["at"]),
            who=row["who"],
            action=row["action"],
            target=row["target"],
            params=redact(json.loads(row["params"])),  # rows written before redaction
            result=AuditResult(row["result"]),
            status=row["status"],
            detail=row["detail"],
        )
    except ValueError as exc:
        raise StoreError(f"audit entry {row['seq']} cannot be read: {exc}") from exc


def read_entries(conn: Connection, where: AuditFilter, limit: int, before: int | None) -> AuditPage:
    clauses: list[str] = []
    params: list[Any] = []
    if before is not None:
        clauses.append("seq < ?")
        params.append(before)
    for column, value in (("action", where.action), ("who", where.who)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.result is not None:
        clauses.append("result = ?")
        params.append(where.result.value)
    if where.since is not None:
        clauses.append("at >= ?")
        params.append(utc_text(where.since))
    sql = "SELECT * FROM audit"
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit + 1)).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        entries=[_entry(r) for r in rows],
        next_cursor=encode_cursor(rows[-1]["seq"]) if more and rows else None,
    )


def read_hold(conn: Connection) -> LineHold | None:
    row = conn.execute("SELECT value FROM line_state WHERE key = ?", (HOLD_KEY,)).fetchone()
    if row is None:
        return None
    try:
        data = json.loads(row[0])
        return LineHold(
            by=str(data["by"]),
            since=datetime.fromisoformat(data["since"]),
            paused=tuple(str(s) for s in data.get("paused", ())),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the stored line hold cannot be read: {exc}") from exc


def write_hold(conn: Connection, hold: LineHold | None) -> None:
    with transaction(conn):
        _write_hold(conn, hold)


def _write_hold(conn: Connection, hold: LineHold | None) -> None:
    if hold is None:
        conn.execute("DELETE FROM line_state WHERE key = ?", (HOLD_KEY,))
        return
    value = json.dumps({"by": hold.by, "since": utc_text(hold.since), "paused": list(hold.paused)})
    conn.execute(
        "INSERT INTO line_state (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (HOLD_KEY, value),
    )


class SqlAuditLog:
    """The audit log and the line's hold on the store's writer."""

    def __init__(self, writer: StoreWorker) -> None:
        self._writer = writer

    async def append(self, entry: AuditEntry) -> AuditEntry:
        seq = await self._writer.run(insert_entry, entry)
        return dataclasses.replace(entry, seq=seq)

    async def entries(
        self, where: AuditFilter, *, limit: int = 100, cursor: str | None = None
    ) -> AuditPage:
        if not 1 <= limit <= MAX_AUDIT_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_AUDIT_PAGE}, got {limit}")
        before = decode_cursor(cursor) if cursor else None
        return await self._writer.run(read_entries, where, limit, before)

    async def line_hold(self) -> LineHold | None:
        return await self._writer.run(read_hold)

    async def set_line_hold(self, hold: LineHold | None) -> None:
        await self._writer.run(write_hold, hold)

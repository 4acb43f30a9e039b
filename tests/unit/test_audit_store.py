"""The audit log and the line hold in the store on every engine (SQLite, PostgreSQL): append,
list, hold; and the SQLite migration that added them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.store.audit import AuditEntry, AuditFilter, AuditResult, LineHold
from controller.store.base import InvalidCursor, StoreError
from controller.store.sql.store import SqlStore
from controller.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from controller.store.sqlite.store import SqliteOrderStore
from tests.store_backends import StoreBackend
from tests.store_sql import run_sql

T0 = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)


def entry(i: int, **changes: object) -> AuditEntry:
    fields: dict[str, object] = {
        "at": T0 + timedelta(seconds=i),
        "who": "commissioning",
        "action": "robot.pause",
        "target": "R01",
        "params": {"serial": "R01", "command": "pause"},
        "result": AuditResult.OK,
        "status": 202,
    }
    fields.update(changes)
    return AuditEntry(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """An open store on each engine in turn."""
    return any_store


async def test_migration_adds_the_audit_log_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "line.db"
    conn = sqlite3.connect(path)
    for statements in MIGRATIONS[:5]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (5)")
    conn.commit()
    conn.close()

    store = SqliteOrderStore(path)
    await store.open()
    try:
        assert (await store.list_audit(AuditFilter())).entries == []
        assert await store.line_hold() is None
        stored = await store.append_audit(entry(1))
        assert stored.seq == 1
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT who, action, result FROM audit").fetchall() == [
            ("commissioning", "robot.pause", "ok")
        ]
    finally:
        conn.close()


async def test_entries_come_back_newest_first_in_pages(store: SqlStore) -> None:
    for i in range(5):
        await store.append_audit(entry(i, detail=f"#{i}"))
    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = await store.list_audit(AuditFilter(), limit=2, cursor=cursor)
        seen += [e.seq for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    newest = (await store.list_audit(AuditFilter(), limit=1)).entries[0]
    assert newest == entry(4, detail="#4", seq=5)


async def test_filters(store: SqlStore) -> None:
    await store.append_audit(entry(0, who="anonymous", result=AuditResult.REFUSED, status=401))
    await store.append_audit(entry(1, action="line.hold", target="line", params={}))
    await store.append_audit(entry(2, result=AuditResult.FAILED, status=503))

    async def seqs(where: AuditFilter) -> list[int]:
        return [e.seq for e in (await store.list_audit(where)).entries]

    assert await seqs(AuditFilter(who="anonymous")) == [1]
    assert await seqs(AuditFilter(action="line.hold")) == [2]
    assert await seqs(AuditFilter(result=AuditResult.FAILED)) == [3]
    # since is inclusive, and compares instants whatever the offset it is given in
    since = (T0 + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2)))
    assert await seqs(AuditFilter(since=since)) == [3, 2]
    assert await seqs(AuditFilter(who="commissioning", action="robot.pause")) == [3]


async def test_bad_cursor_and_limit_are_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidCursor):
        await store.list_audit(AuditFilter(), cursor="not-a-cursor")
    with pytest.raises(ValueError, match="limit"):
        await store.list_audit(AuditFilter(), limit=0)


async def test_line_hold_is_kept_and_cleared(store_backend: StoreBackend) -> None:
    store = store_backend.new()
    await store.open()
    hold = LineHold(by="commissioning", since=T0)
    try:
        await store.set_line_hold(hold)
        await store.set_line_hold(hold)  # again: replaces, no second row
    finally:
        await store.close()
    store = store_backend.new()
    await store.open()
    try:
        assert await store.line_hold() == hold
        await store.set_line_hold(None)
        assert await store.line_hold() is None
    finally:
        await store.close()


async def test_a_damaged_hold_row_is_a_store_error(
    store: SqlStore, store_backend: StoreBackend
) -> None:
    run_sql(store_backend, "INSERT INTO line_state VALUES ('hold', '{\"by\": 1}')")
    with pytest.raises(StoreError, match="line hold"):
        await store.line_hold()

"""What only the SQLite order store has: a database file in WAL mode with its schema version,
the file's folder created on open, and a path that cannot hold a database refused. The store's
contract on every engine is in :mod:`tests.integration.test_store`."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.orders.model import OrderIn
from controller.store import StoreError, open_store
from controller.store.sqlite.schema import SCHEMA_VERSION
from controller.store.sqlite.store import SqliteOrderStore
from kernel.config.model import StoreConfig

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def b2c() -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "due_at": "2026-03-01T16:00:00Z",
            "destination": "DHL",
            "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 2}],
        }
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "orders.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteOrderStore]:
    s = SqliteOrderStore(db_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_database_settings_and_schema_version(store: SqliteOrderStore) -> None:
    await store.create_order("E-1", b2c(), T0)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    assert store.path.with_name("orders.db-wal").exists()


async def test_the_configured_file_is_the_store(db_path: Path) -> None:
    first = open_store(StoreConfig(path=str(db_path)))
    assert isinstance(first, SqliteOrderStore) and first.path == db_path
    await first.open()
    try:
        await first.create_order("F-1", b2c(), T0)
    finally:
        await first.close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT id FROM orders").fetchall() == [("F-1",)]


async def test_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    s = SqliteOrderStore(db_path)
    with pytest.raises(StoreError, match="newer"):
        await s.open()


async def test_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = SqliteOrderStore(blocker / "orders.db")
    with pytest.raises(StoreError):
        await s.open()

"""SQLite as the store's engine: one file in WAL mode, every commit fsynced.

:class:`SqliteEngine` opens the file (creating it and its folder if missing) and migrates its
schema (:mod:`controller.store.sqlite.schema`); :class:`SqliteConnection` is the one connection,
used only on the store's worker thread (:class:`~controller.store.sql.worker.StoreWorker`). A
write is one ``BEGIN IMMEDIATE`` transaction and every commit is fsynced (``synchronous=FULL``):
when a call returns, its write survives a power cut. ``sqlite3`` errors are translated to
:class:`~controller.store.base.StoreError` here, once; nothing above this module sees a SQLite
type.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from controller.store.base import StoreError, StoreUnavailable
from controller.store.sqlite.schema import configure, migrate

T = TypeVar("T")

# sqlite3 errors of the statement rather than of the file: trying again changes nothing. Every
# other sqlite3 error (full, I/O, locked, damaged) is the store being unavailable.
REFUSED = (
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    sqlite3.DataError,
    sqlite3.NotSupportedError,
)


class SqliteDialect:
    name = "sqlite"

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"


SQLITE = SqliteDialect()


class SqliteConnection:
    """A ``sqlite3`` connection as :class:`~controller.store.sql.db.Connection`."""

    dialect = SQLITE

    def __init__(self, raw: sqlite3.Connection, where: str) -> None:
        self.raw = raw
        self._where = where

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> sqlite3.Cursor:
        return self._call(self.raw.execute, sql, params)

    def begin(self) -> None:
        self._call(self.raw.execute, "BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._call(self.raw.execute, "COMMIT")

    def rollback(self) -> None:
        self._call(self.raw.execute, "ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except REFUSED as exc:  # the statement itself is at fault: trying again changes nothing
            raise StoreError(f"{self._where}: {exc}") from exc
        except sqlite3.Error as exc:  # full, I/O, locked, damaged: may pass later
            raise StoreUnavailable(f"{self._where}: {exc}") from exc


class SqliteEngine:
    """One SQLite file; see the module's docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: SqliteConnection | None = None

    @property
    def where(self) -> str:
        return f"order store {self.path}"

    def open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            raw = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.where}: {exc}") from exc
        conn = SqliteConnection(raw, self.where)
        try:
            raw.row_factory = sqlite3.Row
            configure(conn)
            version = migrate(conn, str(self.path))
        except BaseException:
            raw.close()
            raise
        self._conn = conn
        return version

    def connection(self) -> SqliteConnection:
        if self._conn is None:
            raise StoreError(f"{self.where} is closed")
        return self._conn

    def fence_writes(self, term: int) -> None:
        raise StoreError(
            f"{self.where}: a SQLite store has no controller lease; a standby needs PostgreSQL"
        )

    def changes(self, conn: Any) -> int:
        assert isinstance(conn, SqliteConnection)
        return conn.raw.total_changes

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.raw.close()

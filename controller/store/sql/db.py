"""What the store's SQL asks of a database connection: the same for SQLite and PostgreSQL.

The store's operations (:mod:`controller.store.sql`) are plain functions over a
:class:`Connection`, written once in the SQL both engines speak: ``?`` placeholders, ``INSERT ...
ON CONFLICT``, ``RETURNING``, window functions. An engine (:mod:`controller.store.sqlite`,
:mod:`controller.store.postgresql`) adapts its driver to this protocol: rows readable by column
name and by position, driver errors raised as :class:`~controller.store.base.StoreError` (the
statement is at fault: trying again changes nothing) or
:class:`~controller.store.base.StoreUnavailable` (the database cannot answer now), and the one
expression the two engines spell differently in :class:`Dialect`.

A write runs in :func:`transaction`, which takes the engine's write lock: SQLite's ``BEGIN
IMMEDIATE``, PostgreSQL's transaction-scoped advisory lock of the line. Writes to one line's data
are therefore serialised across every process that shares the database, and a function that
reads and then writes inside a transaction sees nothing change in between.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Row(Protocol):
    """One result row: ``row["column"]`` or ``row[0]``."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Dialect(Protocol):
    """The SQL that differs between the engines."""

    name: str

    def json_text(self, column: str, key: str) -> str:
        """An expression: the text value of ``key`` in the JSON object held (as text) in
        ``column``; NULL when it is missing."""
        ...


class Connection(Protocol):
    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Run one statement with ``?`` placeholders."""
        ...

    def begin(self) -> None:
        """Start a write transaction holding the engine's write lock."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """One write transaction: committed on success, rolled back on any error."""
    conn.begin()
    try:
        yield
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise

"""One statement on a store's database, from a connection of the test's own, on either engine.

A test reads through it what a store has committed (another connection sees only that), or puts
rows there that the store's own calls never write (a damaged row, a value from a newer release).
Statements use ``?`` placeholders on both engines, as the store's SQL does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from typing import Any

import psycopg
from psycopg import sql as pgsql

from tests.store_backends import StoreBackend, postgres_dsn


def run_sql(
    backend: StoreBackend, statement: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """Run ``statement`` on the backend's database and commit; its rows (none for a write)."""
    if backend.name == "sqlite":
        with closing(sqlite3.connect(backend.folder / "line.db")) as conn:
            cur = conn.execute(statement, tuple(params))
            rows = cur.fetchall() if cur.description is not None else []
            conn.commit()
            return [tuple(r) for r in rows]
    with psycopg.connect(postgres_dsn(), autocommit=True) as pg:
        pg.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(backend.schema)))
        pg_cur = pg.execute(statement.replace("%", "%%").replace("?", "%s"), tuple(params))
        return [tuple(r) for r in pg_cur.fetchall()] if pg_cur.description is not None else []

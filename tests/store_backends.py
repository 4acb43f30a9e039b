"""The order store on each engine, for the tests that every engine must pass alike.

:class:`StoreBackend` makes stores on one database: a SQLite file in the test's folder, or a
schema of its own in the test PostgreSQL (``LINECTL_TEST_POSTGRES_DSN``, by default the machine's
server on 127.0.0.1:5432 with trust authentication, database ``test``), dropped when the test
ends, so runs and tests never see each other's rows. Without a reachable PostgreSQL the
PostgreSQL cases skip, unless ``LINECTL_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from controller.store.postgresql.store import PostgresOrderStore
from controller.store.sql.store import SqlStore
from controller.store.sqlite.store import SqliteOrderStore

POSTGRES_DSN = os.environ.get(
    "LINECTL_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
BACKENDS = ("sqlite", "postgresql")


@functools.cache
def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


def postgres_dsn() -> str:
    """The test PostgreSQL's DSN; skips the test (fails it under CI) when it does not answer."""
    problem = _postgres_problem()
    if problem is not None:
        message = f"no PostgreSQL at {POSTGRES_DSN!r}: {problem}"
        if os.environ.get("LINECTL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} (and LINECTL_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    return POSTGRES_DSN


def new_schema_name() -> str:
    return f"linectl_test_{uuid.uuid4().hex[:16]}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@dataclass
class StoreBackend:
    """Stores on one database of one engine: each :meth:`new` store sees the same rows."""

    name: str
    folder: Path
    schema: str = field(default_factory=new_schema_name)

    def new(self) -> SqlStore:
        """A store on this database, not yet opened."""
        if self.name == "sqlite":
            return SqliteOrderStore(self.folder / "line.db")
        return PostgresOrderStore(postgres_dsn(), self.schema, connect_timeout=5.0)

    def cleanup(self) -> None:
        if self.name == "postgresql" and _postgres_problem() is None:
            drop_schema(self.schema)

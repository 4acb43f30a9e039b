"""The order store on PostgreSQL: one line's schema in a database that several lines, and a
line's standby controller, may share (see :mod:`controller.store.postgresql.engine`)."""

from __future__ import annotations

from controller.store.postgresql.engine import PostgresEngine
from controller.store.sql.store import SqlStore


class PostgresOrderStore(SqlStore):
    """The store in ``schema`` of the database at ``dsn``; ``open()`` creates the schema if
    missing and migrates it."""

    def __init__(self, dsn: str, schema: str, *, connect_timeout: float = 10.0) -> None:
        self._engine = PostgresEngine(dsn, schema, connect_timeout=connect_timeout)
        super().__init__(self._engine)

    @property
    def schema(self) -> str:
        return self._engine.schema

"""The default order store: one SQLite file in WAL mode, with every write committed (and fsynced)
before the call that made it returns (see :mod:`controller.store.sqlite.engine`)."""

from __future__ import annotations

from pathlib import Path

from controller.store.sql.store import SqlStore
from controller.store.sqlite.engine import SqliteEngine


class SqliteOrderStore(SqlStore):
    """The store on the SQLite file at ``path``; ``open()`` creates the folder and the file if
    missing and migrates the schema."""

    def __init__(self, path: str | Path) -> None:
        self._engine = SqliteEngine(Path(path))
        super().__init__(self._engine)

    @property
    def path(self) -> Path:
        return self._engine.path

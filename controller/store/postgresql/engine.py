"""PostgreSQL as the store's engine, through psycopg 3 and its connection pool.

:class:`PostgresEngine` keeps a pool of one connection for the store's worker thread (see
:class:`~controller.store.sql.worker.StoreWorker`): the pool connects in the background; once
the connection is lost (the database restarted, the network failed), each call that finds none
makes a new attempt, each bounded by the connect timeout, so the store goes on by itself once the
database answers again, while its callers see :class:`~controller.store.base.StoreUnavailable`
and try again with a growing wait (:mod:`controller.store.health`). The connection runs in
autocommit mode; a write is an explicit transaction (:class:`PostgresConnection`) that first
takes a transaction-scoped advisory lock of the line's schema, so the writes of one line are
serialised across every process that shares the database (a controller and its standby, say),
exactly as SQLite's ``BEGIN IMMEDIATE`` serialises them on one file: a history event's ``seq`` is
drawn and committed under that lock, so events become visible in ``seq`` order and a reader that
resumes after the last ``seq`` it saw misses none. ``COMMIT`` returns once the database has made
the transaction durable (the server's ``synchronous_commit``, on by default).

psycopg errors are translated to :class:`~controller.store.base.StoreError` (the statement is at
fault) or :class:`~controller.store.base.StoreUnavailable` (the database cannot answer now) here;
nothing above this module sees a psycopg type.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import NumericLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from controller.store.base import Fenced, StoreError, StoreUnavailable
from controller.store.postgresql.schema import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

# psycopg errors of the statement rather than of the database: trying again changes nothing
REFUSED = (
    psycopg.IntegrityError,
    psycopg.ProgrammingError,
    psycopg.DataError,
    psycopg.NotSupportedError,
    psycopg.InternalError,
)
_BUSY = (TransactionStatus.ACTIVE, TransactionStatus.INTRANS, TransactionStatus.INERROR)


# a session left idle inside a transaction (its client cut off mid-write) is ended by the server
# after this many seconds, and the line's write lock with it
IDLE_IN_TRANSACTION_SECONDS = 5.0


def session_options(idle_in_transaction: float = IDLE_IN_TRANSACTION_SECONDS) -> dict[str, Any]:
    """libpq connection parameters that notice a dead peer within seconds, not hours: TCP
    keepalives and a bound on unacknowledged data on the client, and the server ending a session
    that stays idle inside a transaction."""
    return {
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": 10_000,
        "options": f"-c idle_in_transaction_session_timeout={int(idle_in_transaction * 1000)}",
    }


def server_name(dsn: str) -> str:
    """Host, port and database of a DSN as messages name them, never its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(unreadable DSN)"
    host = info.get("host") or "local socket"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or '(default db)'}"


def lock_key(schema: str) -> int:
    """The advisory lock of a line's writes: a signed 64-bit number derived from its schema."""
    digest = hashlib.blake2b(f"linectl-store:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@functools.lru_cache(maxsize=1024)
def _placeholders(statement: str) -> str:
    """A statement with ``?`` placeholders in psycopg's ``%s`` style."""
    return statement.replace("%", "%%").replace("?", "%s")


class PostgresDialect:
    name = "postgresql"

    def json_text(self, column: str, key: str) -> str:
        return f"(({column})::jsonb ->> '{key}')"


POSTGRESQL = PostgresDialect()


class Row:
    """A result row readable by column name and by position, as SQLite's rows are."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    """psycopg row factory: :class:`Row` objects sharing one name index per result."""
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class _WholeNumbers(NumericLoader):
    """``numeric`` values (what ``SUM`` of integers gives) as ``int`` when they are whole."""

    def load(self, data: Any) -> Any:
        value = super().load(data)
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
            return int(value)
        return value


class PostgresConnection:
    """A psycopg connection (autocommit) as :class:`~controller.store.sql.db.Connection`."""

    dialect = POSTGRESQL

    def __init__(self, raw: psycopg.Connection[Any], where: str, key: int) -> None:
        self.raw = raw
        self._where = where
        self._key = key
        self.changes = 0  # rows changed through this connection
        # the lease term every write is checked against (None: writes are not fenced)
        self.fence_term: int | None = None

    def execute(self, statement: str, params: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        query = _placeholders(statement)
        cur = self._call(self.raw.execute, query, params)
        if not statement.lstrip()[:6].upper().startswith("SELECT") and cur.rowcount > 0:
            self.changes += cur.rowcount
        return cur

    def begin(self) -> None:
        # BEGIN and the line's write lock in one round trip: without parameters psycopg sends
        # the text as one simple query, which may hold several statements (never prepared, as
        # a prepared statement holds one); the key is a number of our own, not an input
        begin = f"BEGIN; SELECT pg_advisory_xact_lock({int(self._key)})"
        try:
            self._call(self.raw.execute, begin, None, prepare=False)
            if self.fence_term is not None:
                self._check_term(self.fence_term)
        except BaseException:
            if self.in_transaction:
                self._call(self.raw.execute, "ROLLBACK")
            raise

    def _check_term(self, term: int) -> None:
        """Under the write lock: the lease is still of ``term``, or the write is refused."""
        row = self._call(
            self.raw.execute, "SELECT term FROM controller_lease WHERE name = 'controller'"
        ).fetchone()
        held = None if row is None else int(row[0])
        if held != term:
            raise Fenced(
                f"{self._where}: the line's lease is at term {held}, this controller's is "
                f"{term}: another controller took over, the write is refused"
            )

    def commit(self) -> None:
        self._call(self.raw.execute, "COMMIT")

    def rollback(self) -> None:
        self._call(self.raw.execute, "ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status in _BUSY

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except REFUSED as exc:  # the statement itself is at fault: trying again changes nothing
            raise StoreError(f"{self._where}: {exc}") from exc
        except psycopg.Error as exc:  # connection lost, server shutting down, disk full: later
            raise StoreUnavailable(f"{self._where}: {exc}") from exc


class PostgresEngine:
    """One line's schema in a PostgreSQL database; see the module's docstring."""

    def __init__(self, dsn: str, schema: str, *, connect_timeout: float = 10.0) -> None:
        self.schema = schema
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._key = lock_key(schema)
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._conn: PostgresConnection | None = None
        self._fence_term: int | None = None

    @property
    def where(self) -> str:
        return f"order store postgresql {self._server()} schema {self.schema}"

    def _server(self) -> str:
        return server_name(self._dsn)

    # --- the engine protocol (worker thread) ----------------------------------------------

    def open(self) -> int:
        self._pool = ConnectionPool(
            self._dsn,
            min_size=1,
            max_size=1,
            open=False,
            kwargs=self._connect_kwargs(),
            configure=self._configure,
            timeout=self._connect_timeout,
            # no retries in the background: the next call's getconn() connects anew
            reconnect_timeout=0,
            name=f"linectl-store-{self.schema}",
        )
        try:
            self._pool.open(wait=True, timeout=self._connect_timeout)
        except PoolTimeout as exc:
            self._pool.close()
            self._pool = None
            raise StoreUnavailable(
                f"{self.where}: no connection within {self._connect_timeout:g} s ({exc})"
            ) from exc
        try:
            conn = self.connection()
            self._create_schema(conn)
            return migrate(conn, self.where)
        except BaseException:
            self.close()
            raise

    def connection(self) -> PostgresConnection:
        if self._pool is None:
            raise StoreError(f"{self.where} is closed")
        if self._conn is not None and (self._conn.raw.closed or self._conn.raw.broken):
            self._pool.putconn(self._conn.raw)  # the pool drops it and connects anew
            self._conn = None
        if self._conn is None:
            try:
                raw = self._pool.getconn(timeout=min(self._connect_timeout, 2.0))
            except PoolTimeout as exc:
                raise StoreUnavailable(f"{self.where}: no connection to the database") from exc
            self._conn = PostgresConnection(raw, self.where, self._key)
        self._conn.fence_term = self._fence_term
        return self._conn

    def fence_writes(self, term: int) -> None:
        """From now on every write is refused unless the line's lease is still of ``term``."""
        self._fence_term = term

    def changes(self, conn: Any) -> int:
        assert isinstance(conn, PostgresConnection)
        return conn.changes

    def close(self) -> None:
        pool, self._pool = self._pool, None
        conn, self._conn = self._conn, None
        if pool is None:
            return
        if conn is not None:
            pool.putconn(conn.raw)
        pool.close()

    # --- set-up ---------------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        """Each connection's settings. A connection attempt, the pool's reconnections included,
        gives up after the connect timeout (else psycopg waits 130 s for a server that takes the
        connection but never answers; libpq's shortest is 2 s), unless the DSN names its own."""
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": "linectl",
            "row_factory": _rows,
            **session_options(),
        }
        try:
            named = "connect_timeout" in psycopg.conninfo.conninfo_to_dict(self._dsn)
        except psycopg.Error:
            named = False  # the pool's connection attempts report the DSN's fault
        if not named:
            kwargs["connect_timeout"] = max(2, math.ceil(self._connect_timeout))
        return kwargs

    def _configure(self, raw: psycopg.Connection[Any]) -> None:
        """Each new connection: the line's schema first on the search path, whole numbers."""
        raw.adapters.register_loader("numeric", _WholeNumbers)
        raw.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    def _create_schema(self, conn: PostgresConnection) -> None:
        with conn.raw.transaction():
            conn.raw.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
            conn.raw.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

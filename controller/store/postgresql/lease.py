"""The line's controller lease in PostgreSQL (see :mod:`controller.store.lease`).

One row of ``controller_lease`` in the line's schema, changed only in a transaction that holds
the line's write lock (the advisory lock every store write of the line takes first), so taking
the lease over and a write of the former holder are strictly ordered: once the standby's new term
is committed, the former active's next write sees it and is refused. Expiry is reckoned by the
database's clock (``clock_timestamp()``), the one clock both controllers share.

The lease uses a connection of its own (psycopg's async connection), not the store's worker, so a
renewal never waits behind the store's queue. The connection asks the server to end a session
left idle inside a transaction and to probe an idle client often: a controller cut off from the
database in the middle of a write does not keep the line's write lock, and with it the standby's
takeover, waiting for the operating system to notice the dead connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from controller.store.base import StoreUnavailable
from controller.store.lease import Grant, LeaseHolder
from controller.store.postgresql.engine import lock_key, session_options

log = logging.getLogger(__name__)

T = TypeVar("T")


class PostgresLease:
    """The lease of the line whose store is ``schema`` in the database at ``dsn``."""

    def __init__(
        self,
        dsn: str,
        schema: str,
        *,
        instance: str,
        api_url: str,
        lease_seconds: float,
        timeout: float,
    ) -> None:
        self._dsn = dsn
        self._schema = schema
        self._instance = instance
        self._api_url = api_url
        self._seconds = lease_seconds
        self._timeout = timeout  # wall seconds one call may take, connecting included
        self._key = lock_key(schema)
        self._conn: psycopg.AsyncConnection[dict[str, Any]] | None = None

    @property
    def instance(self) -> str:
        return self._instance

    async def acquire(self) -> Grant | None:
        async def take(conn: psycopg.AsyncConnection[dict[str, Any]]) -> Grant | None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                cur = await conn.execute(
                    "SELECT term, instance, expires_at > clock_timestamp() AS live"
                    " FROM controller_lease WHERE name = 'controller' FOR UPDATE"
                )
                row = await cur.fetchone()
                assert row is not None, "the controller_lease row is created by the migration"
                if row["live"] and row["instance"] != self._instance:
                    return None
                term = int(row["term"]) + 1
                await conn.execute(
                    "UPDATE controller_lease SET term = %s, instance = %s, api_url = %s,"
                    " acquired_at = clock_timestamp(), renewed_at = clock_timestamp(),"
                    " expires_at = clock_timestamp() + make_interval(secs => %s)"
                    " WHERE name = 'controller'",
                    (term, self._instance, self._api_url, self._seconds),
                )
                await conn.execute(
                    "INSERT INTO controller_terms (term, instance, api_url, previous, started_at)"
                    " VALUES (%s, %s, %s, %s, clock_timestamp())",
                    (term, self._instance, self._api_url, row["instance"]),
                )
                return Grant(term, self._seconds, str(row["instance"]))

        return await self._call("take the lease", take)

    async def renew(self, term: int) -> Grant | None:
        async def extend(conn: psycopg.AsyncConnection[dict[str, Any]]) -> Grant | None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                cur = await conn.execute(
                    "UPDATE controller_lease SET renewed_at = clock_timestamp(),"
                    " expires_at = clock_timestamp() + make_interval(secs => %s)"
                    " WHERE name = 'controller' AND term = %s AND instance = %s"
                    " AND expires_at > clock_timestamp()",
                    (self._seconds, term, self._instance),
                )
                if cur.rowcount != 1:
                    return None
                return Grant(term, self._seconds, self._instance)

        return await self._call("renew the lease", extend)

    async def release(self, term: int) -> None:
        async def let_go(conn: psycopg.AsyncConnection[dict[str, Any]]) -> None:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                await conn.execute(
                    "UPDATE controller_lease SET expires_at = clock_timestamp()"
                    " WHERE name = 'controller' AND term = %s AND instance = %s",
                    (term, self._instance),
                )

        await self._call("release the lease", let_go)

    async def holder(self) -> LeaseHolder:
        async def read(conn: psycopg.AsyncConnection[dict[str, Any]]) -> LeaseHolder:
            cur = await conn.execute(
                "SELECT term, instance, api_url, acquired_at,"
                " extract(epoch FROM expires_at - clock_timestamp()) AS expires_in"
                " FROM controller_lease WHERE name = 'controller'"
            )
            row = await cur.fetchone()
            assert row is not None
            expires_in = row["expires_in"]
            return LeaseHolder(
                term=int(row["term"]),
                instance=str(row["instance"]),
                api_url=str(row["api_url"]),
                acquired_at=row["acquired_at"],
                expires_in=float("-inf") if expires_in is None else float(expires_in),
            )

        return await self._call("read the lease", read)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    # --- the connection -------------------------------------------------------------------

    async def _call(
        self, what: str, fn: Callable[[psycopg.AsyncConnection[dict[str, Any]]], Awaitable[T]]
    ) -> T:
        """``fn(conn)`` within the timeout; StoreUnavailable (and a new connection next time)
        when the database does not answer in time or the connection fails."""
        try:
            async with asyncio.timeout(self._timeout):
                conn = await self._connection()
                return await fn(conn)
        except (TimeoutError, psycopg.Error) as exc:
            await self._drop()
            reason = str(exc).strip() or f"no answer within {self._timeout:g} s"
            raise StoreUnavailable(f"cannot {what}: {reason}") from exc

    async def _connection(self) -> psycopg.AsyncConnection[dict[str, Any]]:
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        await self._drop()
        conn = await psycopg.AsyncConnection.connect(
            self._dsn,
            autocommit=True,
            row_factory=dict_row,
            application_name="linectl-lease",
            connect_timeout=max(1, int(self._timeout)),
            **session_options(self._seconds),
        )
        await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        self._conn = conn
        return conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

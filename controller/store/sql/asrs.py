"""The store's AS/RS commands (:mod:`controller.store.asrs`): plain functions run on the
store's worker thread, and :class:`SqlAsrsCommands`, the async part of the store over them.

Tables (migration 4 in :mod:`controller.store.sqlite.schema`): ``asrs_requests``,
``asrs_commands`` (``seq`` keeps the order they were written in), ``asrs_sequences`` (aisle ->
crane journal number handled) and ``asrs_meta`` (the command id namespace). Each write is one
transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from controller.store.asrs import (
    OPEN_COMMAND_STATES,
    OPEN_REQUEST_STATES,
    AsrsCommand,
    AsrsRequest,
    AsrsState,
    CommandKind,
    CommandState,
    RequestKind,
    RequestState,
)
from controller.store.sql.db import Connection, Row, transaction
from controller.store.sql.ops import iso
from controller.store.sql.worker import StoreWorker

MAX_PAGE = 1000

_REQUEST_COLUMNS = (
    "id, kind, tote, sku, aisle, location, purpose, order_id, due, deliver_from, deliver_until,"
    " priority, state, command_id, attempts, reason, created_at, updated_at"
)
_COMMAND_COLUMNS = (
    "command_id, aisle, kind, store_request, retrieve_request, store_tote, store_location,"
    " retrieve_tote, retrieve_location, state, reason, store_result, retrieve_result,"
    " created_at, updated_at"
)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _request(row: Row) -> AsrsRequest:
    return AsrsRequest(
        id=int(row["id"]),
        kind=RequestKind(row["kind"]),
        tote=row["tote"],
        sku=row["sku"],
        aisle=row["aisle"],
        location=row["location"],
        purpose=row["purpose"],
        order_id=row["order_id"],
        due=_dt(row["due"]),
        deliver_from=_dt(row["deliver_from"]),
        deliver_until=_dt(row["deliver_until"]),
        priority=int(row["priority"]),
        state=RequestState(row["state"]),
        command_id=row["command_id"],
        attempts=int(row["attempts"]),
        reason=row["reason"],
        created_at=_at(row["created_at"]),
        updated_at=_at(row["updated_at"]),
    )


def _command(row: Row) -> AsrsCommand:
    return AsrsCommand(
        command_id=row["command_id"],
        aisle=row["aisle"],
        kind=CommandKind(row["kind"]),
        store_request=row["store_request"],
        retrieve_request=row["retrieve_request"],
        store_tote=row["store_tote"],
        store_location=row["store_location"],
        retrieve_tote=row["retrieve_tote"],
        retrieve_location=row["retrieve_location"],
        state=CommandState(row["state"]),
        reason=row["reason"],
        store_result=row["store_result"],
        retrieve_result=row["retrieve_result"],
        created_at=_at(row["created_at"]),
        updated_at=_at(row["updated_at"]),
    )


def _in(states: Collection[str]) -> tuple[str, list[str]]:
    return ", ".join("?" for _ in states), [str(s) for s in states]


def read_last_sequences(conn: Connection) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in conn.execute("SELECT aisle, sequence FROM asrs_sequences")}


def read_state(conn: Connection) -> AsrsState:
    ns = conn.execute("SELECT value FROM asrs_meta WHERE key = 'namespace'").fetchone()
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM asrs_requests").fetchone()
    marks, rs = _in(OPEN_REQUEST_STATES)
    requests = [
        _request(r)
        for r in conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM asrs_requests WHERE state IN ({marks}) ORDER BY id",
            rs,
        )
    ]
    marks, cs = _in(OPEN_COMMAND_STATES)
    commands = [
        _command(r)
        for r in conn.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM asrs_commands WHERE state IN ({marks}) ORDER BY seq",
            cs,
        )
    ]
    turnover = {
        r[0]: int(r[1])
        for r in conn.execute(
            "SELECT sku, COUNT(*) FROM asrs_requests WHERE kind = 'retrieve' AND state = 'done'"
            " AND sku != '' GROUP BY sku"
        )
    }
    return AsrsState(
        namespace=str(ns[0]) if ns else "asrs",
        next_request_id=int(top[0]) + 1,
        requests=requests,
        commands=commands,
        last_sequences=read_last_sequences(conn),
        retrieves_by_sku=turnover,
    )


def write_changes(
    conn: Connection,
    requests: Sequence[AsrsRequest],
    commands: Sequence[AsrsCommand],
    sequences: Mapping[str, int],
) -> None:
    with transaction(conn):
        for r in requests:
            conn.execute(
                f"INSERT INTO asrs_requests ({_REQUEST_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET location = excluded.location,"
                " state = excluded.state, command_id = excluded.command_id,"
                " attempts = excluded.attempts, reason = excluded.reason,"
                " updated_at = excluded.updated_at",
                (
                    r.id,
                    r.kind.value,
                    r.tote,
                    r.sku,
                    r.aisle,
                    r.location,
                    r.purpose,
                    r.order_id,
                    _ts(r.due),
                    _ts(r.deliver_from),
                    _ts(r.deliver_until),
                    r.priority,
                    r.state.value,
                    r.command_id,
                    r.attempts,
                    r.reason,
                    iso(r.created_at),
                    iso(r.updated_at),
                ),
            )
        for c in commands:
            conn.execute(
                f"INSERT INTO asrs_commands (seq, {_COMMAND_COLUMNS})"
                " VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM asrs_commands),"
                " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (command_id) DO UPDATE SET state = excluded.state,"
                " reason = excluded.reason, store_result = excluded.store_result,"
                " retrieve_result = excluded.retrieve_result, updated_at = excluded.updated_at",
                (
                    c.command_id,
                    c.aisle,
                    c.kind.value,
                    c.store_request,
                    c.retrieve_request,
                    c.store_tote,
                    c.store_location,
                    c.retrieve_tote,
                    c.retrieve_location,
                    c.state.value,
                    c.reason,
                    c.store_result,
                    c.retrieve_result,
                    iso(c.created_at),
                    iso(c.updated_at),
                ),
            )
        for aisle, sequence in sequences.items():
            conn.execute(
                "INSERT INTO asrs_sequences (aisle, sequence) VALUES (?, ?)"
                " ON CONFLICT (aisle) DO UPDATE SET"
                " sequence = CASE WHEN excluded.sequence > asrs_sequences.sequence"
                " THEN excluded.sequence ELSE asrs_sequences.sequence END",
                (aisle, sequence),
            )


def read_tote_locations(conn: Connection) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute("SELECT tote, location FROM totes")}


def read_requests(conn: Connection, states: list[str] | None, limit: int) -> list[AsrsRequest]:
    where, args = "", list[str]()
    if states is not None:
        marks, args = _in(states)
        where = f" WHERE state IN ({marks})"
    sql = f"SELECT {_REQUEST_COLUMNS} FROM asrs_requests{where} ORDER BY id DESC LIMIT ?"
    return [_request(r) for r in conn.execute(sql, [*args, limit])]


def read_commands(conn: Connection, states: list[str] | None, limit: int) -> list[AsrsCommand]:
    where, args = "", list[str]()
    if states is not None:
        marks, args = _in(states)
        where = f" WHERE state IN ({marks})"
    sql = f"SELECT {_COMMAND_COLUMNS} FROM asrs_commands{where} ORDER BY seq DESC LIMIT ?"
    return [_command(r) for r in conn.execute(sql, [*args, limit])]


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    return limit


class SqlAsrsCommands:
    """Transport requests, crane commands and journal numbers on the store's writer."""

    def __init__(self, writer: StoreWorker) -> None:
        self._writer = writer

    async def load(self) -> AsrsState:
        return await self._writer.run(read_state)

    async def last_sequences(self) -> dict[str, int]:
        return await self._writer.run(read_last_sequences)

    async def save(
        self,
        requests: Sequence[AsrsRequest] = (),
        commands: Sequence[AsrsCommand] = (),
        sequences: Mapping[str, int] | None = None,
    ) -> None:
        await self._writer.run(write_changes, list(requests), list(commands), dict(sequences or {}))

    async def tote_locations(self) -> dict[str, str]:
        return await self._writer.run(read_tote_locations)

    async def requests(
        self, *, states: Collection[RequestState] | None = None, limit: int = 100
    ) -> list[AsrsRequest]:
        chosen = None if states is None else [str(s) for s in states]
        return await self._writer.run(read_requests, chosen, _limit(limit))

    async def commands(
        self, *, states: Collection[CommandState] | None = None, limit: int = 100
    ) -> list[AsrsCommand]:
        chosen = None if states is None else [str(s) for s in states]
        return await self._writer.run(read_commands, chosen, _limit(limit))

"""What only the PostgreSQL order store has: its schema created and migrated on open in a
database that other lines share, a database it cannot reach or loses, and a controller and its
standby writing to one line's schema at once. The store's contract on every engine is in
:mod:`tests.integration.test_store`.

Every test works in schemas of its own in the test PostgreSQL (see :mod:`tests.store_backends`);
the unreachable servers and the outage are made on loopback by the test itself.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from controller.orders.model import OrderIn, OrderStatus
from controller.store import CreateOutcome, StoreError, StoreUnavailable, open_store
from controller.store.inventory import InitialStock
from controller.store.postgresql.engine import lock_key
from controller.store.postgresql.schema import SCHEMA_VERSION
from controller.store.postgresql.store import PostgresOrderStore
from controller.store.sql.store import SqlStore
from kernel.config.model import StoreConfig
from tests.pg_relay import Relay
from tests.store_backends import StoreBackend, drop_schema, new_schema_name, postgres_dsn
from tests.store_sql import run_sql

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
WAIT = 10.0  # wall seconds that anything expected to happen on this machine may take
TABLES = {"orders", "events", "outbox", "stock", "reservations", "audit", "schema_version"}


def body(destination: str = "DHL", quantity: int = 1) -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "due_at": "2026-03-01T16:00:00Z",
            "destination": destination,
            "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": quantity}],
        }
    )


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[StoreBackend]:
    """A schema of this test's own in the test PostgreSQL, not yet created."""
    postgres_dsn()  # skips (fails under LINECTL_REQUIRE_POSTGRES=1) without a server
    backend = StoreBackend("postgresql", tmp_path)
    try:
        yield backend
    finally:
        backend.cleanup()


@pytest.fixture
def other_pg(tmp_path: Path) -> Iterator[StoreBackend]:
    """A second schema of this test's own in the same database."""
    postgres_dsn()
    backend = StoreBackend("postgresql", tmp_path)
    try:
        yield backend
    finally:
        backend.cleanup()


@asynccontextmanager
async def opened(*stores: SqlStore) -> AsyncIterator[None]:
    """The stores opened together, closed after."""
    try:
        await asyncio.gather(*(s.open() for s in stores))
        yield
    finally:
        for s in stores:
            await s.close()


def admin() -> psycopg.Connection[tuple[object, ...]]:
    """A connection of the test's own to the test database (autocommit)."""
    return psycopg.connect(postgres_dsn(), autocommit=True)


def tables(schema: str) -> set[str]:
    with admin() as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    return {str(r[0]) for r in rows}


def log_records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


# --- the schema -----------------------------------------------------------------------------


async def test_open_creates_the_schema_and_migrates_it_once(
    pg: StoreBackend, caplog: pytest.LogCaptureFixture
) -> None:
    assert tables(pg.schema) == set()
    caplog.set_level(logging.INFO, logger="controller.store")
    first = pg.new()
    async with opened(first):
        await first.create_order("A", body(), T0)
    assert tables(pg.schema) >= TABLES
    assert run_sql(pg, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    steps = [
        (vars(r)["from_version"], vars(r)["to_version"])
        for r in log_records(caplog, "order store schema migrated")
    ]
    assert steps == [(v, v + 1) for v in range(SCHEMA_VERSION)]  # each migration once

    caplog.clear()
    second = pg.new()
    async with opened(second):  # already at this release's version: nothing to migrate
        assert await second.get_order("A") is not None
    assert log_records(caplog, "order store schema migrated") == []
    [found] = log_records(caplog, "order store open")
    assert vars(found)["found_version"] == SCHEMA_VERSION


async def test_an_empty_schema_made_beforehand_is_migrated(pg: StoreBackend) -> None:
    with admin() as conn:  # as a database administrator would, granting it to the line
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg.schema)))
    store = pg.new()
    async with opened(store):
        outcome, _ = await store.create_order("A", body(), T0)
    assert outcome is CreateOutcome.CREATED
    assert run_sql(pg, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


async def test_a_schema_from_a_newer_release_is_refused_and_left_alone(pg: StoreBackend) -> None:
    with admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(pg.schema)))
    run_sql(pg, "CREATE TABLE schema_version (version BIGINT NOT NULL)")
    run_sql(pg, "INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    store = pg.new()
    with pytest.raises(StoreError, match="newer") as refused:
        await store.open()
    assert not isinstance(refused.value, StoreUnavailable)  # trying again changes nothing
    assert pg.schema in str(refused.value)
    assert tables(pg.schema) == {"schema_version"}
    assert run_sql(pg, "SELECT version FROM schema_version") == [(SCHEMA_VERSION + 1,)]
    with pytest.raises(StoreError, match="closed"):
        await store.get_order("A")


async def test_the_configuration_names_the_schema_or_the_line_does() -> None:
    dsn = SecretStr(postgres_dsn())
    named = new_schema_name()
    store = open_store(StoreConfig(backend="postgresql", dsn=dsn, db_schema=named))
    assert isinstance(store, PostgresOrderStore) and store.schema == named
    line_id = f"Line-{uuid.uuid4().hex[:8]}"
    by_line = open_store(StoreConfig(backend="postgresql", dsn=dsn), line_id=line_id)
    assert isinstance(by_line, PostgresOrderStore)
    assert by_line.schema == f"linectl_line_{line_id[5:]}"
    try:
        async with opened(store, by_line):
            await by_line.create_order("A", body(), T0)
            assert await store.get_order("A") is None
        assert tables(by_line.schema) >= TABLES
    finally:
        drop_schema(named)
        drop_schema(by_line.schema)


async def test_two_lines_in_one_database_never_see_each_others_orders_or_stock(
    pg: StoreBackend, other_pg: StoreBackend
) -> None:
    one, two = pg.new(), other_pg.new()
    async with opened(one, two):
        assert (await one.create_order("A", body("DHL"), T0))[0] is CreateOutcome.CREATED
        assert (await two.create_order("A", body("UPS"), T0))[0] is CreateOutcome.CREATED
        await one.create_order("ONLY-1", body(), T0)
        await two.record("A", "released", T0, status=OrderStatus.RELEASED)
        await one.inventory_initial_load([InitialStock("L1", "SKU-A", 5)], {}, T0)
        await two.inventory_initial_load([InitialStock("L1", "SKU-A", 9)], {}, T0)

        a1, a2 = await one.get_order("A"), await two.get_order("A")
        assert a1 is not None and a2 is not None
        assert (a1.destination, a1.status) == ("DHL", OrderStatus.ACCEPTED)
        assert (a2.destination, a2.status) == ("UPS", OrderStatus.RELEASED)
        assert await two.get_order("ONLY-1") is None
        assert [o.id for o in (await two.list_orders()).orders] == ["A"]
        assert [(e.order_id, e.type) for e in await two.events_after(0, 100)] == [
            ("A", "accepted"),
            ("A", "released"),
        ]
        assert await one.last_event_seq() == 2 and await two.last_event_seq() == 2
        assert [r.on_hand for r in await one.inventory_stock(location="L1")] == [5]
        assert [r.on_hand for r in await two.inventory_stock(location="L1")] == [9]


# --- a database the store cannot reach, or loses ----------------------------------------------


def closed_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port on loopback where connections are taken but never answered: a server that hangs."""
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes the handshakes; nothing ever reads or answers
        yield s.getsockname()[1]


@pytest.mark.parametrize("server", ["refusing", "silent"])
async def test_an_unreachable_database_fails_open_within_the_connect_timeout(
    server: str, silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port() if server == "refusing" else silent_port
    timeout = 1.0 if server == "refusing" else 2.0  # libpq waits at least 2 s for an answer
    password = f"pw-{uuid.uuid4().hex}"
    dsn = f"postgresql://linectl:{password}@127.0.0.1:{port}/line_db"
    store = PostgresOrderStore(dsn, "linectl_line_1", connect_timeout=timeout)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreUnavailable) as failed:
        async with asyncio.timeout(timeout + 3.0):  # the connect timeout, and time to give up
            await store.open()
    message = str(failed.value)
    assert f"127.0.0.1:{port}/line_db" in message and "linectl_line_1" in message
    assert password not in message and password not in store.where
    assert password not in caplog.text
    with pytest.raises(StoreError, match="closed"):
        await store.ping()


async def lock_waiter(conn: psycopg.Connection[tuple[object, ...]], key: int) -> int:
    """The server process that waits for the advisory lock ``key``, once one does."""
    async with asyncio.timeout(WAIT):
        while True:
            row = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            ).fetchone()
            if row is not None:
                return int(str(row[0]))
            await asyncio.sleep(0.01)


async def server_pid(store: SqlStore, backend: StoreBackend) -> int:
    """The server process that serves ``store``: while this test holds the line's write lock,
    a write of the store waits for it, and PostgreSQL names the process that waits."""
    key = lock_key(backend.schema)
    with admin() as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            write = asyncio.ensure_future(store.probe_write())
            pid = await lock_waiter(conn, key)
        await write  # the lock is free again
    return pid


async def terminate(pid: int) -> None:
    """End a server process as an administrator, or a restart of the server, would."""
    with admin() as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        async with asyncio.timeout(WAIT):
            while True:
                found = conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
                if found.fetchone() is None:
                    return
                await asyncio.sleep(0.01)


async def test_a_lost_connection_is_unavailable_once_then_the_store_connects_again(
    pg: StoreBackend,
) -> None:
    store = pg.new()
    async with opened(store):
        await store.create_order("A", body(), T0)
        first = await server_pid(store, pg)
        await terminate(first)
        with pytest.raises(StoreUnavailable, match=pg.schema):
            await store.get_order("A")
        assert await store.get_order("A") is not None  # a new connection, no reopen
        assert (await store.create_order("B", body(), T0))[0] is CreateOutcome.CREATED
        second = await server_pid(store, pg)
        assert second != first

        # lost in the middle of a write: the write fails and nothing of it is kept
        key = lock_key(pg.schema)
        with admin() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            write = asyncio.ensure_future(store.create_order("C", body(), T0))
            assert await lock_waiter(conn, key) == second
            await terminate(second)
        with pytest.raises(StoreUnavailable):
            await write
        assert await store.get_order("C") is None
        assert (await store.create_order("C", body(), T0))[0] is CreateOutcome.CREATED
        assert [o.id for o in (await store.list_orders()).orders] == ["A", "B", "C"]


async def test_through_an_outage_every_call_is_unavailable_then_the_store_goes_on(
    pg: StoreBackend,
) -> None:
    relay = Relay()
    await relay.mend()
    store = PostgresOrderStore(relay.dsn, pg.schema, connect_timeout=1.0)
    try:
        async with opened(store):
            await store.create_order("A", body(), T0)
            await relay.cut()
            for _ in range(2):  # the first on the lost connection, the next without one
                with pytest.raises(StoreUnavailable):
                    await store.create_order("B", body(), T0)
            await relay.mend()
            assert (await store.create_order("B", body(), T0))[0] is CreateOutcome.CREATED
            assert [o.id for o in (await store.list_orders()).orders] == ["A", "B"]
    finally:
        await relay.cut()


# --- a controller and its standby on one line's schema ----------------------------------------


async def test_creates_from_two_controllers_make_every_order_once(pg: StoreBackend) -> None:
    active, standby = pg.new(), pg.new()
    ids = [f"O-{i}" for i in range(120)]
    outcomes: dict[str, list[CreateOutcome]] = {i: [] for i in ids}

    async def create(store: SqlStore, order: list[str]) -> None:
        for k in range(0, len(order), 8):  # waves of creates: one transaction or two each
            wave = order[k : k + 8]
            for outcome, rec in await asyncio.gather(
                *(store.create_order(i, body(), T0) for i in wave)
            ):
                outcomes[rec.id].append(outcome)

    async with opened(active, standby):
        # both create every order, from opposite ends: their transactions interleave and meet
        await asyncio.gather(create(active, ids), create(standby, ids[::-1]))
    for i in ids:
        assert Counter(outcomes[i]) == {CreateOutcome.CREATED: 1, CreateOutcome.EXISTS: 1}, i
    rows = run_sql(pg, "SELECT id, seq FROM orders ORDER BY seq")
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert [r[1] for r in rows] == list(range(1, len(ids) + 1))  # arrival order: no gap, no tie
    per_order = run_sql(pg, "SELECT order_id, COUNT(*) FROM events GROUP BY order_id")
    assert sorted(per_order) == sorted((i, 1) for i in ids)


async def test_a_reader_paging_the_feed_misses_no_event_while_two_controllers_write(
    pg: StoreBackend,
) -> None:
    active, standby, reader = pg.new(), pg.new(), pg.new()
    seen: list[int] = []
    done = asyncio.Event()

    async def write(store: SqlStore, prefix: str) -> None:
        for i in range(60):
            order_id = f"{prefix}-{i % 3}"
            await store.record(order_id, "waiting", T0 + timedelta(seconds=i), data={"i": i})

    async def read() -> None:
        after = 0
        while True:
            finished = done.is_set()  # read before the page: a page after it sees every write
            page = await reader.events_after(after, 7)
            seen.extend(e.seq for e in page)
            if page:
                after = page[-1].seq
            elif finished:
                return
            else:
                await asyncio.sleep(0.002)

    async with opened(active, standby, reader):
        for n in range(3):
            await active.create_order(f"A-{n}", body(), T0)
            await standby.create_order(f"S-{n}", body(), T0)
        reading = asyncio.ensure_future(read())
        try:
            await asyncio.gather(write(active, "A"), write(standby, "S"))
        finally:
            done.set()
        async with asyncio.timeout(WAIT):
            await reading
    committed = [int(r[0]) for r in run_sql(pg, "SELECT seq FROM events ORDER BY seq")]
    assert len(committed) == 2 * 3 + 2 * 60
    assert seen == committed  # each once, in order, none skipped


async def test_controllers_opening_one_new_schema_together_all_open_and_one_migrates(
    pg: StoreBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.store")
    stores = [pg.new() for _ in range(4)]
    async with opened(*stores):
        for n, s in enumerate(stores):
            await s.create_order(f"O-{n}", body(), T0)
        for s in stores:
            assert len((await s.list_orders()).orders) == len(stores)
    steps = [
        (vars(r)["from_version"], vars(r)["to_version"])
        for r in log_records(caplog, "order store schema migrated")
    ]
    assert sorted(steps) == [(v, v + 1) for v in range(SCHEMA_VERSION)]  # each by one store
    assert len(log_records(caplog, "order store open")) == len(stores)
    assert run_sql(pg, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]

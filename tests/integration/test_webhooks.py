"""Webhook delivery from the outbox to real HTTP receivers (uvicorn on loopback), on a real store
on every engine (SQLite, PostgreSQL). Backoff runs on a fast ScaledClock; every wait is on a queue
or an event."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from controller.orders.model import OrderIn, OrderStatus
from controller.store.outbox import Delivery, DeliveryState, FanOutTarget
from controller.store.sql.store import SqlStore
from controller.webhooks.delivery import WebhookDispatcher
from controller.webhooks.signing import verify
from kernel.clock import ScaledClock
from kernel.config.model import WebhooksConfig
from kernel.metrics import Metrics
from tests.api.conftest import b2c_body, uvicorn_server
from tests.store_backends import StoreBackend
from tests.store_sql import run_sql

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"linectl-test-secret-0123456789ab").decode()
CALLBACK_SECRET = "callback-secret-raw"
WAIT = 10.0  # wall seconds any expected delivery may take


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


@dataclass
class Receiver:
    """A webhook receiver app; ``status`` decides the answer to the n-th request of a path."""

    status: Callable[[str, int], int] = lambda path, n: 204
    received: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    counts: dict[str, int] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def hook(path: str, request: Request) -> Response:
            n = self.counts[path] = self.counts.get(path, 0) + 1
            body = await request.body()
            self.received.put_nowait(Received(path, dict(request.headers), body))
            return Response(status_code=self.status(path, n))

        return app

    async def take(self, n: int) -> list[Received]:
        async with asyncio.timeout(WAIT):
            return [await self.received.get() for _ in range(n)]


@dataclass
class Outcomes:
    """What the dispatcher reports after every attempt."""

    queue: asyncio.Queue[tuple[Delivery, DeliveryState]] = field(default_factory=asyncio.Queue)

    def __call__(self, delivery: Delivery, state: DeliveryState) -> None:
        self.queue.put_nowait((delivery, state))

    async def take(self, n: int) -> list[tuple[Delivery, DeliveryState]]:
        async with asyncio.timeout(WAIT):
            return [await self.queue.get() for _ in range(n)]


def config(*targets: dict[str, Any], **changes: Any) -> WebhooksConfig:
    settings: dict[str, Any] = {
        "targets": list(targets),
        "callback_secret": CALLBACK_SECRET,
        "max_attempts": 4,
        "initial_backoff": 0.5,
        "max_backoff": 2.0,
        "timeout": 2.0,
        "concurrency": 2,
        # the receivers of these tests listen on loopback, without TLS
        "allowed_schemes": ["http"],
        "allow_loopback": True,
    }
    settings.update(changes)
    return WebhooksConfig(**settings)


@asynccontextmanager
async def running(
    cfg: WebhooksConfig, store: SqlStore, outcomes: Outcomes, clock: ScaledClock
) -> AsyncIterator[Metrics]:
    metrics = Metrics()
    dispatcher = WebhookDispatcher(cfg, store, clock, metrics, observer=outcomes)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(dispatcher.run(), name="webhooks")
        try:
            yield metrics
        finally:
            task.cancel()


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """An open store on each engine in turn."""
    return any_store


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(time_scale=100)


async def add_order(store: SqlStore, order_id: str, **changes: Any) -> None:
    await store.create_order(order_id, OrderIn.model_validate(b2c_body(**changes)), T0)


def deliveries(metrics: Metrics, outcome: str) -> float | None:
    return metrics.registry.get_sample_value(
        "linectl_webhook_deliveries_total", {"outcome": outcome}
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def outbox_states(backend: StoreBackend) -> list[tuple[str, str, int]]:
    """The outbox's rows as another connection sees them (committed)."""
    return [
        (url, state, int(attempts))
        for url, state, attempts in run_sql(
            backend, "SELECT url, state, attempts FROM outbox ORDER BY id"
        )
    ]


async def test_delivery_is_signed_and_carries_the_event_document(
    store: SqlStore, store_backend: StoreBackend, clock: ScaledClock
) -> None:
    receiver, outcomes = Receiver(), Outcomes()
    async with uvicorn_server(receiver.app()) as url:
        cfg = config({"url": f"{url}/hooks", "secret": SECRET})
        async with running(cfg, store, outcomes, clock) as metrics:
            await add_order(store, "A")
            (got,) = await receiver.take(1)
            [(_, state)] = await outcomes.take(1)
    assert state is DeliveryState.DELIVERED
    assert verify(SECRET, got.headers, got.body, now=time.time()) == "evt_1"
    assert got.headers["content-type"] == "application/json"
    assert got.document == {
        "seq": 1,
        "order_id": "A",
        "type": "accepted",
        "status": "accepted",
        "at": T0.isoformat(),
        "data": {},
    }
    assert deliveries(metrics, "delivered") == 1
    assert [s for _, s, _ in outbox_states(store_backend)] == ["delivered"]


async def test_event_types_filter_a_target(store: SqlStore, clock: ScaledClock) -> None:
    receiver, outcomes = Receiver(), Outcomes()
    async with uvicorn_server(receiver.app()) as url:
        cfg = config({"url": f"{url}/rel", "secret": SECRET, "event_types": ["released"]})
        async with running(cfg, store, outcomes, clock):
            await add_order(store, "A")
            await store.record("A", "released", T0, status=OrderStatus.RELEASED)
            (got,) = await receiver.take(1)
            await outcomes.take(1)
    assert got.document["type"] == "released"
    assert receiver.received.empty()


async def test_flaky_receiver_gets_the_event_after_retries_with_the_same_id(
    store: SqlStore, store_backend: StoreBackend, clock: ScaledClock
) -> None:
    receiver = Receiver(status=lambda path, n: 503 if n <= 2 else 200)
    outcomes = Outcomes()
    async with uvicorn_server(receiver.app()) as url:
        cfg = config({"url": f"{url}/flaky", "secret": SECRET})
        async with running(cfg, store, outcomes, clock) as metrics:
            await add_order(store, "A")
            attempts = await receiver.take(3)
            states = [s for _, s in await outcomes.take(3)]
    assert states == [DeliveryState.PENDING, DeliveryState.PENDING, DeliveryState.DELIVERED]
    assert {a.headers["webhook-id"] for a in attempts} == {"evt_1"}
    for a in attempts:
        assert verify(SECRET, a.headers, a.body, now=time.time()) == "evt_1"
    assert deliveries(metrics, "retry") == 2
    assert outbox_states(store_backend)[0][1:] == ("delivered", 3)


async def test_a_down_receiver_does_not_delay_another_and_its_rows_go_dead(
    store: SqlStore, store_backend: StoreBackend, clock: ScaledClock
) -> None:
    receiver, outcomes = Receiver(), Outcomes()
    down = f"http://127.0.0.1:{closed_port()}/down"
    async with uvicorn_server(receiver.app()) as url:
        cfg = config({"url": down, "secret": SECRET}, {"url": f"{url}/up", "secret": SECRET})
        async with running(cfg, store, outcomes, clock) as metrics:
            for oid in ("A", "B", "C"):
                await add_order(store, oid)
            got = await receiver.take(3)
            # 3 deliveries to the healthy receiver, 3 x max_attempts attempts at the dead one
            results = await outcomes.take(3 + 3 * 4)
    assert sorted(g.document["seq"] for g in got) == [1, 2, 3]
    dead = [d for d, s in results if s is DeliveryState.DEAD]
    assert sorted(d.event.seq for d in dead) == [1, 2, 3]
    assert all(d.url == down and d.attempts == 3 for d in dead)
    assert deliveries(metrics, "dead") == 3
    states = {(u.rsplit("/", 1)[-1], s, n) for u, s, n in outbox_states(store_backend)}
    assert states == {("up", "delivered", 1), ("down", "dead", 4)}


async def test_a_hanging_receiver_does_not_hold_up_another(
    store: SqlStore, clock: ScaledClock
) -> None:
    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the client gives up
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    hanging = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hang"
    receiver, outcomes = Receiver(), Outcomes()
    try:
        async with uvicorn_server(receiver.app()) as url:
            cfg = config(
                {"url": hanging, "secret": SECRET},
                {"url": f"{url}/up", "secret": SECRET},
                timeout=3.0,
                concurrency=1,
            )
            async with running(cfg, store, outcomes, clock):
                started = time.monotonic()
                for oid in ("A", "B", "C", "D"):
                    await add_order(store, oid)
                await receiver.take(4)
                # all four arrived while the hanging receiver's first attempt still waits
                assert time.monotonic() - started < 3.0
                delivered = await outcomes.take(4)
                assert {s for _, s in delivered} == {DeliveryState.DELIVERED}
    finally:
        server.close()
        await server.wait_closed()


async def test_callback_url_gets_only_its_orders_events(
    store: SqlStore, clock: ScaledClock
) -> None:
    receiver, outcomes = Receiver(), Outcomes()
    async with uvicorn_server(receiver.app()) as url, running(config(), store, outcomes, clock):
        await add_order(store, "A", callback_url=f"{url}/cb/a")
        await add_order(store, "B", callback_url=f"{url}/cb/b")
        await add_order(store, "C")  # no callback: no delivery
        await store.record("B", "released", T0, status=OrderStatus.RELEASED)
        await store.record("A", "released", T0, status=OrderStatus.RELEASED)
        got = await receiver.take(4)
        await outcomes.take(4)
    by_path: dict[str, list[tuple[str, str]]] = {}
    for g in sorted(got, key=lambda g: g.document["seq"]):
        by_path.setdefault(g.path, []).append((g.document["order_id"], g.document["type"]))
        assert verify(CALLBACK_SECRET, g.headers, g.body, now=time.time())
    assert by_path == {
        "cb/a": [("A", "accepted"), ("A", "released")],
        "cb/b": [("B", "accepted"), ("B", "released")],
    }


async def test_outbox_survives_a_restart(store_backend: StoreBackend, clock: ScaledClock) -> None:
    up = asyncio.Event()
    receiver = Receiver(status=lambda path, n: 200 if up.is_set() else 503)
    async with uvicorn_server(receiver.app()) as url:
        cfg = config({"url": f"{url}/r", "secret": SECRET}, max_attempts=50, max_backoff=1.0)
        first = store_backend.new()
        await first.open()
        try:
            outcomes = Outcomes()
            async with running(cfg, first, outcomes, clock):
                await add_order(first, "A")
                [(_, state)] = await outcomes.take(1)
                assert state is DeliveryState.PENDING  # failed once, retry scheduled
            await add_order(first, "B")  # written while no dispatcher runs
        finally:
            await first.close()

        up.set()
        second = store_backend.new()
        await second.open()
        try:
            outcomes = Outcomes()
            async with running(cfg, second, outcomes, clock):
                results = await outcomes.take(2)
                assert {s for _, s in results} == {DeliveryState.DELIVERED}
                assert await second.pending_deliveries() == 0
        finally:
            await second.close()
    delivered = [r for r in _drain(receiver.received) if r.headers["webhook-id"]]
    ids = [r.headers["webhook-id"] for r in delivered]
    assert set(ids) == {"evt_1", "evt_2"}
    assert ids.count("evt_2") == 1  # fanned out once, delivered once
    assert [(s, n > 1) for _, s, n in outbox_states(store_backend)] == [
        ("delivered", True),
        ("delivered", False),
    ]


def _drain(queue: asyncio.Queue[Received]) -> list[Received]:
    out: list[Received] = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_backoff_grows_exponentially_with_jitter_up_to_the_ceiling() -> None:
    cfg = config(initial_backoff=1.0, max_backoff=300.0)
    dispatcher = WebhookDispatcher(cfg, None, ScaledClock(), Metrics())  # type: ignore[arg-type]
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0), (10, 300.0), (60, 300.0)]:
        delays = [dispatcher.backoff(attempts) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


async def test_fan_out_is_idempotent_and_the_cursor_is_durable(
    store: SqlStore,
) -> None:
    target = FanOutTarget("http://127.0.0.1:9/t", frozenset({"released"}))
    await add_order(store, "A")
    quiet = await store.fan_out([target], callbacks=True, at=T0, limit=100)
    assert (quiet.events, quiet.deliveries, quiet.cursor) == (1, 0, 1)
    assert await store.feed_cursor("webhooks") == 0  # nothing matched: no commit needed
    await store.record("A", "released", T0, status=OrderStatus.RELEASED)
    busy = await store.fan_out([target], callbacks=True, at=T0, limit=100, after=quiet.cursor)
    assert (busy.events, busy.deliveries, busy.cursor) == (1, 1, 2)
    assert await store.feed_cursor("webhooks") == 2
    again = await store.fan_out([target], callbacks=True, at=T0, limit=100)
    assert (again.events, again.deliveries) == (0, 0)
    assert await store.pending_deliveries() == 1

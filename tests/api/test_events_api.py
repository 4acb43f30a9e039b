"""``GET /v1/events`` over real HTTP (uvicorn on loopback) on a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import create_app, routes_events
from controller.orders.model import OrderIn, OrderStatus
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from tests.api.conftest import READER, FakeLine, auth, b2c_body, line_with_api, uvicorn_server

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
WAIT = 5.0  # wall seconds any expected message may take


@dataclass(frozen=True)
class Message:
    id: str | None
    event: str | None
    data: dict[str, Any] | None
    comments: tuple[str, ...]


async def messages(response: httpx.Response) -> AsyncIterator[Message]:
    """Parse a ``text/event-stream`` into messages (comment-only blocks included)."""
    fields: dict[str, str] = {}
    comments: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            data = fields.get("data")
            yield Message(
                fields.get("id"),
                fields.get("event"),
                json.loads(data) if data else None,
                tuple(comments),
            )
            fields, comments = {}, []
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def next_events(stream: AsyncIterator[Message], n: int) -> list[Message]:
    """The next ``n`` messages that carry an event (skipping comments and ``retry``)."""
    out: list[Message] = []
    async with asyncio.timeout(WAIT):
        while len(out) < n:
            msg = await anext(stream)
            if msg.id is not None:
                out.append(msg)
    return out


def order(**changes: Any) -> OrderIn:
    return OrderIn.model_validate(b2c_body(**changes))


async def add_order(store: SqliteOrderStore, order_id: str) -> None:
    await store.create_order(order_id, order(), T0)


async def release(store: SqliteOrderStore, order_id: str) -> None:
    await store.record(order_id, "released", T0, status=OrderStatus.RELEASED, data={"robot": "R1"})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def line(reference_line: LineConfig) -> LineConfig:
    return line_with_api(reference_line)


async def open_store(path: Path) -> SqliteOrderStore:
    store = SqliteOrderStore(path)
    await store.open()
    return store


async def test_events_stream_in_order_with_ids_then_live(
    db: Path, line: LineConfig, manual_clock: ManualClock
) -> None:
    store = await open_store(db)
    try:
        await add_order(store, "A")
        await add_order(store, "B")
        await release(store, "A")
        backend = FakeLine(line, store, manual_clock)
        async with (
            uvicorn_server(create_app(backend)) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events", params={"after": 0}) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = messages(response)
            first = await next_events(stream, 3)
            assert [(m.id, m.event) for m in first] == [
                ("1", "accepted"),
                ("2", "accepted"),
                ("3", "released"),
            ]
            assert first[2].data is not None
            assert first[2].data == {
                "seq": 3,
                "order_id": "A",
                "type": "released",
                "status": "released",
                "at": T0.isoformat(),
                "data": {"robot": "R1"},
            }
            await release(store, "B")  # arrives live, through the store's signal
            (live,) = await next_events(stream, 1)
            assert (live.id, live.event, live.data and live.data["order_id"]) == (
                "4",
                "released",
                "B",
            )
    finally:
        await store.close()


async def test_last_event_id_resumes_right_after_it_and_wins_over_after(
    db: Path, line: LineConfig, manual_clock: ManualClock
) -> None:
    store = await open_store(db)
    try:
        for oid in ("A", "B", "C"):
            await add_order(store, oid)
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events?after=0", headers={"Last-Event-ID": "2"}) as response,
        ):
            (msg,) = await next_events(messages(response), 1)
            assert msg.id == "3"
    finally:
        await store.close()


async def test_without_a_position_the_stream_starts_with_the_next_event(
    db: Path, line: LineConfig, manual_clock: ManualClock
) -> None:
    store = await open_store(db)
    try:
        await add_order(store, "OLD")
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events") as response,
        ):
            stream = messages(response)
            await anext(stream)  # the opening block: the stream is registered
            await add_order(store, "NEW")
            (msg,) = await next_events(stream, 1)
            assert msg.data is not None
            assert msg.data["order_id"] == "NEW"
    finally:
        await store.close()


async def test_resume_across_a_restart_loses_and_repeats_nothing(
    db: Path, line: LineConfig, manual_clock: ManualClock
) -> None:
    seen: list[int] = []
    store = await open_store(db)
    try:
        await add_order(store, "A")
        await add_order(store, "B")
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events?after=0") as response,
        ):
            seen += [int(m.id or 0) for m in await next_events(messages(response), 2)]
    finally:
        await store.close()

    # written while nobody listens, by a store opened afresh on the same file
    store = await open_store(db)
    try:
        await release(store, "A")
        await add_order(store, "C")
    finally:
        await store.close()

    store = await open_store(db)
    try:
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events", headers={"Last-Event-ID": str(seen[-1])}) as resp,
        ):
            stream = messages(resp)
            resumed = await next_events(stream, 2)
            seen += [int(m.id or 0) for m in resumed]
            assert [m.event for m in resumed] == ["released", "accepted"]
            await release(store, "B")
            seen += [int(m.id or 0) for m in await next_events(stream, 1)]
    finally:
        await store.close()
    assert seen == [1, 2, 3, 4, 5]


async def test_order_id_filter(db: Path, line: LineConfig, manual_clock: ManualClock) -> None:
    store = await open_store(db)
    try:
        await add_order(store, "A")
        await add_order(store, "B")
        await release(store, "B")
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events", params={"after": 0, "order_id": "B"}) as response,
        ):
            stream = messages(response)
            past = await next_events(stream, 2)
            assert [(m.id, m.event) for m in past] == [("2", "accepted"), ("3", "released")]
            await release(store, "A")  # another order's event: filtered out
            await store.record("B", "picking", T0, status=OrderStatus.PICKING)
            (live,) = await next_events(stream, 1)
            assert (live.id, live.event) == ("5", "picking")
    finally:
        await store.close()


async def test_heartbeat_comments_while_idle(
    db: Path, line: LineConfig, manual_clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_events, "HEARTBEAT_SECONDS", 0.05)
    store = await open_store(db)
    try:
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
            http.stream("GET", "/v1/events") as response,
        ):
            stream = messages(response)
            async with asyncio.timeout(WAIT):
                while "heartbeat" not in (await anext(stream)).comments:
                    pass
    finally:
        await store.close()


async def test_reads_closed_and_no_token_is_401(
    db: Path, line: LineConfig, manual_clock: ManualClock
) -> None:
    store = await open_store(db)
    try:
        async with (
            uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            response = await http.get("/v1/events")
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
            assert "orders:read" in response.json()["detail"]
            bad = await http.get("/v1/events", headers={**auth(READER), "Last-Event-ID": "x"})
            assert bad.status_code == 422
    finally:
        await store.close()


async def test_open_reads_need_no_token_and_disconnects_end_the_stream(
    db: Path,
    reference_line: LineConfig,
    manual_clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = asyncio.Event()
    closed = asyncio.Event()
    original = routes_events.event_stream

    async def observed(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        opened.set()
        try:
            async for chunk in original(*args, **kwargs):
                yield chunk
        finally:
            closed.set()

    monkeypatch.setattr(routes_events, "event_stream", observed)
    store = await open_store(db)
    line = line_with_api(reference_line, reads_open=True)
    try:
        async with uvicorn_server(create_app(FakeLine(line, store, manual_clock))) as url:
            async with (
                httpx.AsyncClient(base_url=url) as http,
                http.stream("GET", "/v1/events?after=0") as response,
            ):
                assert response.status_code == 200
                await add_order(store, "A")
                await next_events(messages(response), 1)
                assert opened.is_set() and not closed.is_set()
            # the client went away: the server closes the stream, nothing is left waiting
            async with asyncio.timeout(WAIT):
                await closed.wait()
    finally:
        await store.close()

"""The API over real HTTP: uvicorn on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import httpx
import pytest

from api import create_app
from controller.app.http import ApiServer
from tests.api.conftest import READER, WRITER, FakeLine, auth, b2c_body, uvicorn_server


@pytest.fixture
async def http(backend: FakeLine) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        uvicorn_server(create_app(backend)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as client,
    ):
        yield client


async def test_orders_over_http(http: httpx.AsyncClient, backend: FakeLine) -> None:
    responses = await asyncio.gather(
        *(http.put("/v1/orders/W-1", json=b2c_body(), headers=auth(WRITER)) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len(backend.accepted) == 1

    r = await http.get("/v1/orders/W-1", headers=auth(READER))
    assert r.status_code == 200
    assert r.json()["history"][0]["type"] == "accepted"

    r = await http.get("/readyz")
    assert r.status_code == 200


async def test_streamed_oversized_body_over_http(
    http: httpx.AsyncClient, backend: FakeLine
) -> None:
    chunk = b"[" * 4096

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(backend.config.api.max_body_bytes // len(chunk) + 4):
            yield chunk

    r = await http.put(
        "/v1/orders/BIG-1",
        content=stream(),
        headers={**auth(WRITER), "Content-Type": "application/json"},
    )
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"

    # the server is still healthy and the connection pool still usable
    r = await http.get("/v2/missing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    r = await http.put("/v1/orders/BIG-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 201


async def test_a_stopped_api_server_gives_its_frozen_heap_back(backend: FakeLine) -> None:
    """The running service exempts its start-up objects from garbage collection; once its API
    stops they are collectable again, so a process that starts services again and again (a
    test run) does not keep every one of them."""
    assert gc.get_freeze_count() == 0
    for _ in range(2):
        server = ApiServer(create_app(backend), "127.0.0.1", 0)
        started = asyncio.Event()
        task = asyncio.create_task(server.serve(started))
        await asyncio.wait_for(started.wait(), 10)
        assert gc.get_freeze_count() > 0
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/livez")).status_code == 200
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert gc.get_freeze_count() == 0

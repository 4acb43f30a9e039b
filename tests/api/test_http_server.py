"""The API over real HTTP: uvicorn on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from api import create_app
from controller.app.http import ApiListener, ApiServer
from kernel.ports import CannotListen, PortInUse
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


# --- a port that cannot be listened on ----------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


async def test_the_api_on_a_port_in_use(
    taken_port: int, backend: FakeLine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PortInUse) as caught:
        async with ApiListener("127.0.0.1", taken_port):
            pass
    assert str(caught.value) == (
        f"port {taken_port} on 127.0.0.1 is in use: the API cannot listen there"
    )
    server = ApiServer(create_app(backend), "127.0.0.1", taken_port, freeze_heap=False)
    with pytest.raises(PortInUse):
        await asyncio.wait_for(server.serve(), 10)
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert logged == [], [r.getMessage() for r in logged]


async def test_the_api_on_a_listener_bound_before_it_serves(backend: FakeLine) -> None:
    async with ApiListener("127.0.0.1", 0) as listener:
        assert listener.port > 0 and listener.sockets
        with pytest.raises(PortInUse):  # the port is held from here on
            ApiListener("127.0.0.1", listener.port).open()
        server = ApiServer(
            create_app(backend), "127.0.0.1", listener.port, freeze_heap=False, listener=listener
        )
        started = asyncio.Event()
        task = asyncio.create_task(server.serve(started))
        await asyncio.wait_for(started.wait(), 10)
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/livez")).status_code == 200
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_host_not_on_this_machine_cannot_be_listened_on() -> None:
    # TEST-NET-1 (RFC 5737): never an address of this machine
    with pytest.raises(CannotListen) as caught:
        ApiListener("192.0.2.1", 0).open()
    assert not isinstance(caught.value, PortInUse)
    assert str(caught.value).startswith("the API cannot listen on 192.0.2.1:0: ")

"""Bearer tokens and scopes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from api import create_app
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.config.model import ApiConfig, ApiToken, LineConfig
from tests.api.conftest import (
    ADMIN,
    READER,
    WRITER,
    FakeLine,
    asgi_client,
    auth,
    b2c_body,
    line_with_api,
)

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
)
async def test_write_without_a_bearer_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    r = await client.put("/v1/orders/A-1", json=b2c_body(), headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "orders:write" in r.json()["detail"]


async def test_invalid_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/orders/A-1", json=b2c_body(), headers=auth("wrong-token-xxxxxxxx"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


async def test_missing_scope_is_403(client: httpx.AsyncClient, backend: FakeLine) -> None:
    r = await client.put("/v1/orders/A-1", json=b2c_body(), headers=auth(READER))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert "orders:write" in r.json()["detail"]
    assert await backend.store.get_order("A-1") is None

    r = await client.put("/v1/orders/A-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 201
    r = await client.get("/v1/orders/A-1", headers=auth(WRITER))
    assert r.status_code == 403
    r = await client.get("/v1/orders/A-1", headers=auth(ADMIN))
    assert r.status_code == 200


async def test_reads_need_a_token_unless_open(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/orders")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM


async def test_auth_comes_before_the_body_is_judged(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/v1/orders/A-1", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 401


async def test_reads_open_and_no_tokens_configured(
    tmp_path: Path, reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    store = SqliteOrderStore(tmp_path / "open.db")
    await store.open()
    try:
        config = line_with_api(reference_line, tokens=[], reads_open=True)
        backend = FakeLine(config, store, manual_clock)
        async with asgi_client(create_app(backend)) as client:
            r = await client.get("/v1/orders")
            assert r.status_code == 200
            assert r.json() == {"orders": [], "next_cursor": None}

            r = await client.put("/v1/orders/A-1", json=b2c_body(), headers=auth(ADMIN))
            assert r.status_code == 401
            detail = r.json()["detail"]
            assert "api.tokens" in detail and "LINECTL_API_TOKEN" in detail
    finally:
        await store.close()


async def test_reads_need_a_token_by_default(
    tmp_path: Path, reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """A line file that says nothing about reads keeps orders, events and stock private."""
    assert ApiConfig().reads_open is False
    store = SqliteOrderStore(tmp_path / "default.db")
    await store.open()
    try:
        config = reference_line.with_overrides(
            api=ApiConfig(tokens=[ApiToken(token=READER, scopes=["orders:read"])])
        )
        async with asgi_client(create_app(FakeLine(config, store, manual_clock))) as client:
            for path in ("/v1/orders", "/v1/inventory", "/v1/line", "/v1/orders/A-1"):
                r = await client.get(path)
                assert r.status_code == 401, path
                assert r.headers["content-type"] == PROBLEM
            r = await client.get("/v1/orders", headers=auth(READER))
            assert r.status_code == 200
    finally:
        await store.close()

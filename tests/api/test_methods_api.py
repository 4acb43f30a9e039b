"""HEAD on every GET route and 405 with every allowed method, over real HTTP, for every path
of the OpenAPI document."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api import create_app, routes_events
from api.sse import MEDIA_TYPE
from controller.orders.model import OrderIn
from tests.api.conftest import ADMIN, FakeLine, auth, b2c_body, uvicorn_server

ORDER = "HEAD-1"
# a value for each path parameter of the document: existing resources where the line has them
PATH_VALUES = {
    "order_id": ORDER,
    "station_id": "CH20",
    "serial": "R01",
    "conveyor_id": "C1",
    "zone_id": "Z1",
    "command": "pause",
    "tote": "T-1",
    "task_id": "RP-1",
}
METHODS = ("get", "put", "post", "patch", "delete")
WAIT = 5.0  # wall seconds a HEAD answer may take


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "X-1"), path)


@pytest.fixture
async def served(backend: FakeLine) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    await backend.store.create_order(
        ORDER, OrderIn.model_validate(b2c_body()), backend.clock.utcnow()
    )
    async with (
        uvicorn_server(create_app(backend)) as url,
        httpx.AsyncClient(base_url=url, headers=auth(ADMIN), timeout=WAIT) as http,
    ):
        doc = (await http.get("/openapi.json")).json()
        yield http, doc


def get_paths(doc: dict[str, Any]) -> list[str]:
    return [p for p, item in doc["paths"].items() if "get" in item]


def is_stream(doc: dict[str, Any], path: str) -> bool:
    responses = doc["paths"][path]["get"]["responses"]
    return any(MEDIA_TYPE in r.get("content", {}) for r in responses.values())


async def test_head_answers_every_get_like_get_without_a_body(
    served: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, doc = served
    paths = get_paths(doc)
    assert "/v1/orders/{order_id}" in paths and "/v1/line" in paths
    assert is_stream(doc, "/v1/events")
    for path in paths:
        url = concrete(path)
        head = await http.head(url)
        assert head.content == b"", url
        if is_stream(doc, path):  # endless: a GET would never end (see below)
            assert head.status_code == 200, url
            assert head.headers["content-type"].startswith(MEDIA_TYPE), url
            continue
        get = await http.get(url)
        assert head.status_code == get.status_code, url
        # /metrics: its figures may move between the two requests
        same = ("content-type", "www-authenticate", "retry-after", "allow")
        for name in same if path == "/metrics" else (*same, "content-length"):
            assert head.headers.get(name) == get.headers.get(name), (url, name)
    # without a token, the same refusal
    head = await http.head(f"/v1/orders/{ORDER}", headers={"Authorization": ""})
    assert head.status_code == 401 and head.headers["content-type"] == "application/problem+json"
    assert head.headers["www-authenticate"].startswith("Bearer")


async def test_head_on_the_event_stream_ends_after_the_headers(
    backend: FakeLine, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = asyncio.Event()
    original = routes_events.event_stream

    async def observed(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        try:
            async for chunk in original(*args, **kwargs):
                yield chunk
        finally:
            closed.set()

    monkeypatch.setattr(routes_events, "event_stream", observed)
    async with (
        uvicorn_server(create_app(backend)) as url,
        httpx.AsyncClient(base_url=url, headers=auth(ADMIN), timeout=WAIT) as http,
    ):
        head = await http.head("/v1/events", params={"after": 0})
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""
        # the stream's producer stopped: nothing is left waiting for events
        async with asyncio.timeout(WAIT):
            await closed.wait()
        # and the connection serves the next request
        assert (await http.get("/livez")).status_code == 200


async def test_a_method_a_path_does_not_serve_is_405_listing_every_method_it_serves(
    served: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    http, doc = served
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in item if m in METHODS}
        if "GET" in documented:
            documented.add("HEAD")
        allow = ", ".join(sorted(documented))
        url = concrete(path)
        for method in ("OPTIONS", *(m.upper() for m in METHODS)):
            if method in documented:
                continue
            r = await http.request(method, url)
            assert r.status_code == 405, (method, url, r.text)
            assert r.headers["allow"] == allow, (method, url)
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["status"] == 405
            assert problem["detail"] == f"{method} is not allowed on {url}; allowed: {allow}"
        if "GET" not in documented:
            r = await http.head(url)
            assert r.status_code == 405 and r.headers["allow"] == allow, url


async def test_the_routes_of_one_path_are_all_in_allow(
    served: tuple[httpx.AsyncClient, dict[str, Any]],
) -> None:
    """``/v1/orders/{order_id}`` is served by three routes (PUT, GET, PATCH) in two modules;
    the router stops at the first that matches the path, ``Allow`` names them all."""
    http, _ = served
    r = await http.delete(f"/v1/orders/{ORDER}")
    assert r.headers["allow"] == "GET, HEAD, PATCH, PUT"
    r = await http.post("/docs/assets/swagger-ui/swagger-ui.css")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"

"""Every error is a problem+json naming its cause; no input produces a 5xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import WRITER, FakeLine, auth, b2b_body, b2c_body

PROBLEM = "application/problem+json"


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:linectl:problem:")
    assert body["title"] and body["detail"]
    return body


async def put(client: httpx.AsyncClient, body: Any, order_id: str = "E-1") -> httpx.Response:
    return await client.put(f"/v1/orders/{order_id}", json=body, headers=auth(WRITER))


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            b2c_body(lines=[{"line_id": "1", "sku": "SKU-0001", "quantity": 0}]),
            "lines[0].quantity",
            "greater than 0",
        ),
        (
            b2c_body(lines=[{"line_id": "1", "sku": "SKU-0001", "quantity": "two"}]),
            "lines[0].quantity",
            "integer",
        ),
        (
            b2c_body(lines=[{"line_id": "1", "sku": "SKU-9999", "quantity": 1}]),
            "lines[0].sku",
            "unknown SKU 'SKU-9999'",
        ),
        (
            b2c_body(lines=[{"line_id": "1", "sku": "SKU-0001", "quantity": 1, "colour": "red"}]),
            "lines[0].colour",
            "unknown field",
        ),
        (b2c_body(gift_wrap=True), "gift_wrap", "unknown field"),
        (b2c_body(destination="FEDEX"), "destination", "unknown destination 'FEDEX'"),
        (b2c_body(type="b2x"), "type", "'b2c' or 'b2b'"),
        (b2c_body(due_at="2026-01-01T16:00:00"), "due_at", "timezone"),
        (b2c_body(lines=[]), "lines", "at least 1"),
        ({k: v for k, v in b2c_body().items() if k != "destination"}, "destination", "required"),
        (b2c_body(handling={"packaging": "box"}), "(body)", "b2b orders only"),
        ([1, 2, 3], "(body)", "object"),
        (
            b2c_body(lines=[{"line_id": "1", "sku": "SKU-0001", "quantity": 1}] * 2),
            "lines",
            "line_id '1' appears more than once",
        ),
    ],
)
async def test_validation_names_the_field(
    client: httpx.AsyncClient, body: Any, field: str, words: str
) -> None:
    problem = assert_problem(await put(client, body), 422)
    fields = [e["field"] for e in problem["errors"]]
    assert field in fields, problem
    message = next(e["message"] for e in problem["errors"] if e["field"] == field)
    assert words in message, problem
    assert field in problem["detail"]


async def test_every_error_of_a_body_is_listed(client: httpx.AsyncClient) -> None:
    body = b2c_body(
        priority=12,
        lines=[
            {"line_id": "1", "sku": "SKU-0001", "quantity": -1},
            {"line_id": "2", "sku": "SKU-0002", "quantity": 1, "uom": "pallet"},
        ],
    )
    problem = assert_problem(await put(client, body), 422)
    assert {e["field"] for e in problem["errors"]} == {
        "priority",
        "lines[0].quantity",
        "lines[1].uom",
    }


async def test_unknown_skus_and_destination_are_reported_together(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    body = b2c_body(
        destination="NOWHERE",
        lines=[
            {"line_id": "1", "sku": "SKU-0001", "quantity": 1},
            {"line_id": "2", "sku": "BOGUS", "quantity": 1},
        ],
    )
    problem = assert_problem(await put(client, body), 422)
    assert [e["field"] for e in problem["errors"]] == ["lines[1].sku", "destination"]
    assert backend.accepted == []
    assert await backend.store.get_order("E-1") is None


async def test_b2b_destination_falls_back_to_the_b2b_chute(client: httpx.AsyncClient) -> None:
    r = await put(client, b2b_body(destination="CUST-NEW"), order_id="B-NEW")
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b"", b'{"type": "b2c",}', b"\xff\xfe\x00", b"[" * 5000]
)
async def test_malformed_json_is_a_400(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await client.put(
        "/v1/orders/J-1",
        content=raw,
        headers={**auth(WRITER), "Content-Type": "application/json"},
    )
    problem = assert_problem(r, 400)
    assert "not valid JSON" in problem["detail"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_wrong_content_type_is_a_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = auth(WRITER)
    if content_type:
        headers["Content-Type"] = content_type
    r = await client.put("/v1/orders/T-1", content=json.dumps(b2c_body()), headers=headers)
    problem = assert_problem(r, 415)
    assert "application/json" in problem["detail"]


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/v1/orders/T-2",
        content=json.dumps(b2c_body()),
        headers={**auth(WRITER), "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201, r.text


async def test_huge_body_is_a_413(client: httpx.AsyncClient, backend: FakeLine) -> None:
    limit = backend.config.api.max_body_bytes
    body = b2c_body(padding="x" * (limit + 1))
    problem = assert_problem(await put(client, body), 413)
    assert str(limit) in problem["detail"]
    assert await backend.store.get_order("E-1") is None


async def test_huge_body_without_content_length_is_a_413(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    chunk = b" " * 4096

    async def stream() -> Any:
        for _ in range(backend.config.api.max_body_bytes // len(chunk) + 2):
            yield chunk

    r = await client.put(
        "/v1/orders/S-1",
        content=stream(),
        headers={**auth(WRITER), "Content-Type": "application/json"},
    )
    assert "content-length" not in r.request.headers
    assert_problem(r, 413)


async def test_bad_content_length_header_is_a_400(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/v1/orders/L-1",
        content=b"{}",
        headers={**auth(WRITER), "Content-Type": "application/json", "Content-Length": "abc"},
    )
    assert_problem(r, 400)


@pytest.mark.parametrize("order_id", ["-leading-dash", "x" * 65, "has space", "ümlaut"])
async def test_bad_order_id_is_a_422(client: httpx.AsyncClient, order_id: str) -> None:
    problem = assert_problem(await put(client, b2c_body(), order_id=order_id), 422)
    assert [e["field"] for e in problem["errors"]] == ["order_id"]


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/v2/nothing"), 404)
    assert "/v2/nothing" in problem["detail"]
    r = await client.delete("/v1/orders/X-1", headers=auth(WRITER))
    problem = assert_problem(r, 405)
    assert "DELETE" in problem["detail"]
    assert r.headers["allow"] == "GET, HEAD, PATCH, PUT"  # every route of the path
    assert "GET, HEAD, PATCH, PUT" in problem["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b"null",
        b"0",
        b'"a string"',
        b'{"lines": null}',
        b'{"type": "b2c", "lines": [null]}',
        b'{"due_at": 1e309}',
        b'{"type": {"$ne": 1}}',
        b'{"lines": [{"quantity": 99999999999999999999999999999}]}',
        b'{"destination": "\\ud800"}',
        json.dumps(b2c_body(callback_url="javascript:alert(1)")).encode(),
        json.dumps(b2c_body(priority=True)).encode(),
        json.dumps({"a" * 1000: 1}).encode(),
    ],
)
async def test_hostile_bodies_never_cause_a_5xx(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await client.put(
        "/v1/orders/H-1",
        content=raw,
        headers={**auth(WRITER), "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert r.headers["content-type"] == PROBLEM

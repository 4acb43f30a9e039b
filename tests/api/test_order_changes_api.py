"""PATCH (priority and due time before release) and cancel, over a real SQLite store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controller.orders.model import OrderStatus
from kernel.clock import ManualClock
from tests.api.conftest import ADMIN, READER, WRITER, FakeLine, auth, b2c_body

PROBLEM = "application/problem+json"


async def _create(client: httpx.AsyncClient, order_id: str, **changes: Any) -> None:
    r = await client.put(f"/v1/orders/{order_id}", json=b2c_body(**changes), headers=auth(WRITER))
    assert r.status_code == 201, r.text


async def _move(backend: FakeLine, order_id: str, status: OrderStatus) -> None:
    await backend.store.record(order_id, status.value, backend.clock.utcnow(), status=status)


async def test_patch_before_release(
    client: httpx.AsyncClient, backend: FakeLine, manual_clock: ManualClock
) -> None:
    await _create(client, "P-1")
    await manual_clock.advance(60)
    r = await client.patch(
        "/v1/orders/P-1",
        json={"priority": 9, "due_at": "2026-01-01T12:00:00+01:00"},
        headers=auth(WRITER),
    )
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["priority"] == 9
    assert order["due_at"] == "2026-01-01T11:00:00Z"
    assert order["status"] == "accepted"
    assert order["updated_at"] == "2026-01-01T00:01:00Z"
    updated = order["history"][-1]
    assert updated["type"] == "updated"
    assert updated["data"] == {
        "priority": {"old": 5, "new": 9},
        "due_at": {
            "old": "2026-01-01T16:00:00.000000+00:00",
            "new": "2026-01-01T11:00:00.000000+00:00",
        },
    }
    assert [o.priority for o in backend.changed] == [9]

    # the original PUT is still idempotent: a retry answers 200, not 409
    again = await client.put("/v1/orders/P-1", json=b2c_body(), headers=auth(WRITER))
    assert again.status_code == 200
    assert again.json()["priority"] == 9

    r = await client.patch("/v1/orders/P-1", json={"priority": 2}, headers=auth(WRITER))
    assert r.status_code == 200
    assert r.json()["due_at"] == "2026-01-01T11:00:00Z"
    assert r.json()["history"][-1]["data"] == {"priority": {"old": 9, "new": 2}}


@pytest.mark.parametrize(
    "status",
    [OrderStatus.RELEASED, OrderStatus.PICKING, OrderStatus.EXCEPTION, OrderStatus.COMPLETED],
)
async def test_patch_after_release_is_409(
    client: httpx.AsyncClient, backend: FakeLine, status: OrderStatus
) -> None:
    await _create(client, "P-2")
    if status is not OrderStatus.RELEASED:
        await _move(backend, "P-2", OrderStatus.RELEASED)
    await _move(backend, "P-2", status)
    r = await client.patch("/v1/orders/P-2", json={"priority": 9}, headers=auth(WRITER))
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert "can no longer change" in problem["detail"]
    assert status.value in problem["detail"]
    assert problem["order_status"] == status.value
    order = await backend.store.get_order("P-2")
    assert order is not None and order.priority == 5
    assert backend.changed == []


async def test_patch_unknown_is_404(client: httpx.AsyncClient) -> None:
    r = await client.patch("/v1/orders/NOPE", json={"priority": 1}, headers=auth(WRITER))
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "(body)"),
        ({"priority": 10}, "priority"),
        ({"priority": "9"}, "priority"),
        ({"priority": None}, "priority"),
        ({"destination": "UPS"}, "destination"),
        ({"priority": 1, "lines": []}, "lines"),
        ({"due_at": "2026-01-01T00:00:00"}, "due_at"),
        ({"due_at": "2025-12-31T23:00:00Z"}, "due_at"),
    ],
)
async def test_patch_bad_bodies_are_422(
    client: httpx.AsyncClient, backend: FakeLine, body: dict[str, Any], field: str
) -> None:
    await _create(client, "P-3")
    r = await client.patch("/v1/orders/P-3", json=body, headers=auth(WRITER))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == [field]
    assert backend.changed == []


async def test_patch_media_type_size_and_missing_body(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    await _create(client, "P-4")
    r = await client.patch(
        "/v1/orders/P-4",
        content=b'{"priority": 1}',
        headers={**auth(WRITER), "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    r = await client.patch(
        "/v1/orders/P-4",
        content=b"{nope",
        headers={**auth(WRITER), "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    r = await client.patch("/v1/orders/P-4", headers=auth(WRITER))
    assert r.status_code == 422
    big = b'{"priority": 1, "x": "' + b"a" * backend.config.api.max_body_bytes + b'"}'
    r = await client.patch(
        "/v1/orders/P-4", content=big, headers={**auth(WRITER), "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


async def test_cancel_accepted_order_is_recorded_once(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    await _create(client, "K-1")
    r = await client.post(
        "/v1/orders/K-1/cancel", json={"reason": "customer cancelled"}, headers=auth(WRITER)
    )
    assert r.status_code == 202, r.text
    order = r.json()
    assert order["status"] == "accepted"
    assert [(e["type"], e["status"]) for e in order["history"]] == [
        ("accepted", "accepted"),
        ("cancel_requested", "accepted"),
    ]
    assert order["history"][-1]["data"] == {"reason": "customer cancelled"}
    assert [o.id for o in backend.cancels] == ["K-1"]

    twice = await client.post("/v1/orders/K-1/cancel", headers=auth(WRITER))
    assert twice.status_code == 202
    assert twice.json()["history"] == order["history"]
    assert len(backend.cancels) == 1


async def test_cancel_in_flight_order(client: httpx.AsyncClient, backend: FakeLine) -> None:
    await _create(client, "K-2")
    await _move(backend, "K-2", OrderStatus.RELEASED)
    await _move(backend, "K-2", OrderStatus.PICKING)
    r = await client.post("/v1/orders/K-2/cancel", headers=auth(WRITER))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "picking"
    assert r.json()["history"][-1]["type"] == "cancel_requested"
    assert r.json()["history"][-1]["data"] == {}
    assert [o.status for o in backend.cancels] == [OrderStatus.PICKING]


@pytest.mark.parametrize(
    "status", [OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.FAILED]
)
async def test_cancel_terminal_order_is_409(
    client: httpx.AsyncClient, backend: FakeLine, status: OrderStatus
) -> None:
    await _create(client, "K-3")
    await _move(backend, "K-3", status)
    r = await client.post("/v1/orders/K-3/cancel", headers=auth(WRITER))
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert status.value in r.json()["detail"]
    assert backend.cancels == []
    assert [e.type for e in await backend.store.history("K-3")] == ["accepted", status.value]


async def test_cancel_unknown_and_bad_bodies(client: httpx.AsyncClient, backend: FakeLine) -> None:
    r = await client.post("/v1/orders/NOPE/cancel", headers=auth(WRITER))
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    await _create(client, "K-4")
    for body, field in [
        ({"reason": "x" * 501}, "reason"),
        ({"reason": 5}, "reason"),
        ({"why": "x"}, "why"),
    ]:
        r = await client.post("/v1/orders/K-4/cancel", json=body, headers=auth(WRITER))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
    r = await client.post(
        "/v1/orders/K-4/cancel",
        content=b"reason",
        headers={**auth(WRITER), "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    assert backend.cancels == []


WRITES = [
    ("PUT", "/v1/orders/A-1", b2c_body()),
    ("PATCH", "/v1/orders/A-1", {"priority": 1}),
    ("POST", "/v1/orders/A-1/cancel", {"reason": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_every_write_needs_orders_write(
    client: httpx.AsyncClient,
    backend: FakeLine,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    await _create(client, "A-0")
    for headers, status in [({}, 401), (auth("not-a-token-at-all"), 401), (auth(READER), 403)]:
        r = await client.request(method, path.replace("A-1", "A-0"), json=body, headers=headers)
        assert r.status_code == status, (headers, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert "orders:write" in r.json()["detail"] or status == 401
    r = await client.request(method, path.replace("A-1", "A-0"), json=body, headers=auth(ADMIN))
    assert r.status_code < 300, r.text

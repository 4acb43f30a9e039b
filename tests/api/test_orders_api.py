"""Order creation, reading and listing through the API, over a real SQLite store."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from controller.orders.model import OrderStatus
from controller.orders.waiting import ActionFailed, GaveUp, Other
from kernel.clock import ManualClock
from tests.api.conftest import ADMIN, READER, WRITER, FakeLine, auth, b2b_body, b2c_body


async def test_put_is_idempotent(client: httpx.AsyncClient, backend: FakeLine) -> None:
    r = await client.put("/v1/orders/SO-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/orders/SO-1"
    created = r.json()
    assert created["id"] == "SO-1" and created["status"] == "accepted"
    assert created["lines"] == [
        {"line_id": "1", "sku": "SKU-0001", "uom": "each", "requested": 2, "picked": 0}
    ]
    assert [e["type"] for e in created["history"]] == ["accepted"]

    again = await client.put("/v1/orders/SO-1", json=b2c_body(), headers=auth(WRITER))
    assert again.status_code == 200
    assert again.json() == created

    different = await client.put("/v1/orders/SO-1", json=b2c_body(priority=9), headers=auth(WRITER))
    assert different.status_code == 409
    assert different.headers["content-type"] == "application/problem+json"
    problem = different.json()
    assert problem["status"] == 409 and "SO-1" in problem["detail"]

    assert [o.id for o in backend.accepted] == ["SO-1"]
    received = backend.metrics.registry.get_sample_value(
        "linectl_orders_received_total", {"type": "b2c"}
    )
    assert received == 1.0


async def test_concurrent_puts_of_one_id(client: httpx.AsyncClient, backend: FakeLine) -> None:
    first, second = await asyncio.gather(
        client.put("/v1/orders/RACE", json=b2c_body(), headers=auth(WRITER)),
        client.put("/v1/orders/RACE", json=b2c_body(), headers=auth(WRITER)),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 201]
    assert len(backend.accepted) == 1
    page = await backend.store.list_orders()
    assert [o.id for o in page.orders] == ["RACE"]
    assert len(await backend.store.history("RACE")) == 1


async def test_get_shows_progress_and_history(
    client: httpx.AsyncClient, backend: FakeLine, manual_clock: ManualClock
) -> None:
    r = await client.put("/v1/orders/B2B-7", json=b2b_body(), headers=auth(WRITER))
    assert r.status_code == 201, r.text
    await manual_clock.advance(30)
    await backend.store.record(
        "B2B-7",
        "released",
        manual_clock.utcnow(),
        status=OrderStatus.RELEASED,
        step="retrieving from AS/RS",
        waiting=Other("no robot free"),
        picked={"10": 1},
        data={"aisle": "A1"},
    )

    r = await client.get("/v1/orders/B2B-7", headers=auth(READER))
    assert r.status_code == 200
    order = r.json()
    assert order["status"] == "released"
    assert order["step"] == "retrieving from AS/RS"
    assert order["waiting_reason"] == "no robot free"
    assert order["deliver_from"] == "2026-01-01T06:00:00Z"
    assert order["handling"]["label_template"] == "acme-v2"
    assert [(ln["line_id"], ln["requested"], ln["picked"]) for ln in order["lines"]] == [
        ("10", 2, 1),
        ("20", 24, 0),
    ]
    history = order["history"]
    assert [(e["type"], e["status"]) for e in history] == [
        ("accepted", "accepted"),
        ("released", "released"),
    ]
    assert history[0]["seq"] < history[1]["seq"]
    assert history[1]["data"] == {"aisle": "A1"}
    assert order["created_at"] == "2026-01-01T00:00:00Z"
    assert order["updated_at"] == "2026-01-01T00:00:30Z"


async def test_a_typed_waiting_reason_is_shown_as_its_text_in_the_order_and_the_list(
    client: httpx.AsyncClient, backend: FakeLine, manual_clock: ManualClock
) -> None:
    r = await client.put("/v1/orders/SO-W", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 201, r.text
    reason = GaveUp(ActionFailed("pick", "R01", "load already picked"), 3)
    await backend.store.record("SO-W", "robot_action_failed", manual_clock.utcnow(), waiting=reason)
    text = "pick failed on robot R01: load already picked; gave up after 3 attempts"
    order = (await client.get("/v1/orders/SO-W", headers=auth(READER))).json()
    assert order["waiting_reason"] == text
    listed = (await client.get("/v1/orders", headers=auth(READER))).json()["orders"]
    assert [o["waiting_reason"] for o in listed if o["id"] == "SO-W"] == [text]


async def test_unknown_order_is_a_404_problem(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/orders/NOPE", headers=auth(READER))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "No order with id NOPE"


async def test_list_filters_and_pages(client: httpx.AsyncClient, backend: FakeLine) -> None:
    for i in range(5):
        r = await client.put(f"/v1/orders/C-{i}", json=b2c_body(), headers=auth(ADMIN))
        assert r.status_code == 201
    r = await client.put("/v1/orders/B-0", json=b2b_body(), headers=auth(ADMIN))
    assert r.status_code == 201

    ids: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        r = await client.get("/v1/orders", params=params, headers=auth(READER))
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [o["id"] for o in page["orders"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert ids == ["C-0", "C-1", "C-2", "C-3", "C-4", "B-0"]

    r = await client.get("/v1/orders", params={"type": "b2b"}, headers=auth(READER))
    assert [o["id"] for o in r.json()["orders"]] == ["B-0"]
    assert "history" not in r.json()["orders"][0]
    r = await client.get("/v1/orders", params={"status": "completed"}, headers=auth(READER))
    assert r.json() == {"orders": [], "next_cursor": None}


async def test_list_rejects_bad_parameters(client: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"status": "done"}, "status"),
        ({"type": "b2x"}, "type"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ]
    for params, field in cases:
        r = await client.get("/v1/orders", params=params, headers=auth(READER))
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in r.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("callback_url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "scheme 'http' is not allowed"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://[fe80::1]/cb", "fe80::1 is a link-local address"),
        ("https://127.0.0.1:8080/admin", "loopback address (webhooks.allow_loopback is off)"),
        ("https://10.0.0.7/plc", "private address (webhooks.allow_private is off)"),
    ],
)
async def test_a_callback_url_the_policy_refuses_is_a_422_naming_the_field(
    client: httpx.AsyncClient, backend: FakeLine, callback_url: str, reason: str
) -> None:
    r = await client.put(
        "/v1/orders/CB-1", json=b2c_body(callback_url=callback_url), headers=auth(WRITER)
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    [error] = r.json()["errors"]
    assert error["field"] == "callback_url" and reason in error["message"]
    assert backend.accepted == []
    ok = await client.put(
        "/v1/orders/CB-1",
        json=b2c_body(callback_url="https://wms.example.com/cb"),
        headers=auth(WRITER),
    )
    assert ok.status_code == 201, ok.text

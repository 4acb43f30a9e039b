"""Time filters of GET /v1/orders and the due time rule of PUT."""

from __future__ import annotations

import httpx
import pytest

from kernel.clock import ManualClock
from tests.api.conftest import READER, WRITER, FakeLine, auth, b2b_body, b2c_body

PROBLEM = "application/problem+json"


async def _ids(client: httpx.AsyncClient, **params: str | int) -> list[str]:
    """Every id the filter yields, following the cursor two at a time."""
    ids: list[str] = []
    query: dict[str, str | int] = {**params, "limit": 2}
    while True:
        r = await client.get("/v1/orders", params=query, headers=auth(READER))
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [o["id"] for o in page["orders"]]
        if page["next_cursor"] is None:
            return ids
        query = {**params, "limit": 2, "cursor": page["next_cursor"]}


@pytest.fixture
async def spread(client: httpx.AsyncClient, manual_clock: ManualClock) -> None:
    """Six orders created an hour apart (00:00 .. 05:00), due 10:00 .. 15:00 in reverse order."""
    for i in range(6):
        body = b2c_body(due_at=f"2026-01-01T{15 - i:02d}:00:00Z")
        r = await client.put(f"/v1/orders/T-{i}", json=body, headers=auth(WRITER))
        assert r.status_code == 201, r.text
        await manual_clock.advance(3600)


@pytest.mark.usefixtures("spread")
async def test_created_and_due_filters_page_stably(client: httpx.AsyncClient) -> None:
    assert await _ids(client) == [f"T-{i}" for i in range(6)]
    assert await _ids(client, created_after="2026-01-01T02:00:00Z") == ["T-2", "T-3", "T-4", "T-5"]
    assert await _ids(client, created_before="2026-01-01T02:00:00Z") == ["T-0", "T-1"]
    assert await _ids(
        client, created_after="2026-01-01T01:30:00Z", created_before="2026-01-01T04:00:00+00:00"
    ) == ["T-2", "T-3"]
    # an offset is honoured: 03:00+01:00 is 02:00Z
    assert await _ids(client, created_before="2026-01-01T03:00:00+01:00") == ["T-0", "T-1"]
    assert await _ids(client, due_before="2026-01-01T12:00:00Z") == ["T-4", "T-5"]
    assert await _ids(client, due_after="2026-01-01T13:00:00Z") == ["T-0", "T-1", "T-2"]
    assert await _ids(
        client, due_after="2026-01-01T11:00:00Z", due_before="2026-01-01T14:00:00Z", type="b2c"
    ) == ["T-2", "T-3", "T-4"]
    assert await _ids(client, due_after="2026-01-01T11:00:00Z", status="completed") == []


@pytest.mark.usefixtures("spread")
async def test_due_filter_sees_patched_due_times(client: httpx.AsyncClient) -> None:
    r = await client.patch(
        "/v1/orders/T-0", json={"due_at": "2026-01-01T10:30:00Z"}, headers=auth(WRITER)
    )
    assert r.status_code == 200, r.text
    assert await _ids(client, due_before="2026-01-01T11:00:00Z") == ["T-0", "T-5"]


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01",
        "2026-01-01T00:00:00",
        "1767225600",
        "yesterday",
        "2026-02-30T00:00:00Z",
        "2026-01-01T00:00:00 01:00",
        "0001-01-01T00:00:00+05:00",
    ],
)
@pytest.mark.parametrize("name", ["created_after", "created_before", "due_after", "due_before"])
async def test_bad_time_filters_are_422(client: httpx.AsyncClient, name: str, value: str) -> None:
    r = await client.get("/v1/orders", params={name: value}, headers=auth(READER))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == [name]


async def test_two_bad_filters_are_both_named(client: httpx.AsyncClient) -> None:
    r = await client.get(
        "/v1/orders", params={"created_after": "x", "due_before": "y"}, headers=auth(READER)
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["created_after", "due_before"]


async def test_due_at_in_the_past_needs_allow_late(
    client: httpx.AsyncClient, backend: FakeLine, manual_clock: ManualClock
) -> None:
    await manual_clock.advance(17 * 3600)  # 17:00, after the 16:00 cut-off of b2c_body
    r = await client.put("/v1/orders/L-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["due_at"]
    assert "allow_late" in errors[0]["message"]
    assert await backend.store.get_order("L-1") is None

    r = await client.put("/v1/orders/L-1", json=b2c_body(allow_late=True), headers=auth(WRITER))
    assert r.status_code == 201, r.text
    again = await client.put("/v1/orders/L-1", json=b2c_body(allow_late=True), headers=auth(WRITER))
    assert again.status_code == 200
    # allow_late is part of the body: the same order without it is a different body
    other = await client.put("/v1/orders/L-1", json=b2c_body(), headers=auth(WRITER))
    assert other.status_code == 422

    r = await client.put("/v1/orders/L-2", json=b2c_body(allow_late="yes"), headers=auth(WRITER))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["allow_late"]


async def test_retry_after_due_time_passed_is_still_idempotent(
    client: httpx.AsyncClient, manual_clock: ManualClock
) -> None:
    r = await client.put("/v1/orders/L-3", json=b2b_body(), headers=auth(WRITER))
    assert r.status_code == 201, r.text
    await manual_clock.advance(3 * 86400)
    again = await client.put("/v1/orders/L-3", json=b2b_body(), headers=auth(WRITER))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == "L-3"


async def test_b2b_window_rules_still_apply_with_allow_late(client: httpx.AsyncClient) -> None:
    body = b2b_body(
        allow_late=True, deliver_from="2026-01-02T10:00:00Z", deliver_until="2026-01-01T10:00:00Z"
    )
    r = await client.put("/v1/orders/L-4", json=body, headers=auth(WRITER))
    assert r.status_code == 422
    assert "deliver_from" in r.json()["detail"]

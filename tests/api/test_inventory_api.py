"""Inventory routes at the API seam: stock by SKU and location, the ledger, counts, auth."""

from __future__ import annotations

import httpx

from tests.api.conftest import ADMIN, READER, WRITER, FakeLine, auth


async def test_stock_by_sku_and_by_location(client: httpx.AsyncClient, backend: FakeLine) -> None:
    assert (await client.get("/v1/inventory")).status_code == 401
    resp = await client.get("/v1/inventory", params={"sku": "SKU-0001"}, headers=auth(READER))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    [sku] = body["skus"]
    places = {(r["location"], r["tote"]) for r in sku["rows"]}
    assert ("L01A", None) in places and any(tote for _, tote in places)  # AS/RS totes too
    assert sku["on_hand"] == sum(r["on_hand"] for r in sku["rows"])
    assert sku["available"] == sku["on_hand"] - sku["reserved"]
    by_location = await client.get(
        "/v1/inventory", params={"location": "L01A"}, headers=auth(READER)
    )
    [place] = by_location.json()["locations"]
    assert place["location"] == "L01A" and place["rows"][0]["sku"] == "SKU-0001"
    # the SKU's totals cover all its places even when filtered by one location
    assert by_location.json()["skus"][0]["on_hand"] == sku["on_hand"]


async def test_count_sets_on_hand_with_a_ledger_row(client: httpx.AsyncClient) -> None:
    count = {"location": "L01A", "sku": "SKU-0001", "counted": 1990, "count_id": "cc-1"}
    for token in (READER, WRITER):
        assert (
            await client.post("/v1/inventory/counts", json=count, headers=auth(token))
        ).status_code == 403
    resp = await client.post("/v1/inventory/counts", json=count, headers=auth(ADMIN))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["applied"] and body["movement"]["kind"] == "verification_count"
    assert body["movement"]["delta"] == -10 and body["movement"]["on_hand"] == 1990
    again = await client.post("/v1/inventory/counts", json=count, headers=auth(ADMIN))
    assert again.status_code == 200 and not again.json()["applied"]
    ledger = await client.get(
        "/v1/inventory/movements", params={"location": "L01A", "limit": 1}, headers=auth(READER)
    )
    page = ledger.json()
    assert [m["kind"] for m in page["movements"]] == ["initial_load"]
    rest = await client.get(
        "/v1/inventory/movements",
        params={"location": "L01A", "after": page["next_after"]},
        headers=auth(READER),
    )
    assert [m["ref"] for m in rest.json()["movements"]] == ["cc-1"]
    assert rest.json()["next_after"] is None
    events = await client.get("/v1/inventory/events", headers=auth(READER))
    assert "counted" in [e["type"] for e in events.json()["events"]]


async def test_bad_counts_are_clear_errors(client: httpx.AsyncClient) -> None:
    bad = {"location": "L01A", "sku": "SKU-0001", "counted": -1}
    resp = await client.post("/v1/inventory/counts", json=bad, headers=auth(ADMIN))
    assert resp.status_code == 422 and "counted" in resp.json()["detail"]
    ghost = {"location": "A1-L-01-01", "sku": "SKU-0001", "counted": 3, "tote": "NO-SUCH"}
    resp = await client.post("/v1/inventory/counts", json=ghost, headers=auth(ADMIN))
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "NO-SUCH" in resp.json()["detail"]
    resp = await client.get("/v1/inventory/movements?limit=0", headers=auth(READER))
    assert resp.status_code == 422


async def test_a_count_at_a_place_the_line_does_not_have_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    async def ledger() -> list[int]:
        resp = await client.get("/v1/inventory/movements?limit=500", headers=auth(READER))
        return [m["seq"] for m in resp.json()["movements"]]

    async def stock() -> object:
        return (await client.get("/v1/inventory", headers=auth(READER))).json()

    before, stock_before = await ledger(), await stock()
    for body, field, words in (
        ({"location": "NO-SUCH-PLACE", "sku": "SKU-0001", "counted": 5}, "location", "storage"),
        ({"location": "L01A", "sku": "SKU-NOPE", "counted": 5}, "sku", "SKU master"),
    ):
        resp = await client.post("/v1/inventory/counts", json=body, headers=auth(ADMIN))
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        problem = resp.json()
        assert [e["field"] for e in problem["errors"]] == [field]
        assert repr(body[field]) in problem["detail"] and words in problem["detail"]
    assert await ledger() == before and await stock() == stock_before
    located = await client.get(
        "/v1/inventory", params={"location": "NO-SUCH-PLACE"}, headers=auth(READER)
    )
    assert located.json()["locations"] == []

"""Reject-chute totes at the API seam: picked units off the books, counted back or written off,
each resolution in the ledger (or the inventory events) and in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from controller.line.trips import Serving, Trip
from routing.dispatch import Pick
from tests.api.conftest import ADMIN, ADMIN_NAME, READER, WRITER, FakeLine, auth

REJECT = "/v1/inventory/reject-totes"


async def _picked_tote(backend: FakeLine, order_id: str, tote: str, units: int) -> Trip:
    """A robot trip that picked ``units`` of SKU-0001 at L01A (booked: on-hand down) into
    ``tote``, and 2 of SKU-0002 at L01B."""
    picks = (
        Pick("1", "SKU-0001", "L01A", "G01", units),
        Pick("2", "SKU-0002", "L01B", "G01", 2),
    )
    trip_id = f"trip-{tote}"
    await backend.inventory.reserve(order_id, picks, trip_id)
    for i, pk in enumerate(picks):
        await backend.inventory.confirm_pick(order_id, trip_id, pk, pk.quantity, f"{trip_id}-{i}")
    return Trip(
        trip_id,
        order_id,
        "R01",
        tote,
        picks,
        "IND-1",
        datetime.now(UTC),
        "UPS",
        False,
        picks_done={0, 1},
        serving=Serving.CANCELLED,
    )


async def _on_hand(client: httpx.AsyncClient, location: str, sku: str) -> int:
    resp = await client.get(
        "/v1/inventory", params={"location": location, "sku": sku}, headers=auth(READER)
    )
    return int(resp.json()["locations"][0]["on_hand"])


async def test_a_reject_tote_is_listed_then_counted_back(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    start = await _on_hand(client, "L01A", "SKU-0001")
    trip = await _picked_tote(backend, "o-1", "TOTE-A", 5)
    assert await _on_hand(client, "L01A", "SKU-0001") == start - 5
    await backend.reject_totes.arrived(trip, "CH-REJECT", "order cancelled")
    await backend.reject_totes.arrived(trip, "CH-REJECT", "order cancelled")  # once per trip
    assert backend.metrics.reject_totes._value.get() == 1
    assert backend.metrics.reject_tote_units._value.get() == 7

    assert (await client.get(REJECT)).status_code == 401
    listed = await client.get(REJECT, headers=auth(READER))
    assert listed.status_code == 200, listed.text
    [tote] = listed.json()
    assert tote["tote"] == "TOTE-A" and tote["state"] == "open" and tote["units"] == 7
    assert {(ln["sku"], ln["location"], ln["quantity"]) for ln in tote["lines"]} == {
        ("SKU-0001", "L01A", 5),
        ("SKU-0002", "L01B", 2),
    }

    counted = {"lines": [{"sku": "SKU-0001", "location": "L01A", "quantity": 4}], "note": "1 torn"}
    for token in (READER, WRITER):
        refused = await client.post(f"{REJECT}/TOTE-A/restock", json=counted, headers=auth(token))
        assert refused.status_code == 403
    done = await client.post(f"{REJECT}/TOTE-A/restock", json=counted, headers=auth(ADMIN))
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["state"] == "restocked" and body["resolved_by"] == ADMIN_NAME
    assert body["resolution"]["written_off"] == {"SKU-0001": 1, "SKU-0002": 2}
    assert await _on_hand(client, "L01A", "SKU-0001") == start - 1
    assert backend.inventory.on_hand("L01A", "SKU-0001") == start - 1  # the live mirror too
    ledger = await client.get(
        "/v1/inventory/movements", params={"location": "L01A"}, headers=auth(READER)
    )
    rows = [m for m in ledger.json()["movements"] if m["kind"] == "reject_restocked"]
    assert [(r["delta"], r["order_id"]) for r in rows] == [(4, "o-1")]
    assert backend.metrics.reject_totes._value.get() == 0

    again = await client.post(f"{REJECT}/TOTE-A/restock", json={}, headers=auth(ADMIN))
    assert again.status_code == 409 and "restocked" in again.json()["detail"]
    assert (await client.get(REJECT, headers=auth(READER))).json() == []
    everything = await client.get(REJECT, params={"state": "all"}, headers=auth(READER))
    assert [t["state"] for t in everything.json()] == ["restocked"]

    audit = await client.get("/v1/audit", headers=auth(ADMIN))
    actions = [(e["action"], e["result"]) for e in audit.json()["entries"]]
    assert ("inventory.reject_tote.restock", "ok") in actions
    assert ("inventory.reject_tote.restock", "refused") in actions


async def test_a_full_restock_puts_every_unit_back_where_it_was_picked(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    start = (await _on_hand(client, "L01A", "SKU-0001"), await _on_hand(client, "L01B", "SKU-0002"))
    trip = await _picked_tote(backend, "o-2", "TOTE-B", 3)
    await backend.reject_totes.arrived(trip, "CH-REJECT", "order exception")
    done = await client.post(
        f"{REJECT}/TOTE-B/restock", json={"operator": "op-7"}, headers=auth(ADMIN)
    )
    assert done.status_code == 200, done.text
    assert done.json()["resolved_by"] == "op-7" and done.json()["resolution"]["written_off"] == {}
    now = (await _on_hand(client, "L01A", "SKU-0001"), await _on_hand(client, "L01B", "SKU-0002"))
    assert now == start


async def test_write_off_and_bad_resolutions_change_nothing(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    trip = await _picked_tote(backend, "o-3", "TOTE-C", 3)
    await backend.reject_totes.arrived(trip, "CH-REJECT", "order given to another robot")
    before = await _on_hand(client, "L01A", "SKU-0001")
    cases = [
        ("TOTE-NONE", "restock", {}, 404),
        (
            "TOTE-C",
            "restock",
            {"lines": [{"sku": "SKU-0001", "location": "L01A", "quantity": 9}]},
            409,
        ),
        (
            "TOTE-C",
            "restock",
            {"lines": [{"sku": "SKU-0003", "location": "L01A", "quantity": 1}]},
            409,
        ),
        (
            "TOTE-C",
            "restock",
            {"lines": [{"sku": "SKU-0001", "location": "NOWHERE", "quantity": 1}]},
            409,
        ),
        (
            "TOTE-C",
            "restock",
            {"lines": [{"sku": "SKU-0001", "location": "L01A", "quantity": -1}]},
            422,
        ),
        ("TOTE-C", "write-off", {}, 422),  # a write-off needs its reason
        ("TOTE-C", "restock", {"extra": 1}, 422),
    ]
    for tote, verb, body, status in cases:
        resp = await client.post(f"{REJECT}/{tote}/{verb}", json=body, headers=auth(ADMIN))
        assert resp.status_code == status, (tote, verb, body, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert await _on_hand(client, "L01A", "SKU-0001") == before
    gone = await client.post(
        f"{REJECT}/TOTE-C/write-off", json={"note": "tote crushed"}, headers=auth(ADMIN)
    )
    assert gone.status_code == 200, gone.text
    assert gone.json()["state"] == "written_off"
    assert gone.json()["resolution"]["written_off"] == {"SKU-0001": 3, "SKU-0002": 2}
    assert await _on_hand(client, "L01A", "SKU-0001") == before
    events = await client.get("/v1/inventory/events", headers=auth(READER))
    assert "reject_written_off" in [e["type"] for e in events.json()["events"]]
    assert backend.metrics.reject_totes_resolved.labels("written_off")._value.get() == 1

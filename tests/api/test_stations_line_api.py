"""Station and line routes at the API seam: auth, unknown ids, validation."""

from __future__ import annotations

import httpx

from tests.api.conftest import ADMIN, READER, WRITER, auth

COUNTS = {"operator": "op", "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}]}


async def test_verification_needs_line_operate(client: httpx.AsyncClient) -> None:
    path = "/v1/stations/VAS-1/tasks/SO-1/verification"
    assert (await client.post(path, json=COUNTS)).status_code == 401
    for token in (READER, WRITER):
        resp = await client.post(path, json=COUNTS, headers=auth(token))
        assert resp.status_code == 403
        assert resp.headers["content-type"].startswith("application/problem+json")
    missing = await client.post(path, json=COUNTS, headers=auth(ADMIN))
    assert missing.status_code == 404  # no open task for that order
    assert "no open task" in missing.json()["detail"]


async def test_unknown_station_and_bad_counts(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/stations/NOPE/tasks", headers=auth(READER))
    assert resp.status_code == 404
    assert (await client.get("/v1/stations/VAS-1/tasks", headers=auth(READER))).json() == []
    bad = {"lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": -1}]}
    resp = await client.post(
        "/v1/stations/VAS-1/tasks/SO-1/verification", json=bad, headers=auth(ADMIN)
    )
    assert resp.status_code == 422
    assert "lines[0].quantity" in resp.json()["detail"]


async def test_line_view_and_robot_commands(client: httpx.AsyncClient) -> None:
    view = await client.get("/v1/line", headers=auth(READER))
    assert view.status_code == 200 and view.json()["conveyors"][0]["conveyor_id"] == "C1"
    assert (await client.post("/v1/robots/R01/pause", headers=auth(WRITER))).status_code == 403
    unknown = await client.post("/v1/robots/R77/pause", headers=auth(ADMIN))
    assert unknown.status_code == 404
    offline = await client.post("/v1/robots/R01/pause", headers=auth(ADMIN))
    assert offline.status_code == 503
    assert "not connected" in offline.json()["detail"]


async def test_conveyor_commands_need_line_operate_and_a_known_conveyor(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/v1/conveyors/C1/hold", headers=auth(WRITER))).status_code == 403
    assert (await client.post("/v1/conveyors/C1/hold")).status_code == 401
    unknown = await client.post("/v1/conveyors/C9/hold", headers=auth(ADMIN))
    assert unknown.status_code == 404
    bad = await client.post("/v1/conveyors/C1/explode", headers=auth(ADMIN))
    assert bad.status_code == 422
    offline = await client.post("/v1/conveyors/C1/hold", headers=auth(ADMIN))
    assert offline.status_code == 503 and "not connected" in offline.json()["detail"]

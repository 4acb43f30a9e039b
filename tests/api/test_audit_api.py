"""Operator commands through the API: the audit log of every call, refused or not, the line
hold, jogs and the device check, and ``GET /v1/audit``."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api import create_app
from controller.service.hold import LineHoldControl
from controller.store.base import StoreError
from devices.check import DeviceReport, Finding, Status
from kernel import logs
from tests.api.conftest import (
    ADMIN,
    ADMIN_NAME,
    READER,
    WRITER,
    FakeLine,
    NoRobots,
    OfflineConveyor,
    Release,
    auth,
)

OPERATE = "needs a bearer token with scope line:operate"


async def entries(client: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit", params=query, headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["entries"]
    return found


async def test_a_call_without_a_token_is_refused_and_audited_as_anonymous(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/v1/line/hold")
    assert r.status_code == 401 and OPERATE in r.json()["detail"]
    [e] = await entries(client)
    assert (e["who"], e["action"], e["target"], e["result"], e["status"]) == (
        "anonymous",
        "line.hold",
        "line",
        "refused",
        401,
    )
    assert OPERATE in e["detail"]


async def test_who_is_the_token_name_never_the_token(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/robots/R01/pause", headers=auth("x" * 20))).status_code == 401
    r = await client.post("/v1/robots/R01/pause", headers=auth(READER))
    assert r.status_code == 403 and "line:operate" in r.json()["detail"]
    assert (await client.post("/v1/robots/R01/pause", headers=auth(WRITER))).status_code == 403
    log = await entries(client)
    assert [(e["who"], e["status"], e["result"]) for e in log] == [
        ("token-1", 403, "refused"),
        ("token-2", 403, "refused"),
        ("invalid-token", 401, "refused"),
    ]
    assert all(e["action"] == "robot.pause" and e["target"] == "R01" for e in log)
    assert log[0]["params"] == {"serial": "R01", "command": "pause"}
    text = json.dumps(log)
    assert not any(token in text for token in (READER, WRITER, ADMIN, "x" * 20))


async def test_a_command_the_device_cannot_take_is_audited_as_failed(
    client: httpx.AsyncClient, backend: FakeLine
) -> None:
    r = await client.post("/v1/robots/R01/resume", headers=auth(ADMIN))
    assert r.status_code == 503
    r = await client.post("/v1/robots/NOPE/pause", headers=auth(ADMIN))
    assert r.status_code == 404
    unknown, failed = await entries(client)
    assert (unknown["who"], unknown["result"], unknown["status"]) == (ADMIN_NAME, "refused", 404)
    assert (failed["action"], failed["result"], failed["status"]) == ("robot.resume", "failed", 503)
    assert "not connected" in failed["detail"]
    # and counted for the dashboards
    registry = backend.metrics.registry
    for action, result in (("robot.resume", "failed"), ("robot.pause", "refused")):
        labels = {"action": action, "result": result}
        assert registry.get_sample_value("linectl_audit_entries_total", labels) == 1


async def test_hold_and_resume(client: httpx.AsyncClient, backend: FakeLine) -> None:
    r = await client.post("/v1/line/hold", headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["held"]["by"] == ADMIN_NAME and body["changed"] is True
    # the conveyor is offline: held as far as it can be, and said so
    assert body["complete"] is False
    assert body["devices"] == [
        {"device": "conveyor:C1", "result": "unavailable", "detail": "conveyor C1 is not connected"}
    ]
    assert backend.hold.dispatcher.held
    assert (await backend.store.line_hold()) is not None
    view = (await client.get("/v1/line", headers=auth(READER))).json()
    assert view["held"] == body["held"]

    again = await client.post("/v1/line/hold", headers=auth(ADMIN))
    assert again.status_code == 200
    assert again.json()["held"] == body["held"] and again.json()["changed"] is False

    r = await client.post("/v1/line/resume", headers=auth(ADMIN))
    assert r.status_code == 200
    assert r.json()["held"] is None and r.json()["changed"] is True
    assert not backend.hold.dispatcher.held and await backend.store.line_hold() is None
    assert (await client.get("/v1/line", headers=auth(READER))).json()["held"] is None

    log = await entries(client)
    assert [(e["action"], e["result"], e["status"]) for e in log] == [
        ("line.resume", "failed", 200),
        ("line.hold", "failed", 200),
        ("line.hold", "failed", 200),
    ]
    assert log[-1]["detail"] == "not done on: conveyor:C1 unavailable"


async def test_jog(client: httpx.AsyncClient, backend: FakeLine) -> None:
    path = "/v1/conveyors/C1/zones/Z03/jog"
    r = await client.post(path, json={"speed": 0.3, "seconds": 1.5}, headers=auth(ADMIN))
    assert r.status_code == 202, r.text
    assert r.json() == {"conveyor_id": "C1", "zone_id": "Z03", "speed": 0.3, "seconds": 1.5}
    assert backend.jogs == [("C1", "Z03", 0.3, 1.5)]
    r = await client.post(path, json={"speed": 5.0}, headers=auth(ADMIN))
    assert r.status_code == 409 and "jog limit" in r.json()["detail"]
    bad = await client.post(path, json={"speed": -1, "extra": 1}, headers=auth(ADMIN))
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"speed", "extra"}
    r = await client.post(
        "/v1/conveyors/C1/zones/Z99/jog", json={"speed": 0.3}, headers=auth(ADMIN)
    )
    assert r.status_code == 404 and "Z99" in r.json()["detail"]
    r = await client.post(
        "/v1/conveyors/C9/zones/Z03/jog", json={"speed": 0.3}, headers=auth(ADMIN)
    )
    assert r.status_code == 404
    assert len(backend.jogs) == 1
    log = await entries(client, action="conveyor.jog")
    assert [(e["target"], e["status"], e["result"]) for e in log] == [
        ("C9/Z03", 404, "refused"),
        ("C1/Z99", 404, "refused"),
        ("C1/Z03", 422, "refused"),
        ("C1/Z03", 409, "refused"),
        ("C1/Z03", 202, "ok"),
    ]
    assert log[2]["params"]["body"] == {"speed": -1, "extra": 1}
    assert log[-1]["params"] == {
        "conveyor_id": "C1",
        "zone_id": "Z03",
        "body": {"speed": 0.3, "seconds": 1.5},
    }


async def test_devices_check(client: httpx.AsyncClient, backend: FakeLine) -> None:
    r = await client.post("/v1/devices/check", params={"wait": 0.5}, headers=auth(ADMIN))
    assert r.status_code == 200
    assert r.json()["ok"] is True and r.json()["devices"][0]["device"] == "conveyor C1"
    backend.check_reports.append(
        DeviceReport("robot R02", "mqtt://x", (Finding("connection", Status.OFFLINE),))
    )
    r = await client.post("/v1/devices/check", headers=auth(ADMIN))
    assert r.status_code == 200 and r.json()["ok"] is False
    r = await client.post("/v1/devices/check", params={"wait": 0}, headers=auth(ADMIN))
    assert r.status_code == 422
    log = await entries(client, action="devices.check")
    assert [(e["result"], e["detail"]) for e in log][:2] == [
        ("refused", "wait: Input should be greater than or equal to 0.1"),
        ("failed", "problems: robot R02"),
    ]
    assert log[2]["result"] == "ok" and log[2]["params"] == {"query": {"wait": "0.5"}}


async def test_reading_the_log_needs_line_operate(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/audit")).status_code == 401
    r = await client.get("/v1/audit", headers=auth(READER))
    assert r.status_code == 403 and "line:operate" in r.json()["detail"]
    assert await entries(client) == []  # reading is not audited


async def test_paging_and_filters(client: httpx.AsyncClient, backend: FakeLine) -> None:
    for _ in range(3):
        await client.post("/v1/line/hold")
    await client.post("/v1/robots/R01/pause", headers=auth(ADMIN))
    await backend.clock.advance(1.0)
    await client.post("/v1/line/resume", headers=auth(ADMIN))
    seqs: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/audit", params=params, headers=auth(ADMIN))).json()
        seqs += [e["seq"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seqs == [5, 4, 3, 2, 1]
    assert [e["seq"] for e in await entries(client, who="anonymous")] == [3, 2, 1]
    assert [e["seq"] for e in await entries(client, result="failed")] == [5, 4]
    newest = (await entries(client))[0]
    assert [e["seq"] for e in await entries(client, since=newest["at"])] == [5]
    for bad in ({"cursor": "nope"}, {"since": "yesterday"}, {"result": "maybe"}, {"limit": 0}):
        r = await client.get("/v1/audit", params=bad, headers=auth(ADMIN))
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == next(iter(bad))


async def test_an_audit_write_that_fails_keeps_the_answer_and_is_logged(
    client: httpx.AsyncClient,
    backend: FakeLine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(entry: object) -> object:
        raise StoreError("disk full")

    monkeypatch.setattr(backend.store, "append_audit", broken)
    with caplog.at_level(logging.ERROR, logger="api.audit"):
        r = await client.post("/v1/line/hold", headers=auth(ADMIN))
    assert r.status_code == 200 and r.json()["held"]["by"] == ADMIN_NAME
    [record] = [rec for rec in caplog.records if rec.getMessage() == "audit entry not stored"]
    assert record.__dict__["action"] == "line.hold" and record.__dict__["error"] == "disk full"


async def test_the_hold_outlives_a_restart(client: httpx.AsyncClient, backend: FakeLine) -> None:
    assert (await client.post("/v1/line/hold", headers=auth(ADMIN))).status_code == 200
    release = Release()
    restarted = LineHoldControl(
        backend.clock, backend.store, OfflineConveyor(), NoRobots(), backend.robot_command, release
    )
    await restarted.restore()
    assert restarted.hold == backend.hold.hold and release.held


async def test_a_hold_stops_new_crane_commands_until_resumed(backend: FakeLine) -> None:
    release, cranes = Release(), Release()
    hold = LineHoldControl(
        backend.clock,
        backend.store,
        OfflineConveyor(),
        NoRobots(),
        backend.robot_command,
        release,
        cranes,
    )
    held = await hold.hold_line("shift lead")
    assert release.held and cranes.held
    asrs = {
        "device": "asrs",
        "result": "ok",
        "detail": "no new crane commands; cycles under way finish",
    }
    assert asrs in held.document()["devices"]
    restarted = LineHoldControl(
        backend.clock,
        backend.store,
        OfflineConveyor(),
        NoRobots(),
        backend.robot_command,
        Release(),
        Release(),
    )
    await restarted.restore()
    assert restarted.asrs is not None and restarted.asrs.held
    resumed = await hold.resume_line("shift lead")
    assert not release.held and not cranes.held
    assert {"device": "asrs", "result": "ok", "detail": "crane commands released"} in (
        resumed.document()["devices"]
    )


async def test_every_line_operate_route_is_audited(client: httpx.AsyncClient) -> None:
    count = {"location": "L01A", "sku": "SKU-0001", "counted": 1990, "count_id": "cc-1"}
    assert (await client.post("/v1/inventory/counts", json=count, headers=auth(ADMIN))).is_success
    verification = {"lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}]}
    r = await client.post("/v1/stations/VAS-1/tasks/B-1/verification", json=verification)
    assert r.status_code == 401
    r = await client.post("/v1/stations/VAS-1/returns/T-1", headers=auth(WRITER))
    assert r.status_code == 403
    r = await client.post("/v1/replenishments/1/confirmation", json={}, headers=auth(ADMIN))
    assert r.status_code == 422
    log = [(e["who"], e["action"], e["target"], e["result"]) for e in await entries(client)]
    assert log == [
        (ADMIN_NAME, "replenishment.confirmation", "1", "refused"),
        ("token-1", "station.tote_returned", "VAS-1/T-1", "refused"),
        ("anonymous", "station.verification", "VAS-1/B-1", "refused"),
        (ADMIN_NAME, "inventory.count", "", "ok"),
    ]
    assert (await entries(client, action="inventory.count"))[0]["params"]["body"] == count


async def test_a_token_in_the_query_is_refused_and_never_recorded(
    client: httpx.AsyncClient, backend: FakeLine, tmp_path: Path
) -> None:
    r = await client.post(
        f"/v1/robots/R01/pause?token={ADMIN}&access_token={ADMIN}&reason=jam",
        json={"note": "x", "api_key": ADMIN},
    )
    assert r.status_code == 401
    [e] = await entries(client)
    assert e["params"]["query"] == {
        "token": "[redacted]",
        "access_token": "[redacted]",
        "reason": "jam",
    }
    assert ADMIN not in json.dumps(e)
    # nor in the database, whatever reads it
    with sqlite3.connect(tmp_path / "orders.db") as conn:
        stored = [row[0] for row in conn.execute("SELECT params FROM audit")]
    assert len(stored) == 1 and ADMIN not in stored[0] and "[redacted]" in stored[0]


@pytest.mark.usefixtures("uvicorn_logs_to_root")
async def test_uvicorn_request_lines_are_redacted_in_the_log(
    backend: FakeLine, capsys: pytest.CaptureFixture[str]
) -> None:
    """With uvicorn's access log on and routed through linectl's handler (as the API server
    routes it), a query-string token never reaches the log."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(backend), log_config=None, access_log=True, log_level="info", lifespan="on"
    )
    server = uvicorn.Server(config)
    try:
        logs.setup("info", "text")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]), name="uvicorn")
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    # the socket listens already: the request waits until uvicorn serves it
                    r = await http.get(f"/v1/orders?limit=5&token={ADMIN}")
                    assert r.status_code == 401
            finally:
                server.should_exit = True
        err = capsys.readouterr().err
        assert "GET /v1/orders?limit=5&token=[redacted]" in err, err
        assert ADMIN not in err
    finally:
        sock.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

"""Commissioning commands end to end: ``linectl`` against a running line on simulators.

Each command goes through the API on a loopback port with a token, does what it says on the
simulated devices, and is in the audit log; each is refused without a token (exit 3) and that
refusal is in the log too.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from controller.app.cli.main import app
from tests.e2e.test_lifecycle import TOKEN, Line

pytestmark = pytest.mark.e2e

ROBOTS = ("R01", "R02", "R03")
NO_ENV = {"LINECTL_API_TOKEN": None, "LINECTL_API_URL": None}


async def linectl(line: Line, *args: str, token: str | None = TOKEN) -> Result:
    """``linectl ARGS --api URL [--token T]``, in a thread: the API serves on this loop."""
    argv = [*args, "--api", str(line.http.base_url)]
    if token is not None:
        argv += ["--token", token]
    return await asyncio.to_thread(CliRunner().invoke, app, argv, env=NO_ENV)


async def view_until(line: Line, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``GET /v1/line`` until ``done``: the devices' state comes from the simulators."""
    async with asyncio.timeout(20):
        while True:
            view: dict[str, Any] = (await line.http.get("/v1/line")).json()
            if done(view):
                return view
            await asyncio.sleep(0.05)


def conveyor_state(view: dict[str, Any]) -> str:
    return str(view["conveyors"][0]["state"])


def paused(view: dict[str, Any]) -> dict[str, bool]:
    return {r["serial"]: r["paused"] for r in view["robots"] if r["serial"] in ROBOTS}


def all_online(view: dict[str, Any]) -> bool:
    robots = [r for r in view["robots"] if r["serial"] in ROBOTS]
    return (
        conveyor_state(view) == "Execute"
        and len(robots) == 3
        and all(r["connection"] == "ONLINE" for r in robots)
    )


async def test_commissioning_commands_through_the_api(line: Line) -> None:
    await view_until(line, all_online)

    r = await linectl(line, "devices", "check", "--wait", "1", "--json")
    assert r.exit_code == 0, r.output
    checked = json.loads(r.stdout)
    assert checked["ok"] and {d["device"] for d in checked["devices"]} >= {"robot R01"}

    # an operator pauses R01 on its own before the line is held
    r = await linectl(line, "robot", "pause", "R01")
    assert r.exit_code == 0, r.output
    await view_until(line, lambda v: paused(v)["R01"])

    r = await linectl(line, "line", "hold")
    assert r.exit_code == 0, r.output
    assert "line held by token-1" in r.stdout
    held = await view_until(line, lambda v: conveyor_state(v) == "Held" and all(paused(v).values()))
    assert held["held"]["by"] == "token-1"
    # no order is released while the line is held
    await line.put("H1", **line.b2c("SKU-0001"))
    order, _ = await line.until("H1", lambda o, s: o.waiting_reason is not None)
    assert order.waiting_reason == "line_held"

    r = await linectl(line, "conveyor", "jog", "Z03", "--speed", "0.3", "--seconds", "0.5")
    assert r.exit_code == 0, r.output
    assert "jogging C1 zone Z03" in r.stdout
    r = await linectl(line, "conveyor", "jog", "Z99", "--speed", "0.3")
    assert r.exit_code == 2 and "No zone Z99" in r.stderr

    r = await linectl(line, "line", "resume")
    assert r.exit_code == 0, r.output
    # the robots the hold paused run again; R01, paused before the hold, stays paused
    resumed = await view_until(
        line,
        lambda v: (
            conveyor_state(v) == "Execute"
            and paused(v) == {"R01": True, "R02": False, "R03": False}
        ),
    )
    assert resumed["held"] is None
    await line.until("H1", lambda o, s: o.waiting_reason != "line_held")
    r = await linectl(line, "conveyor", "jog", "Z03", "--speed", "0.3")  # Execute: refused
    assert r.exit_code == 1 and "refused" in r.stderr
    r = await linectl(line, "robot", "resume", "R01")
    assert r.exit_code == 0, r.output
    await view_until(line, lambda v: not any(paused(v).values()))

    r = await linectl(line, "robot", "pause", "R02")
    assert r.exit_code == 0 and "robot R02: pause sent" in r.stdout
    await view_until(line, lambda v: paused(v)["R02"])
    r = await linectl(line, "robot", "resume", "R02")
    assert r.exit_code == 0, r.output
    await view_until(line, lambda v: not paused(v)["R02"])
    r = await linectl(line, "robot", "cancel", "R03")
    assert r.exit_code == 0 and "robot R03: cancel sent" in r.stdout

    # without a token: refused with the server's reason, exit 3
    refused = [
        ("line.hold", ("line", "hold")),
        ("line.resume", ("line", "resume")),
        ("conveyor.jog", ("conveyor", "jog", "Z03", "--speed", "0.3", "--conveyor", "C1")),
        ("robot.pause", ("robot", "pause", "R01")),
        ("robot.resume", ("robot", "resume", "R01")),
        ("robot.cancel", ("robot", "cancel", "R01")),
        ("devices.check", ("devices", "check", "--wait", "0.5")),
    ]
    for _, args in refused:
        r = await linectl(line, *args, token=None)
        assert r.exit_code == 3, (args, r.output)
        assert "needs a bearer token with scope line:operate" in r.stderr
    assert (await linectl(line, "audit", token=None)).exit_code == 3

    r = await linectl(line, "audit", "--limit", "100", "--json")
    assert r.exit_code == 0, r.output
    log = json.loads(r.stdout)["entries"]
    assert all(e["at"] and e["status"] for e in log)
    done = [(e["action"], e["target"], e["result"]) for e in reversed(log) if e["who"] == "token-1"]
    assert done == [
        ("devices.check", "line", "ok"),
        ("robot.pause", "R01", "ok"),
        ("line.hold", "line", "ok"),
        ("conveyor.jog", "C1/Z03", "ok"),
        ("conveyor.jog", "C1/Z99", "refused"),
        ("line.resume", "line", "ok"),
        ("conveyor.jog", "C1/Z03", "refused"),
        ("robot.resume", "R01", "ok"),
        ("robot.pause", "R02", "ok"),
        ("robot.resume", "R02", "ok"),
        ("robot.cancel", "R03", "ok"),
    ]
    anonymous = [
        (e["action"], e["result"], e["status"]) for e in reversed(log) if e["who"] == "anonymous"
    ]
    assert len(log) == len(done) + len(anonymous)
    assert anonymous == [(action, "refused", 401) for action, _ in refused]
    jog = next(e for e in log if e["action"] == "conveyor.jog" and e["result"] == "ok")
    assert jog["params"]["body"] == {"speed": 0.3, "seconds": 0.5}
    assert TOKEN not in r.stdout
    table = await linectl(line, "audit", "--limit", "3", "--who", "token-1")
    assert table.exit_code == 0 and "robot.cancel" in table.stdout

    # the WMS simulator (its own process) sends another batch under its own prefix
    wms = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        "sim",
        "wms",
        "--api",
        str(line.http.base_url),
        "--orders",
        "2",
        "--prefix",
        "BATCH2",
        "--start",
        "5",
        env={**os.environ, "LINECTL_API_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(wms.communicate(), timeout=60)
    assert wms.returncode == 0 and b"2 created" in output, output
    for order_id in ("BATCH2-000005", "BATCH2-000006"):
        assert (await line.http.get(f"/v1/orders/{order_id}")).status_code == 200

"""``linectl line status`` against a running line on simulators: the picture an operator gets,
the JSON as the controller's OpenAPI document defines it, and the live stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.app.runner import run_with_standby
from controller.store import open_lease, open_store
from kernel.config.model import (
    ApiConfig,
    ApiToken,
    FailoverConfig,
    LineConfig,
    StoreConfig,
)
from simulators.broker import free_port
from tests.e2e.test_commissioning import NO_ENV, all_online, linectl, view_until
from tests.e2e.test_lifecycle import TOKEN, Line
from tests.line_processes import TOKEN as PROCESSES_TOKEN
from tests.line_processes import _env, line_processes, until
from tests.store_backends import drop_schema, new_schema_name, postgres_dsn

pytestmark = pytest.mark.e2e


async def line_out(line: Line) -> jsonschema.Draft202012Validator:
    return await line_out_of(line.http)


async def line_out_of(http: httpx.AsyncClient) -> jsonschema.Draft202012Validator:
    """A validator of ``LineOut`` from the OpenAPI document the controller serves."""
    openapi = (await http.get("/openapi.json")).json()
    schema = {"$ref": "#/components/schemas/LineOut", "components": openapi["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_status_of_a_running_line(line: Line) -> None:
    await view_until(line, all_online)
    # an order that waits for its delivery window: listed with why it waits
    await line.put("W1", **line.b2b("SKU-0001", window_starts_in=timedelta(hours=2)))
    await line.until("W1", lambda o, s: o.waiting_reason is not None)
    await view_until(line, lambda v: v["orders"]["by_status"]["accepted"] >= 1)

    r = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["line", "status", "--api", str(line.http.base_url), "--token", TOKEN],
        env={**NO_ENV, "COLUMNS": "160"},  # a wide terminal: no column folds
    )
    assert r.exit_code == 0, r.output
    text = r.stdout
    assert text.startswith("line ref-line-1  RUNNING  controller active")
    assert "conveyor C1  Execute  no jam  occupied zones: " in text
    assert "CH-DHL carrier 0/40" in text  # the capacity from the line's plan
    assert "CR1 (A1)" in text and "CR2 (A2)" in text
    for serial in ("R01", "R02", "R03"):
        assert serial in text
    assert "W1" in text and "outside_delivery_window" in text

    r = await linectl(line, "line", "status", "--json")
    assert r.exit_code == 0, r.output
    view: dict[str, Any] = json.loads(r.stdout)
    (await line_out(line)).validate(view)
    assert len(view["conveyors"][0]["zones"]) == len(line.service.config.conveyor.zones)
    assert [c["crane"] for c in view["cranes"]] == ["CR1", "CR2"]
    waiting = {o["order_id"]: o["waiting_reason"] for o in view["orders"]["oldest_waiting"]}
    assert waiting["W1"] == "outside_delivery_window"

    assert (await linectl(line, "line", "hold")).exit_code == 0
    await view_until(line, lambda v: v["held"] is not None)
    r = await linectl(line, "line", "status")
    assert r.stdout.startswith("line ref-line-1  HELD by token-1 since "), r.output
    assert (await linectl(line, "line", "resume")).exit_code == 0


async def test_watch_follows_the_line_as_ndjson(line: Line) -> None:
    await view_until(line, all_online)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        "line",
        "status",
        "--watch",
        "--json",
        "--interval",
        "0.2",
        "--api",
        str(line.http.base_url),
        "--token",
        TOKEN,
        env=_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        validator = await line_out(line)
        # a held line shows in the next snapshot
        async with asyncio.timeout(30):
            first = json.loads(await proc.stdout.readline())
            validator.validate(first)
            assert first["held"] is None
            assert (await line.http.post("/v1/line/hold")).status_code == 200
            while True:
                view = json.loads(await proc.stdout.readline())
                validator.validate(view)
                if view["held"] is not None:
                    break
        assert view["held"]["by"] == "token-1"
        assert (await line.http.post("/v1/line/resume")).status_code == 200
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        assert (await proc.stderr.read()) == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.timeout(120)
async def test_status_on_a_standby_names_the_active_controller(
    reference_line: LineConfig,
) -> None:
    """A standby (``linectl run`` of a line with failover, its lease held by another
    controller) shows its role and where the active controller's API is."""
    dsn, schema = postgres_dsn(), new_schema_name()
    active_url = f"http://127.0.0.1:{free_port()}"  # the active controller's, as its lease says
    port = free_port()
    cfg = reference_line.with_overrides(
        store=StoreConfig(backend="postgresql", dsn=SecretStr(dsn), db_schema=schema),
        failover=FailoverConfig(
            enabled=True, lease_seconds=60.0, renew_seconds=0.5, instance="ctl-b"
        ),
        api=ApiConfig(port=port, tokens=[ApiToken(token=TOKEN)]),
    )
    store = open_store(cfg.store, cfg.line.id)
    await store.open()  # the line's schema, its lease row included
    other = open_lease(cfg.store, cfg.line.id, cfg.failover, instance="ctl-a", api_url=active_url)
    standby: asyncio.Task[None] | None = None
    try:
        grant = await other.acquire()
        assert grant is not None
        standby = asyncio.create_task(run_with_standby(cfg, host="127.0.0.1", port=port))
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=url, headers=headers) as http:

            async def serving() -> bool:
                assert not standby.done(), standby
                with contextlib.suppress(httpx.TransportError):
                    r = await http.get("/v1/line")
                    return r.status_code == 200 and r.json()["controller"]["active"] is not None
                return False

            await until("the standby serves its API", serving)
            validator = await line_out_of(http)

        r = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["line", "status", "--api", url, "--token", TOKEN],
            env={**NO_ENV, "COLUMNS": "160"},
        )
        assert r.exit_code == 0, r.output
        first, second = r.stdout.splitlines()[:2]
        assert first.startswith("line ref-line-1  RUNNING  controller standby")
        assert second == (
            f"ctl-b is the standby (term {grant.term}); the line is commanded by ctl-a at "
            f"{active_url}: linectl line status --api {active_url}"
        )

        r = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["line", "status", "--json", "--api", url, "--token", TOKEN],
            env=NO_ENV,
        )
        assert r.exit_code == 0, r.output
        view = json.loads(r.stdout)
        validator.validate(view)
        assert view["controller"]["role"] == "standby"
        assert view["controller"]["active"]["api_url"] == active_url
    finally:
        if standby is not None:
            standby.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await standby
        await other.close()
        await store.close()
        drop_schema(schema)


@pytest.mark.timeout(240)
async def test_watch_waits_out_a_controller_restart(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    """``linectl run`` stopped and started again under a watching ``linectl line status``:
    the watch says once that the controller is unreachable, keeps trying, and follows the
    restarted controller's stream."""
    async with line_processes(reference_line, mqtt_url, interface_name, tmp_path) as (line, _):
        await line.start_controller()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "controller.app.cli",
            "line",
            "status",
            "--watch",
            "--json",
            "--config",
            str(line.line_file),  # the API the line file serves
            "--token",
            PROCESSES_TOKEN,
            env=_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None and proc.stderr is not None
            async with asyncio.timeout(30):
                before = json.loads(await proc.stdout.readline())
            assert before["controller"]["role"] == "active"
            assert await line.stop_controller(signal.SIGTERM) == 0
            async with asyncio.timeout(30):
                said = (await proc.stderr.readline()).decode()
            assert "trying again" in said, said
            # what the stopped controller sent is all written by now: leave it behind
            while True:
                try:
                    await asyncio.wait_for(proc.stdout.readline(), 0.5)
                except TimeoutError:
                    break
            await line.start_controller()
            async with asyncio.timeout(60):
                assert "reachable again" in (await proc.stderr.readline()).decode()
                after = json.loads(await proc.stdout.readline())  # the restarted controller's
            assert after["line_id"] == before["line_id"]
            assert after["controller"]["role"] == "active"
            proc.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                assert await proc.wait() == 0
            assert b"Traceback" not in await proc.stderr.read()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

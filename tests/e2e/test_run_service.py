"""``linectl run --simulate`` as a separate process: real HTTP, signals, a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from controller.linefile.loader import REFERENCE_LINE
from devices.vda5050.link import broker_address
from simulators.broker import free_port

pytestmark = pytest.mark.e2e
TOKEN = "e2e-token-0123456789abcdef"
SETTLED = {"completed", "exception", "failed", "cancelled"}


@asynccontextmanager
async def service(
    db: Path,
    port: int,
    broker: tuple[str, str] | None = None,
    args: Sequence[str] = (),
    log: list[bytes] | None = None,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``linectl run --simulate [ARGS]``; with ``broker`` (URL, interface name) the simulated
    robots and the controller meet on that broker instead of an embedded one. Every log line
    is added to ``log`` when given."""
    env = {
        **os.environ,
        "LINECTL_API_TOKEN": TOKEN,
        "LINECTL_STORE__PATH": str(db),
        "LINECTL_API__PORT": str(port),
        "LINECTL_CLOCK__TIME_SCALE": "40",
    }
    extra: list[str] = list(args)
    if broker is not None:
        extra += ["--broker", broker[0]]
        env["LINECTL_MQTT__INTERFACE_NAME"] = broker[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        "run",
        "--config",
        str(REFERENCE_LINE),
        "--simulate",
        *extra,
        "--log-format",
        "json",
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    tail: deque[bytes] = deque(maxlen=200)  # the last log lines, shown when a test fails

    async def drain() -> None:
        """Keep reading the log: a full pipe would block the service's writes, and its stop."""
        while line := await stderr.readline():
            tail.append(line)
            if log is not None:
                log.append(line)

    reader: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(30):  # the service logs once when the API listens
            while b"API listening" not in (line := await stderr.readline()):
                assert line, "service exited during start-up"
                if log is not None:
                    log.append(line)
        reader = asyncio.create_task(drain())
        yield proc
    except BaseException:
        sys.stderr.write(b"".join(tail).decode(errors="replace"))
        raise
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def poll(http: httpx.AsyncClient, path: str, done: Callable[[httpx.Response], bool]) -> Any:
    """GET ``path`` until ``done`` says so (another process owns the state; bounded by 60 s)."""
    async with asyncio.timeout(60):
        while True:
            resp = await http.get(path)
            if done(resp):
                return resp.json()
            await asyncio.sleep(0.05)


async def retained_online(mqtt_url: str, interface_name: str, expected: int) -> set[str]:
    """Serials with a retained ONLINE connection message under ``interface_name``, read until
    ``expected`` are in or no more come."""
    address = broker_address(mqtt_url)
    online: set[str] = set()
    async with aiomqtt.Client(address.host, address.port) as client:
        await client.subscribe(f"{interface_name}/v2/+/+/connection", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    doc = json.loads(message.payload)
                    if message.retain and doc.get("connectionState") == "ONLINE":
                        online.add(doc["serialNumber"])
                    if len(online) >= expected:
                        break
    return online


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(20):
        return await proc.wait()


async def test_run_simulate_serves_an_order_to_completion_and_survives_restart(
    tmp_path: Path, mqtt_url: str, interface_name: str
) -> None:
    db, port = tmp_path / "line.db", free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {
        "type": "b2c",
        "priority": 5,
        "due_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "destination": "UPS",
        "lines": [{"line_id": "1", "sku": "SKU-0004", "quantity": 2}],
    }
    async with service(db, port) as proc, httpx.AsyncClient(base_url=base, timeout=10) as http:
        await poll(http, "/readyz", lambda r: r.status_code == 200)
        created = await http.put("/v1/orders/SO-E2E-1", json=body, headers=headers)
        assert created.status_code == 201, created.text
        order = await poll(http, "/v1/orders/SO-E2E-1", lambda r: r.json()["status"] in SETTLED)
        assert order["status"] == "completed", order
        assert order["lines"][0]["picked"] == 2
        metrics = (await http.get("/metrics")).text
        assert 'linectl_orders_finished_total{outcome="completed",type="b2c"} 1.0' in metrics
        assert await stop(proc) == 0

    # the restart puts the simulated robots on an external broker (--broker)
    restarted = service(db, port, (mqtt_url, interface_name))
    async with restarted as proc, httpx.AsyncClient(base_url=base, timeout=10) as http:
        line = await poll(
            http, "/v1/line", lambda r: all(b["connection"] == "ONLINE" for b in r.json()["robots"])
        )
        assert len(line["robots"]) == 6
        assert await retained_online(mqtt_url, interface_name, 6) == {
            r["serial"] for r in line["robots"]
        }
        again = (await http.get("/v1/orders/SO-E2E-1")).json()
        assert again["status"] == "completed"
        assert [e["type"] for e in again["history"]][-1] == "completed"
        same = await http.put("/v1/orders/SO-E2E-1", json=body, headers=headers)
        assert same.status_code == 200
        assert await stop(proc) == 0


async def test_run_time_scale_overrides_the_line_file(tmp_path: Path) -> None:
    """``--time-scale`` before the line file's clock.time_scale (40 here, from the
    environment): the controller's clock and the simulators' run at 25."""
    log: list[bytes] = []
    port = free_port()
    async with service(tmp_path / "line.db", port, args=["--time-scale", "25"], log=log) as proc:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await poll(http, "/readyz", lambda r: r.status_code == 200)
        assert await stop(proc) == 0
    records = [json.loads(line) for line in log if line.startswith(b"{")]
    started = [r for r in records if r.get("msg") == "controller started"]
    assert [r["time_scale"] for r in started] == [25.0]

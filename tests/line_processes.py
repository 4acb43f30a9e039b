"""The line as an operator runs it: every part a process of its own, for tests that kill them.

:func:`line_processes` starts ``linectl sim conveyors``, ``linectl sim asrs`` and ``linectl sim
robots`` (handing dropped totes to the conveyor simulator) on a line file of the test's own (the
reference line on free ports, a private VDA 5050 interface name on the given broker, its own
order store), and :class:`LineProcesses` starts, kills (SIGKILL) and stops (SIGTERM) ``linectl
run`` on it. A :class:`RobotWatch` listens to the robots' MQTT traffic as any other client of the
broker: the loads each robot reports, and every pick it executed (the pick's ``loadId`` and
``stationName`` from the order that carried it), so a test can tell that no tote stayed on a
robot and no line was picked twice without asking the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import yaml

from devices.vda5050.link import broker_address
from kernel.config.model import ApiConfig, ApiToken, FailoverConfig, LineConfig, StoreConfig
from simulators.broker import free_port
from simulators.line import with_endpoints
from tests.sim_process import asrs_process, simulator_process

TOKEN = "line-processes-token-0123456789"


async def until(what: str, check: Callable[[], Awaitable[bool]], within: float = 45.0) -> None:
    """Poll ``check`` until it holds, failing with ``what`` after ``within`` wall seconds."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


def _env() -> dict[str, str]:
    """The test's environment without line file overrides (``LINECTL_*``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LINECTL_")}


@dataclass
class RobotWatch:
    """What the robots say on the broker, heard by a client of its own."""

    interface_name: str
    loads: dict[str, list[str | None]] = field(default_factory=dict)  # serial -> load ids
    picks: dict[str, tuple[str, str]] = field(default_factory=dict)  # action -> (tote, location)
    executed: set[str] = field(default_factory=set)  # pick action ids reported FINISHED
    errors: set[tuple[str, str, str]] = field(default_factory=set)  # (serial, type, description)
    executing: dict[str, bool] = field(default_factory=dict)  # serial -> order not done
    driving: dict[str, bool] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)  # serial -> state messages heard
    states: int = 0

    async def run(self, mqtt_url: str) -> None:
        address = broker_address(mqtt_url)
        async with aiomqtt.Client(
            address.host, address.port, identifier=f"watch-{uuid.uuid4().hex[:8]}"
        ) as client:
            await client.subscribe(f"{self.interface_name}/v2/+/+/state", qos=1)
            await client.subscribe(f"{self.interface_name}/v2/+/+/order", qos=1)
            async for message in client.messages:
                payload = message.payload
                if not isinstance(payload, bytes | bytearray) or not payload:
                    continue
                doc = json.loads(payload)
                if message.topic.value.endswith("/order"):
                    self._order(doc)
                else:
                    self._state(doc)

    def _order(self, doc: dict[str, Any]) -> None:
        for node in doc["nodes"]:
            for action in node["actions"]:
                if action["actionType"] != "pick":
                    continue
                params = {p["key"]: p["value"] for p in action.get("actionParameters", [])}
                self.picks[action["actionId"]] = (
                    str(params.get("loadId")),
                    str(params.get("stationName")),
                )

    def _state(self, doc: dict[str, Any]) -> None:
        self.states += 1
        serial = doc["serialNumber"]
        self.reports[serial] = self.reports.get(serial, 0) + 1
        self.driving[serial] = bool(doc["driving"])
        self.loads[doc["serialNumber"]] = [ld.get("loadId") for ld in doc.get("loads") or []]
        self.executing[doc["serialNumber"]] = bool(doc["nodeStates"] or doc["edgeStates"]) or any(
            a["actionStatus"] not in ("FINISHED", "FAILED") for a in doc["actionStates"]
        )
        for e in doc["errors"]:
            self.errors.add((doc["serialNumber"], e["errorType"], e.get("errorDescription", "")))
        for a in doc["actionStates"]:
            if a["actionStatus"] == "FINISHED" and a.get("actionType", "pick") == "pick":
                self.executed.add(a["actionId"])

    def executed_picks(self) -> dict[tuple[str, str], int]:
        """(tote, location) -> how many pick actions the robots executed there."""
        out: dict[tuple[str, str], int] = {}
        for action_id in self.executed:
            where = self.picks.get(action_id)
            if where is not None:
                out[where] = out.get(where, 0) + 1
        return out

    def totes_on_robots(self) -> dict[str, list[str | None]]:
        return {serial: loads for serial, loads in self.loads.items() if loads}


@dataclass
class LineProcesses:
    """The line file, the simulator processes, and the controller process started on it."""

    config: LineConfig
    line_file: Path
    log_dir: Path
    controller: asyncio.subprocess.Process | None = None
    runs: int = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.api.port}"

    def http(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=10.0)

    async def start_controller(self) -> None:
        """``linectl run`` on the line file, until its API says it is ready."""
        assert self.controller is None or self.controller.returncode is not None
        self.runs += 1
        log = (self.log_dir / f"controller-{self.runs}.log").open("wb")
        self.controller = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "controller.app.cli",
            "run",
            "--config",
            str(self.line_file),
            "--log-format",
            "json",
            env=_env(),
            stdout=log,
            stderr=log,
        )
        log.close()
        async with self.http() as http:

            async def ready() -> bool:
                assert self.controller is not None and self.controller.returncode is None, (
                    f"linectl run exited ({self.controller and self.controller.returncode}): "
                    f"see {self.log_dir}; its last lines:\n{self.log_tail()}"
                )
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/readyz")).status_code == 200
                return False

            await until("the controller is ready", ready)

    async def stop_controller(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Kill (SIGKILL) or stop (SIGTERM) the controller; its exit code."""
        proc = self.controller
        assert proc is not None and proc.returncode is None
        proc.send_signal(sig)
        async with asyncio.timeout(30):
            return await proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the latest controller run's log, for a failure's message."""
        path = self.log_dir / f"controller-{self.runs}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def controller_log(self) -> list[dict[str, Any]]:
        """Every JSON log record of every controller run so far."""
        records = []
        for path in sorted(self.log_dir.glob("controller-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records


@contextlib.asynccontextmanager
async def _process(args: list[str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``linectl <args>`` with its output in ``log``, killed when the context ends."""
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "controller.app.cli",
            *args,
            env=_env(),
            stdout=out,
            stderr=out,
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def line_processes(
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
    *,
    time_scale: float = 10.0,
    store: StoreConfig | None = None,
    failover: FailoverConfig | None = None,
    asrs_to_conveyor: bool = False,
) -> AsyncIterator[tuple[LineProcesses, RobotWatch]]:
    """The simulators as processes on a line file of the test's own, and a robot watch; the
    controller is started by the test (:meth:`LineProcesses.start_controller`). The store is a
    SQLite file in ``tmp_path`` unless ``store`` says otherwise; ``failover`` gives the line a
    standby. ``asrs_to_conveyor``: totes the cranes set down at a P&D output go onto the belt
    (``linectl sim asrs --conveyor``); otherwise they stay there."""
    cfg = with_endpoints(
        reference_line,
        mqtt_url,
        f"opc.tcp://127.0.0.1:{free_port()}/linectl/",
        f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/",
    )
    cfg = cfg.with_overrides(
        store=store or StoreConfig(path=str(tmp_path / "line.db")),
        failover=failover or FailoverConfig(),
        api=ApiConfig(port=free_port(), tokens=[ApiToken(token=TOKEN)]),
        mqtt=cfg.mqtt.model_copy(update={"interface_name": interface_name}),
        clock=cfg.clock.model_copy(update={"time_scale": time_scale}),
    )
    line_file = tmp_path / "line.yaml"
    document = cfg.model_dump(mode="json", exclude_none=True)
    if cfg.store.dsn is not None:  # a secret: dumped masked
        document["store"]["dsn"] = cfg.store.dsn.get_secret_value()
    line_file.write_text(yaml.safe_dump(document))
    logs = tmp_path / "logs"
    logs.mkdir()
    watch = RobotWatch(interface_name)
    conveyor_endpoint = cfg.conveyor.opcua.endpoint
    async with contextlib.AsyncExitStack() as stack:
        # the two OPC UA simulators start side by side (each start is mostly imports)
        await asyncio.gather(
            stack.enter_async_context(
                simulator_process(conveyor_endpoint, tmp_path / "conveyor.json", time_scale)
            ),
            stack.enter_async_context(
                asrs_process(
                    cfg.asrs.opcua.endpoint,
                    tmp_path / "asrs.json",
                    time_scale,
                    conveyor=conveyor_endpoint if asrs_to_conveyor else None,
                )
            ),
        )
        tg = await stack.enter_async_context(asyncio.TaskGroup())
        watcher = tg.create_task(watch.run(mqtt_url), name="test.robot-watch")
        robots_args = ["sim", "robots", "--config", str(line_file), "--conveyor"]
        robots_args += [conveyor_endpoint, "--time-scale", str(time_scale)]
        await stack.enter_async_context(_process(robots_args, logs / "robots.log"))
        line = LineProcesses(cfg, line_file, logs)
        try:
            await until("every robot reports its state", _all_reporting(watch, cfg))
            yield line, watch
        finally:
            if line.controller is not None and line.controller.returncode is None:
                line.controller.kill()
                await line.controller.wait()
            watcher.cancel()


def _all_reporting(watch: RobotWatch, cfg: LineConfig) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(watch.loads) == len(cfg.robots.fleet)

    return check

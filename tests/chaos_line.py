"""The line as separate processes that a chaos run kills and restarts, each part on its own.

:class:`ChaosLine` runs what :mod:`tests.line_processes` runs (``linectl run``, ``sim
conveyors``, ``sim asrs`` with retained state files, ``sim robots``) but keeps every part
restartable: the controller is killed with SIGKILL or stopped with SIGTERM, the conveyor and
AS/RS simulators are killed as a PLC loses power (their state files keep what a PLC retains),
and the robots' broker may be a Mosquitto of the run's own (persistent, so retained messages
survive its restart) that is killed and started again on the same port. The order store may sit
on a small disk of its own (:mod:`tests.small_disk`) that is filled up and freed again. A
:class:`RobotWatch` follows the robots on that broker and reconnects after a broker outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import aiomqtt
import httpx
import yaml

from controller.linefile.loader import REFERENCE_LINE
from kernel.config.model import ApiConfig, ApiToken, LineConfig, StoreConfig
from simulators.broker import free_port
from simulators.line import with_endpoints
from tests.line_processes import TOKEN, LineProcesses, RobotWatch, _env, until
from tests.small_disk import SmallDisk


class Fault(StrEnum):
    """A part of the line a chaos run takes down."""

    CONTROLLER = "controller"
    CONVEYOR = "conveyor"
    ASRS = "asrs"
    BROKER = "broker"
    DISK = "disk"  # the store's disk fills up (the controller runs on)


# Debian installs the broker in /usr/sbin, which is not on every user's PATH
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
READY = {Fault.CONVEYOR: "conveyor simulator on", Fault.ASRS: "AS/RS simulator on"}


@dataclass
class Part:
    """One simulator (or broker) process, restartable on the same arguments and log."""

    name: str
    args: list[str]
    log: Path
    ready: str | None = None  # text its log shows once it serves
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    async def start(self) -> None:
        assert self.proc is None or self.proc.returncode is not None
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            out.flush()
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, env=_env(), stdout=out, stderr=out
            )
        if self.ready is None:
            return
        mark = f"--- start {self.starts} ---"

        async def serving() -> bool:
            assert self.proc is not None and self.proc.returncode is None, (
                f"{self.name} exited during start-up: see {self.log}; its last lines:\n"
                + "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            )
            text = self.log.read_text(errors="replace")
            return self.ready in text[text.rfind(mark) :]  # type: ignore[operator]

        await until(f"{self.name} serves", serving, within=60.0)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


def _linectl(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "controller.app.cli", *map(str, args)]


@dataclass
class ChaosLine:
    """The parts of one chaos run, their line file and logs under ``root``."""

    root: Path
    line: LineProcesses
    watch: RobotWatch
    parts: dict[Fault, Part] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)  # what was taken down, how often
    disk: SmallDisk | None = None  # the store's own disk, for Fault.DISK
    exits: list[tuple[str, int]] = field(default_factory=list)  # controller: (signal, exit code)
    store_outages: int = 0  # disk faults the controller reported as failing store writes

    async def _store_failing(self, within: float) -> bool:
        """Whether the controller says its store fails (``/readyz``) within ``within`` s."""
        deadline = time.monotonic() + within
        async with self.line.http() as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.TransportError):
                    ready = await http.get("/readyz")
                    if ready.status_code == 503 and "store:" in ready.text:
                        return True
                await asyncio.sleep(0.2)
        return False

    @property
    def store_path(self) -> Path:
        return Path(self.line.config.store.path)

    @property
    def conveyor_state(self) -> Path:
        return self.root / "conveyor.json"

    @property
    def asrs_state(self) -> Path:
        return self.root / "asrs.json"

    async def fault(self, kind: Fault, down: float, sig: signal.Signals = signal.SIGKILL) -> None:
        """Take ``kind`` down (the controller by ``sig``, the others by SIGKILL; the disk by
        taking every free byte), leave it down ``down`` wall seconds, start it again."""
        label = f"{kind.value}:{sig.name}" if kind is Fault.CONTROLLER else kind.value
        self.faults[label] = self.faults.get(label, 0) + 1
        if kind is Fault.DISK:
            assert self.disk is not None, "the store is not on a disk of its own"
            self.disk.fill()
            # full until the controller's writes fail (space the store had may last a while)
            if await self._store_failing(within=60.0):
                self.store_outages += 1
            await asyncio.sleep(down)
            self.disk.free()
            return
        if kind is Fault.CONTROLLER:
            self.exits.append((sig.name, await self.line.stop_controller(sig)))
            await asyncio.sleep(down)
            await self.line.start_controller()
            return
        part = self.parts[kind]
        await part.kill()
        await asyncio.sleep(down)
        await part.start()


async def _watch_forever(watch: RobotWatch, mqtt_url: str) -> None:
    """The watch, reconnecting while the broker is down."""
    while True:
        with contextlib.suppress(aiomqtt.MqttError):
            await watch.run(mqtt_url)
        await asyncio.sleep(0.5)


def _mosquitto_conf(root: Path, port: int) -> Path:
    data = root / "mosquitto"
    data.mkdir()
    conf = root / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {data}/\nautosave_interval 1\n"
        f"log_dest file {root / 'logs' / 'mosquitto.log'}\n"
    )
    return conf


def line_file(
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    root: Path,
    time_scale: float,
    store_dir: Path | None = None,
) -> LineConfig:
    """The reference line on free ports, a private interface name, its own store (in
    ``store_dir``, else in ``root``)."""
    cfg = with_endpoints(
        reference_line,
        mqtt_url,
        f"opc.tcp://127.0.0.1:{free_port()}/linectl/",
        f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/",
    )
    return cfg.with_overrides(
        store=StoreConfig(path=str((store_dir or root) / "line.db")),
        api=ApiConfig(port=free_port(), tokens=[ApiToken(token=TOKEN)]),
        mqtt=cfg.mqtt.model_copy(update={"interface_name": interface_name}),
        clock=cfg.clock.model_copy(update={"time_scale": time_scale}),
    )


@contextlib.asynccontextmanager
async def chaos_line(
    reference_line: LineConfig,
    root: Path,
    *,
    time_scale: float,
    mqtt_url: str | None = None,
    interface_name: str | None = None,
    disk: SmallDisk | None = None,
) -> AsyncIterator[ChaosLine]:
    """Every part of the line started (the controller too) under ``root``; a Mosquitto of the
    run's own unless ``mqtt_url`` names a broker to share (then best with an ``interface_name``
    whose retained messages the caller clears); the order store on ``disk`` if given."""
    logs = root / "logs"
    logs.mkdir(parents=True)
    parts: dict[Fault, Part] = {}
    if mqtt_url is None:
        port = free_port()
        mqtt_url = f"mqtt://127.0.0.1:{port}"
        conf = _mosquitto_conf(root, port)
        parts[Fault.BROKER] = Part("mosquitto", [MOSQUITTO, "-c", str(conf)], logs / "broker.log")
    name = interface_name or f"chaos{uuid.uuid4().hex[:10]}"
    cfg = line_file(
        reference_line, mqtt_url, name, root, time_scale, None if disk is None else disk.path
    )
    path = root / "line.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    scale = str(time_scale)
    conveyor = cfg.conveyor.opcua.endpoint
    parts[Fault.CONVEYOR] = Part(
        "conveyor simulator",
        _linectl(
            "sim",
            "conveyors",
            "--config",
            REFERENCE_LINE,
            "--endpoint",
            conveyor,
            "--state",
            root / "conveyor.json",
            "--time-scale",
            scale,
        ),
        logs / "conveyor.log",
        READY[Fault.CONVEYOR],
    )
    parts[Fault.ASRS] = Part(
        "AS/RS simulator",
        _linectl(
            "sim",
            "asrs",
            "--config",
            REFERENCE_LINE,
            "--endpoint",
            cfg.asrs.opcua.endpoint,
            "--state",
            root / "asrs.json",
            "--time-scale",
            scale,
        ),
        logs / "asrs.log",
        READY[Fault.ASRS],
    )
    robots = Part(
        "robot fleet",
        _linectl("sim", "robots", "--config", path, "--conveyor", conveyor, "--time-scale", scale),
        logs / "robots.log",
    )
    watch = RobotWatch(cfg.mqtt.interface_name)
    line = LineProcesses(cfg, path, logs)
    chaos = ChaosLine(root, line, watch, parts, disk=disk)
    try:
        if Fault.BROKER in parts:
            await parts[Fault.BROKER].start()
            await _broker_answers(mqtt_url)
        await asyncio.gather(parts[Fault.CONVEYOR].start(), parts[Fault.ASRS].start())
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(_watch_forever(watch, mqtt_url), name="chaos.robot-watch")
            try:
                await robots.start()

                async def reporting() -> bool:
                    return len(watch.loads) == len(cfg.robots.fleet)

                await until("every robot reports its state", reporting, within=60.0)
                await line.start_controller()
                yield chaos
            finally:
                watcher.cancel()
    finally:
        if line.controller is not None and line.controller.returncode is None:
            line.controller.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await line.controller.wait()
            except TimeoutError:
                line.controller.kill()
                await line.controller.wait()
        for part in (robots, *parts.values()):
            await part.kill()


async def _broker_answers(url: str) -> None:
    host, port = url.removeprefix("mqtt://").split(":")
    deadline = time.monotonic() + 20
    while True:
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            assert time.monotonic() < deadline, "the private Mosquitto does not listen"
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return

"""Master control across a broker restart (BRIEF 4: reconnect, re-subscribe, log once)."""

from __future__ import annotations

import asyncio
import logging
import shutil

import pytest

from devices.base import DeviceEvent, RobotAvailability
from devices.vda5050.master.control import VdaMasterControl
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.robots import RobotFleetSimulator

pytestmark = pytest.mark.integration


class MosquittoProcess:
    """A Mosquitto broker of the test's own on a free loopback port, stopped like a crash."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = await asyncio.create_subprocess_exec(
            binary,
            "-p",
            str(self.port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def availability(
    events: asyncio.Queue[DeviceEvent], serial: str, wanted: bool
) -> RobotAvailability:
    async with asyncio.timeout(30):
        while True:
            ev = await events.get()
            if isinstance(ev, RobotAvailability) and ev.serial == serial and ev.available == wanted:
                return ev


async def test_master_reconnects_and_resubscribes_after_the_broker_restarts(
    reference_line: LineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    clock = ScaledClock(20)
    metrics = Metrics()
    url = f"mqtt://127.0.0.1:{port}"
    master = VdaMasterControl(reference_line, clock, metrics, url, "restart")
    robots = RobotFleetSimulator(reference_line, clock, url, "restart")
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    caplog.set_level(logging.WARNING, logger="devices.vda5050")
    broker = MosquittoProcess(port)
    await broker.start()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(master.run(events)), tg.create_task(robots.run())]
        try:
            await availability(events, "R01", True)
            await broker.stop()
            down = await availability(events, "R01", False)  # the link is down
            # nothing is known of the robot meanwhile: no failure of the robot's own
            assert down.unheard and down.reason == "broker connection down"
            assert metrics.registry.get_sample_value("linectl_mqtt_connected") == 0
            broker = MosquittoProcess(port)
            await broker.start()
            await availability(events, "R01", True)  # reconnected, re-subscribed, states flow
            assert metrics.registry.get_sample_value("linectl_mqtt_connected") == 1
        finally:
            for task in tasks:
                task.cancel()
    await broker.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "devices.vda5050.master"]
    assert messages.count("MQTT broker outage started") == 1
    assert messages.count("MQTT broker outage ended") == 1

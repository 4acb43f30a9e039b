"""A conveyor or AS/RS server killed under a running adapter: the service's log shows the outage
as two lines, when it starts and when it ends, and none of asyncua's tracebacks of the lost
connection."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from controller.app.cli.common import setup_logs
from devices.base import ConveyorAvailability, CranesAvailability, DeviceEvent
from devices.opcua import OpcUaSorter
from devices.opcua.cranes.adapter import OpcUaCranes
from kernel.backoff import Backoff
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.broker import free_port
from tests.sim_process import asrs_process, simulator_process

pytestmark = pytest.mark.integration

WAIT = 30.0
Availability = ConveyorAvailability | CranesAvailability


@pytest.fixture
def service_logs() -> Iterator[None]:
    """The service's own log set-up (as ``linectl run`` does it), undone afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in ("asyncua", "amqtt")}
    setup_logs("info")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, was in libraries.items():
        logging.getLogger(name).setLevel(was)


async def availability(events: asyncio.Queue[DeviceEvent], up: bool) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            event = await events.get()
            if isinstance(event, Availability) and event.available is up:
                return


def conveyor(line: LineConfig, clock: ScaledClock, endpoint: str) -> OpcUaSorter:
    return OpcUaSorter(line, clock, Metrics(), endpoint, backoff=Backoff(0.05, 0.2))


def cranes(line: LineConfig, clock: ScaledClock, endpoint: str) -> OpcUaCranes:
    return OpcUaCranes(line, clock, Metrics(), endpoint, backoff=Backoff(0.05, 0.2))


@pytest.mark.usefixtures("service_logs")
@pytest.mark.parametrize(
    ("adapter", "process", "device"),
    [(conveyor, simulator_process, "conveyor"), (cranes, asrs_process, "AS/RS")],
    ids=["conveyor", "asrs"],
)
async def test_a_killed_server_is_two_outage_lines_and_no_traceback(
    reference_line: LineConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    adapter: Callable[[LineConfig, ScaledClock, str], OpcUaSorter | OpcUaCranes],
    process: Callable[[str, Path], AbstractAsyncContextManager[asyncio.subprocess.Process]],
    device: str,
) -> None:
    clock = ScaledClock(10)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    state = tmp_path / "plc.json"
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with process(endpoint, state) as first, asyncio.TaskGroup() as tg:
        task = tg.create_task(adapter(reference_line, clock, endpoint).run(events))
        await availability(events, True)
        capsys.readouterr()  # from here on: the outage
        first.kill()  # as a PLC losing power: no goodbye on the wire
        await first.wait()
        await availability(events, False)
        async with process(endpoint, state):
            await availability(events, True)
            output = capsys.readouterr().err
            task.cancel()

    lines = output.splitlines()
    assert sum(f'msg="{device} outage started"' in ln for ln in lines) == 1, output
    assert sum(f'msg="{device} outage ended"' in ln for ln in lines) == 1, output
    assert "Traceback" not in output
    assert not [ln for ln in lines if not ln.startswith("ts=")], output  # one line per record
    assert not [ln for ln in lines if "level=error" in ln], output

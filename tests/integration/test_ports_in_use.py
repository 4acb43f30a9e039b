"""A simulator whose port another process holds: :class:`~kernel.ports.PortInUse` naming the host
and port, raised at once, without the library's own traceback in the log; the port then free
again for the next try."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.ports import PortInUse
from simulators.asrs import AsrsSimulator
from simulators.broker import EmbeddedBroker
from simulators.conveyor import ConveyorSimulator

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert logged == [], [r.getMessage() for r in logged]


async def test_the_embedded_broker_on_a_port_in_use(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PortInUse) as caught:
        async with EmbeddedBroker(port=taken_port):
            pass
    assert str(caught.value) == (
        f"port {taken_port} on 127.0.0.1 is in use: the embedded MQTT broker cannot listen there"
    )
    no_tracebacks(caplog)


async def test_the_simulators_on_a_port_in_use(
    taken_port: int, reference_line: LineConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    endpoint = f"opc.tcp://127.0.0.1:{taken_port}/linectl/"
    with pytest.raises(PortInUse) as caught:
        async with ConveyorSimulator(reference_line, clock, endpoint):
            pass
    assert (caught.value.host, caught.value.port) == ("127.0.0.1", taken_port)
    assert caught.value.what == "the conveyor simulator"
    with pytest.raises(PortInUse) as caught:
        async with AsrsSimulator(reference_line, clock, endpoint + "asrs/"):
            pass
    assert caught.value.what == "the AS/RS simulator"
    no_tracebacks(caplog)

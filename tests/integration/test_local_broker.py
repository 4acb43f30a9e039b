"""The broker a simulated line starts for itself: a private Mosquitto when the binary is
installed (a real child process on a free loopback port, gone with its folder afterwards), the
embedded broker when told or when Mosquitto is absent."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import aiomqtt
import pytest

from devices.vda5050.link import broker_address
from kernel.ports import PortInUse
from simulators import broker as brokers
from simulators.broker import (
    LocalBroker,
    MosquittoError,
    PrivateMosquitto,
    find_mosquitto,
    free_port,
    local_broker,
)

pytestmark = pytest.mark.integration

MOSQUITTO = find_mosquitto()
needs_mosquitto = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed")


@pytest.fixture
def no_mosquitto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without Mosquitto: nothing named mosquitto on PATH or in the sbin folders."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(brokers, "_SBIN", ())
    assert find_mosquitto() is None


async def round_trip(url: str) -> bytes:
    """Publish one message through the broker at ``url`` and return what a subscriber got."""
    address = broker_address(url)
    topic = f"linectl-test/{uuid.uuid4().hex}"
    async with (
        aiomqtt.Client(address.host, address.port) as subscriber,
        aiomqtt.Client(address.host, address.port) as publisher,
    ):
        await subscriber.subscribe(topic, qos=1)
        await publisher.publish(topic, b"hello", qos=1)
        async with asyncio.timeout(10):
            async for message in subscriber.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
    raise AssertionError("no message")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers signal 0: it counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@needs_mosquitto
async def test_private_mosquitto_carries_messages_and_leaves_nothing_behind() -> None:
    assert MOSQUITTO is not None
    mosquitto = PrivateMosquitto(MOSQUITTO)
    async with mosquitto:
        pid = mosquitto.pid
        assert pid is not None and _process_alive(pid)
        assert await round_trip(mosquitto.url) == b"hello"
        folder = Path(mosquitto._dir.name) if mosquitto._dir is not None else None
        assert folder is not None and (folder / "mosquitto.conf").is_file()
    assert not _process_alive(pid)
    assert not _answers(mosquitto.port)
    assert not folder.exists()


@needs_mosquitto
async def test_a_port_in_use_is_port_in_use() -> None:
    assert MOSQUITTO is not None
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(PortInUse) as raised:
            await PrivateMosquitto(MOSQUITTO, port=port).start()
    assert raised.value.port == port


@needs_mosquitto
async def test_auto_picks_the_machines_mosquitto() -> None:
    async with local_broker(LocalBroker.AUTO) as started:
        assert started.kind is LocalBroker.MOSQUITTO
        assert await round_trip(started.url) == b"hello"


@needs_mosquitto
async def test_embedded_when_told_even_with_mosquitto_installed() -> None:
    async with local_broker(LocalBroker.EMBEDDED) as started:
        assert started.kind is LocalBroker.EMBEDDED
        assert await round_trip(started.url) == b"hello"


@pytest.mark.usefixtures("no_mosquitto")
async def test_auto_falls_back_to_the_embedded_broker_without_mosquitto() -> None:
    async with local_broker(LocalBroker.AUTO) as started:
        assert started.kind is LocalBroker.EMBEDDED
        assert await round_trip(started.url) == b"hello"


@pytest.mark.usefixtures("no_mosquitto")
async def test_mosquitto_asked_for_but_absent_is_an_error() -> None:
    with pytest.raises(MosquittoError, match="not installed"):
        async with local_broker(LocalBroker.MOSQUITTO):
            pass

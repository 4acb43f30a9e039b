"""Clients leave no socket open, however a connection attempt ends. The MQTT broker client:
cancelled while paho connects or while CONNACK is awaited, timed out waiting for CONNACK, or
used and left. The OPC UA connect (:func:`devices.opcua.connection.connect_client`): cancelled
while the server's answer is awaited."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
from asyncua import Client

from devices.opcua.connection import connect_client
from devices.vda5050.mqtt_client import BrokerClient

pytestmark = pytest.mark.integration

WAIT = 5.0  # wall seconds for a condition to come true


def _name(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def _sockets() -> set[str]:
    """The sockets this process holds open (``socket:[inode]`` of each descriptor)."""
    held = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:  # closed meanwhile (the listing's own descriptor)
            continue
        if target.startswith("socket:"):
            held.add(target)
    return held


async def _until_closed(before: set[str], peer: _SilentBroker | None = None) -> None:
    """Wait until every socket opened since ``before`` (but the peer's) is closed again."""
    others = peer.own if peer is not None else set()
    async with asyncio.timeout(WAIT):
        while _sockets() - before - others:  # noqa: ASYNC110 (no event for a closed fd)
            await asyncio.sleep(0.01)


class _SilentBroker:
    """A TCP peer on a free loopback port that accepts connections and never answers (no
    CONNACK, no OPC UA Acknowledge)."""

    def __init__(self) -> None:
        self.port = 0
        self.accepted: asyncio.Queue[None] = asyncio.Queue()  # one per client that spoke
        self.own: set[str] = set()  # its sockets: the listening one and the accepted ones


@asynccontextmanager
async def _silent_broker() -> AsyncIterator[_SilentBroker]:
    peer = _SilentBroker()
    writers: list[asyncio.StreamWriter] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        peer.own.add(_name(writer.get_extra_info("socket").fileno()))
        await reader.read(1)  # the client's first message (CONNECT, Hello) is on its way
        peer.accepted.put_nowait(None)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    peer.own.add(_name(server.sockets[0].fileno()))
    try:
        yield peer
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def _client(host: str, port: int, timeout: float = 10.0) -> BrokerClient:
    return BrokerClient(host, port, identifier=f"test-{uuid.uuid4().hex[:8]}", timeout=timeout)


async def _cancelled(client: BrokerClient, started: asyncio.Event | None = None) -> None:
    async def attempt() -> None:
        async with client:
            await asyncio.Event().wait()

    task = asyncio.create_task(attempt())
    if started is None:
        await asyncio.sleep(0)  # paho is still connecting in its thread
    else:
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_while_connecting_closes_the_socket(
    mqtt_host_port: tuple[str, int],
) -> None:
    before = _sockets()
    for _ in range(5):
        await _cancelled(_client(*mqtt_host_port))
    await _until_closed(before)


async def test_cancelled_while_waiting_for_connack_closes_the_socket() -> None:
    async with _silent_broker() as peer:
        before = _sockets()
        started = asyncio.Event()

        async def on_accept() -> None:
            await peer.accepted.get()
            started.set()

        watcher = asyncio.create_task(on_accept())
        await _cancelled(_client("127.0.0.1", peer.port), started)
        await watcher
        # closed by the client itself, while the peer still holds the connection open
        await _until_closed(before, peer)


async def test_connack_timeout_closes_the_socket() -> None:
    async with _silent_broker() as peer:
        before = _sockets()
        with pytest.raises(aiomqtt.MqttError):
            async with _client("127.0.0.1", peer.port, timeout=0.2):
                pass
        await _until_closed(before, peer)


async def test_a_session_closes_its_socket_when_left(mqtt_host_port: tuple[str, int]) -> None:
    before = _sockets()
    async with _client(*mqtt_host_port) as client:
        await client.subscribe(f"test/{uuid.uuid4().hex}", qos=1)
        assert _sockets() - before
    await _until_closed(before)


async def test_opcua_connect_cancelled_midway_closes_the_socket() -> None:
    """A connect cancelled while it waits for the server's answer leaves no socket (asyncua
    closes it only when the attempt fails)."""
    async with _silent_broker() as peer:
        before = _sockets()
        client = Client(f"opc.tcp://127.0.0.1:{peer.port}/", timeout=30)
        attempt = asyncio.create_task(connect_client(client))
        await peer.accepted.get()  # Hello sent: the client waits for the answer
        attempt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await attempt
        await _until_closed(before, peer)

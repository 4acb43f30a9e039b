"""BrokerClient.batches hands over every message received, in order and intact, from the socket
read in chunks: many small messages that arrive together, messages larger than a chunk, and
what arrived before it was asked; a lost connection ends it with MqttError."""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest

from devices.vda5050.mqtt_client import READ_AHEAD, BrokerClient

pytestmark = pytest.mark.integration

WAIT = 10.0  # wall seconds for the messages to arrive


async def _collect(client: BrokerClient, count: int) -> list[tuple[str, bytes]]:
    received: list[tuple[str, bytes]] = []
    async with asyncio.timeout(WAIT):
        async for batch in client.batches():
            received += batch
            if len(received) >= count:
                return received
    return received


async def test_batches_deliver_every_message_in_order_and_intact(
    mqtt_host_port: tuple[str, int], interface_name: str
) -> None:
    host, port = mqtt_host_port
    base = f"{interface_name}/batches"
    # small ones that arrive in the same chunks, and ones larger than a chunk between them
    sent = [
        (f"{base}/{i % 7}", (b"x" * (READ_AHEAD * 2 + i) if i % 50 == 0 else b"%d" % i))
        for i in range(1, 1001)
    ]
    async with (
        BrokerClient(host, port, identifier=f"batches-{uuid.uuid4().hex[:6]}") as reader,
        aiomqtt.Client(host, port, identifier=f"batches-pub-{uuid.uuid4().hex[:6]}") as writer,
    ):
        await reader.subscribe(f"{base}/#", qos=1)
        # the first messages are queued by aiomqtt before batches() is asked for
        for t, payload in sent[:10]:
            await writer.publish(t, payload, qos=1)
        await asyncio.sleep(0.3)
        for t, payload in sent[10:]:
            await writer.publish(t, payload, qos=1)
        received = await _collect(reader, len(sent))
    assert [t for t, _ in received] == [t for t, _ in sent]
    assert received == sent


async def test_batches_end_with_mqtt_error_when_the_connection_is_lost(
    mqtt_host_port: tuple[str, int], interface_name: str
) -> None:
    host, port = mqtt_host_port
    identifier = f"batches-lost-{uuid.uuid4().hex[:6]}"
    async with BrokerClient(host, port, identifier=identifier) as reader:
        await reader.subscribe(f"{interface_name}/lost", qos=1)

        async def read() -> None:
            async for _ in reader.batches():
                pass

        task = asyncio.create_task(read())
        await asyncio.sleep(0.1)
        # a second client with the same identifier: the broker drops the first
        async with aiomqtt.Client(host, port, identifier=identifier):
            async with asyncio.timeout(WAIT):
                with pytest.raises(aiomqtt.MqttError):
                    await task

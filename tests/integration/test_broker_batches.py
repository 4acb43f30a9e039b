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


async def test_qos_0_and_1_messages_of_every_size_arrive_in_order_and_intact(
    mqtt_host_port: tuple[str, int], interface_name: str
) -> None:
    """QoS 0 messages are taken off the read-ahead by BrokerClient, the rest by paho; each
    delivery length's encoding (1 to 3 bytes), chunk boundaries within packets."""
    host, port = mqtt_host_port
    base = f"{interface_name}/mixed"
    sizes = [0, 1, 100, 120, 130, 16370, 16390, READ_AHEAD - 10, READ_AHEAD + 10, 700]
    sent = [
        (f"{base}/{i % 3}", b"%d:" % i + bytes([i % 256]) * sizes[i % len(sizes)], i % 4 == 3)
        for i in range(400)
    ]
    async with (
        BrokerClient(host, port, identifier=f"mixed-{uuid.uuid4().hex[:6]}") as reader,
        aiomqtt.Client(host, port, identifier=f"mixed-pub-{uuid.uuid4().hex[:6]}") as writer,
    ):
        await reader.subscribe(f"{base}/#", qos=1)
        collecting = asyncio.create_task(_collect(reader, len(sent)))
        await asyncio.sleep(0.1)  # batches() is being read
        # all published at once: they arrive together, many in each chunk read
        await asyncio.gather(
            *(writer.publish(t, payload, qos=1 if qos1 else 0) for t, payload, qos1 in sent)
        )
        received = await collecting
    # in order within each QoS (the writer's QoS 1 publishes wait their turn), every one intact
    for qos1 in (False, True):
        expected = [(t, payload) for t, payload, q in sent if q == qos1]
        assert [m for m in received if m in expected] == expected
    assert len(received) == len(sent)


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

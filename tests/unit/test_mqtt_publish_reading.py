"""BrokerClient takes the complete QoS 0 PUBLISH packets read ahead off the socket itself, as paho
would hand them over, and leaves every other packet, an incomplete one and a malformed one to
paho, in order."""

from __future__ import annotations

import pytest

from devices.vda5050.mqtt_client import BrokerClient, Received


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: bytes, payload: bytes, first: int = 0x30) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic + payload
    return bytes([first]) + _length(len(body)) + body


PINGRESP = b"\xd0\x00"
SUBACK = b"\x90\x03\x00\x01\x01"  # packet id 1, QoS 1 granted


def _take(data: bytes) -> tuple[list[Received], bytes]:
    client = BrokerClient("127.0.0.1")
    client._inbox += data
    received: list[Received] = []
    client._take_publishes(received)
    return received, bytes(client._inbox)


@pytest.mark.parametrize("size", [0, 1, 120, 125, 126, 16380, 16381, 20000])
async def test_a_publish_of_any_length_is_taken_intact(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    received, left = _take(publish(b"a/b", payload))
    assert received == [("a/b", payload)] and left == b""


async def test_publishes_are_taken_up_to_the_first_other_packet() -> None:
    qos1 = publish(b"a/q1", b"x", first=0x32)[:1] + b"\x07\x00\x04a/q1\x00\x01x"
    data = publish(b"a/1", b"one") + publish(b"a/2", b"two", first=0x39)
    for other in (qos1, PINGRESP, SUBACK):
        received, left = _take(data + other + publish(b"a/3", b"three"))
        # DUP and RETAIN as paho: delivered all the same
        assert received == [("a/1", b"one"), ("a/2", b"two")]
        assert left == other + publish(b"a/3", b"three")


@pytest.mark.parametrize("cut", [1, 2, 4, 10])
async def test_an_incomplete_publish_is_left_for_the_next_read(cut: int) -> None:
    whole = publish(b"a/b", b"z" * 200)
    received, left = _take(publish(b"a/a", b"1") + whole[:cut])
    assert received == [("a/a", b"1")] and left == whole[:cut]


async def test_a_malformed_publish_is_left_to_paho() -> None:
    too_long_length = b"\x30\xff\xff\xff\xff\x01"
    topic_past_the_end = b"\x30\x03\x00\x09a"
    for bad in (too_long_length, topic_past_the_end, b"\x30\x01\x00"):
        received, left = _take(publish(b"a/a", b"1") + bad)
        assert received == [("a/a", b"1")] and left == bad


async def test_a_topic_that_is_not_utf8_is_dropped_as_paho_delivers_it() -> None:
    received, left = _take(publish(b"a/\xff", b"1") + publish(b"a/b", b"2"))
    assert received == [("a/b", b"2")] and left == b""


async def test_nothing_is_taken_while_paho_is_within_a_packet() -> None:
    client = BrokerClient("127.0.0.1")
    client._client._in_packet["command"] = 0x30
    client._inbox += publish(b"a/b", b"1")
    received: list[Received] = []
    client._take_publishes(received)
    assert received == [] and len(client._inbox) == len(publish(b"a/b", b"1"))


async def test_a_paho_without_the_internals_relied_on_reads_every_packet_itself() -> None:
    client = BrokerClient("127.0.0.1")
    del client._client._on_message_filtered  # as a paho-mqtt release that renamed it would be
    data = publish(b"a/1", b"one")
    client._inbox += data
    received: list[Received] = []
    client._take_publishes(received)
    assert received == [] and bytes(client._inbox) == data  # left for paho
    assert not client._direct

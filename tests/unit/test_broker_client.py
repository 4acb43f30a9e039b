"""BrokerClient keeps a cancellation that arrives with the broker's refusal of a connection."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiomqtt
import pytest

from devices.vda5050.mqtt_client import BrokerClient


async def _refused_after_swallowing_a_cancel(self: Any) -> None:
    """What aiomqtt's ``__aenter__`` does on Python 3.11 when a CONNACK refusing the login
    arrives together with a cancellation: ``wait_for`` swallows the cancellation and the
    refusal is raised."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):  # swallowed, as wait_for does
        await asyncio.sleep(0)
    raise aiomqtt.MqttCodeError(5, "Connection Refused: not authorised.")


async def _refused(self: Any) -> None:
    raise aiomqtt.MqttCodeError(5, "Connection Refused: not authorised.")


async def test_a_refusal_that_came_with_a_cancellation_raises_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aiomqtt.Client, "__aenter__", _refused_after_swallowing_a_cancel)
    client = BrokerClient("127.0.0.1", 1, identifier="refused-cancelled")

    async def connect() -> None:
        async with client:
            pytest.fail("connected")

    task = asyncio.create_task(connect())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_plain_refusal_is_raised_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiomqtt.Client, "__aenter__", _refused)
    with pytest.raises(aiomqtt.MqttCodeError, match="refused"):
        async with BrokerClient("127.0.0.1", 1, identifier="refused"):
            pytest.fail("connected")

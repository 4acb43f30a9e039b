"""``linectl sim robots --profile``: the robot fleet simulator as a process of its own, strict or
lenient, over the real broker; and its refusal of profile settings it does not know."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from devices.base import RobotAction
from devices.vda5050.link import broker_address
from devices.vda5050.messages import MessageBuilder
from kernel.clock import ManualClock

pytestmark = pytest.mark.integration
WAIT = 30.0  # wall seconds: a process starts, connects and says ONLINE


@contextlib.asynccontextmanager
async def robots_process(
    mqtt_url: str, interface_name: str, *options: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``linectl sim robots`` on the reference line, on this test's interface name."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        "sim",
        "robots",
        "--broker",
        mqtt_url,
        "--time-scale",
        "10",
        *options,
        env={**os.environ, "LINECTL_MQTT__INTERFACE_NAME": interface_name},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _send_unknown_instant_action(mqtt_url: str, prefix: str) -> dict[str, Any]:
    """Wait for R02 to be ONLINE, send it an instant action it does not know, and return the
    first state that answers it."""
    address = broker_address(mqtt_url)
    builder = MessageBuilder("2.1.0", "linectl-sim", "R02", ManualClock())
    message = builder.instant_actions([RobotAction("lift-1", "liftForks", "NONE")])
    async with aiomqtt.Client(address.host, address.port) as client:
        await client.subscribe(f"{prefix}/connection", qos=1)
        await client.subscribe(f"{prefix}/state", qos=1)
        async with asyncio.timeout(WAIT):
            async for received in client.messages:
                assert isinstance(received.payload, bytes)
                body = json.loads(received.payload)
                if received.topic.value.endswith("/connection"):
                    if body["connectionState"] == "ONLINE":
                        await client.publish(f"{prefix}/instantActions", json.dumps(message))
                    continue
                answered = [a for a in body["actionStates"] if a["actionId"] == "lift-1"]
                refused = [e for e in body["errors"] if e["errorType"] == "validationError"]
                if answered or refused:
                    return dict(body)
    raise AssertionError("unreachable")


async def test_strict_by_default_and_lenient_on_request(mqtt_url: str, interface_name: str) -> None:
    prefix = f"{interface_name}/v2/linectl-sim/R02"
    async with robots_process(mqtt_url, interface_name):
        state = await _send_unknown_instant_action(mqtt_url, prefix)
    refs = [
        {r["referenceKey"]: r["referenceValue"] for r in e["errorReferences"]}
        for e in state["errors"]
    ]
    assert [r["actionId"] for r in refs] == ["lift-1"]
    assert state["actionStates"] == []

    async with robots_process(mqtt_url, interface_name, "--profile", "lenient"):
        state = await _send_unknown_instant_action(mqtt_url, prefix)
    assert [(a["actionId"], a["actionStatus"]) for a in state["actionStates"]] == [
        ("lift-1", "FAILED")
    ]


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--profile", "picky", "unknown vehicle profile 'picky'; one of strict, lenient"),
        ("--stop-on-cancel", "never", "unknown stop_on_cancel 'never'; one of next_node"),
    ],
)
def test_unknown_profile_settings_are_refused(option: str, value: str, words: str) -> None:
    res = CliRunner().invoke(app, ["sim", "robots", option, value])
    assert res.exit_code == 2
    assert words in res.output

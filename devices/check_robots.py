"""The commissioning check of the robot fleet: passive, on the broker.

:func:`check_robots` collects the retained ``connection`` and ``factsheet`` messages and the
periodic ``state`` of every configured robot for a few seconds (less once every robot has sent
everything) and validates each against the schema of the robot's configured VDA 5050 version.
Nothing is published. An unreachable broker is a report for every robot. A robot without a
retained factsheet gets a note, not a problem: the controller works without one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import aiomqtt

from devices.check_report import DeviceReport, Finding, Status
from devices.vda5050 import schema
from devices.vda5050.broker import BrokerSettingsError, broker_settings
from devices.vda5050.topics import topic
from kernel.config.model import LineConfig

log = logging.getLogger("devices.check")  # the commissioning check logs under one name

ROBOT_TOPICS = ("connection", "state", "factsheet")
# the controller works without a factsheet (it checks one against the picking templates when
# the robot publishes it): its absence is a note, not a problem
_NO_FACTSHEET = {
    "2.0.0": "none retained; not needed by the controller (VDA 5050 2.0 has no factsheetRequest)",
    "2.1.0": "none retained; not needed by the controller, which asks for it with factsheetRequest",
}


async def check_robots(config: LineConfig, wait: float = 3.0) -> list[DeviceReport]:
    """Listen on the broker for ``wait`` seconds (less once every robot has sent everything)
    to the connection, state and factsheet topics of every configured robot."""
    try:
        broker = broker_settings(config.mqtt)
    except BrokerSettingsError as exc:
        return _all_unreachable(config, str(exc))
    topics = {
        topic(config.mqtt.interface_name, _manufacturer(config, r.serial), r.serial, sub): (
            r.serial,
            sub,
        )
        for r in config.robots.fleet
        for sub in ROBOT_TOPICS
    }
    seen: dict[tuple[str, str], bytes] = {}
    try:
        async with broker.client(
            f"linectl-check-{uuid.uuid4().hex[:8]}", timeout=max(wait, 1.0)
        ) as client:
            await client.subscribe([(t, 1) for t in topics])
            await _collect(client, topics, seen, wait)
    except aiomqtt.MqttError as exc:
        log.info(
            "broker unreachable",
            extra={"url": broker.url, "username": broker.who, "reason": str(exc)},
        )
        return _all_unreachable(config, f"broker {broker.url} as {broker.who}: {exc}")
    return [_robot_report(config, r.serial, r.version, seen) for r in config.robots.fleet]


async def _collect(
    client: aiomqtt.Client,
    topics: dict[str, tuple[str, str]],
    seen: dict[tuple[str, str], bytes],
    wait: float,
) -> None:
    """Keep the latest payload per (serial, topic) until all are in or ``wait`` has passed."""
    try:
        async with asyncio.timeout(wait):
            async for message in client.messages:
                key = topics.get(message.topic.value)
                if key is None or not isinstance(message.payload, bytes) or not message.payload:
                    continue  # an empty retained message is a cleared one
                seen[key] = message.payload
                if len(seen) == len(topics):
                    return
    except TimeoutError:
        return


def _manufacturer(config: LineConfig, serial: str) -> str:
    return config.robot_model(serial).manufacturer


def _all_unreachable(config: LineConfig, reason: str) -> list[DeviceReport]:
    return [
        DeviceReport(
            f"robot {r.serial}", config.mqtt.url, (Finding("broker", Status.UNREACHABLE, reason),)
        )
        for r in config.robots.fleet
    ]


def _robot_report(
    config: LineConfig, serial: str, version: str, seen: dict[tuple[str, str], bytes]
) -> DeviceReport:
    prefix = topic(config.mqtt.interface_name, _manufacturer(config, serial), serial, "")
    facts: list[tuple[str, str]] = [("version", version)]
    findings: list[Finding] = []
    for sub in ROBOT_TOPICS:
        raw = seen.get((serial, sub))
        if raw is None and sub == "factsheet":
            findings.append(Finding(sub, Status.NOTE, _NO_FACTSHEET[version]))
            continue
        if raw is None:
            findings.append(Finding(sub, Status.MISSING, "nothing received"))
            continue
        parsed = schema.parse(version, sub, raw)
        if parsed.payload is None:
            findings.append(Finding(sub, Status.INVALID, parsed.errors[0]))
            continue
        findings.append(_robot_finding(sub, parsed.payload, facts))
    return DeviceReport(f"robot {serial}", prefix + "*", tuple(findings), tuple(facts))


def _robot_finding(sub: str, payload: dict[str, Any], facts: list[tuple[str, str]]) -> Finding:
    if sub == "connection":
        state = str(payload["connectionState"])
        facts.append(("connection", state))
        if state != "ONLINE":
            return Finding(sub, Status.OFFLINE, state)
        return Finding(sub, Status.FOUND, state)
    if sub == "state":
        mode = str(payload["operatingMode"])
        facts.append(("operating mode", mode))
        return Finding(sub, Status.FOUND, f"valid, operatingMode {mode}")
    return Finding(sub, Status.FOUND, "valid")

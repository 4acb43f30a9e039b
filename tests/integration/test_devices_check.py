"""``linectl devices check`` against real peers: the conveyor simulator, a server whose model is
broken on purpose, an endpoint nobody listens on, and the robot fleet simulator on the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asyncua import Server, ua
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE
from devices.check import (
    Status,
    check_conveyor,
    check_robots,
    expected_crane_nodes,
    expected_nodes,
)
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.asrs import AsrsSimulator
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from simulators.conveyor.address_space import MethodCallbacks, build_address_space
from simulators.conveyor.packml_unit import PackMLCallbacks
from simulators.robots import RobotFleetSimulator

pytestmark = pytest.mark.integration
WAIT = 10.0  # wall seconds a check may listen; it returns as soon as every robot is heard


def on_endpoint(config: LineConfig, endpoint: str, namespace: str | None = None) -> LineConfig:
    update: dict[str, Any] = {"endpoint": endpoint}
    if namespace is not None:
        update["namespace"] = namespace
    opcua = config.conveyor.opcua.model_copy(update=update)
    return config.with_overrides(conveyor=config.conveyor.model_copy(update={"opcua": opcua}))


def on_broker(config: LineConfig, mqtt_url: str, interface_name: str) -> LineConfig:
    mqtt = config.mqtt.model_copy(update={"url": mqtt_url, "interface_name": interface_name})
    return config.with_overrides(mqtt=mqtt)


def with_fleet(config: LineConfig, serials: set[str]) -> LineConfig:
    fleet = [r for r in config.robots.fleet if r.serial in serials]
    return config.with_overrides(robots=config.robots.model_copy(update={"fleet": fleet}))


@pytest.fixture
async def sim_line(reference_line: LineConfig) -> AsyncIterator[LineConfig]:
    """The reference line with the conveyor and AS/RS simulators serving it on free ports."""
    line = on_endpoint(reference_line, f"opc.tcp://127.0.0.1:{free_port()}/linectl/")
    opcua = line.asrs.opcua.model_copy(
        update={"endpoint": f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/"}
    )
    line = line.model_copy(update={"asrs": line.asrs.model_copy(update={"opcua": opcua})})
    clock = ScaledClock(50)
    async with (
        ConveyorSimulator(line, clock, line.conveyor.opcua.endpoint),
        AsrsSimulator(line, clock),
    ):
        yield line


@contextlib.asynccontextmanager
async def fleet(config: LineConfig) -> AsyncIterator[RobotFleetSimulator]:
    sim = RobotFleetSimulator(config, ScaledClock(80), config.mqtt.url, config.mqtt.interface_name)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sim.run(), name="test.robots")
        try:
            yield sim
        finally:
            task.cancel()


async def _no_op(parent: ua.NodeId, *args: Any) -> list[ua.Variant]:
    return []


@contextlib.asynccontextmanager
async def broken_server(config: LineConfig) -> AsyncIterator[LineConfig]:
    """A server with the documented model except for five breakages (see the test)."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/broken/"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    server.disable_clock(True)
    callbacks = MethodCallbacks(
        packml=PackMLCallbacks(
            command=lambda _, __: _no_op,
            set_mach_speed=_no_op,
            set_unit_mode=_no_op,
            not_supported=_no_op,
        ),
        divert=_no_op,
        induct=_no_op,
        tracking=_no_op,
        journal=_no_op,
        jog=lambda _: _no_op,
    )
    nodes = await build_address_space(server, config, callbacks)
    conv = config.conveyor
    idx = nodes.idx
    silent = conv.sorter.diverts[1].id  # emits no events
    for node in [*nodes.scanners.values(), *nodes.diverts.values()]:
        if node is not nodes.diverts[silent]:
            await server.get_event_generator(nodes.divert_event_type, node.nodeid)
    await server.delete_nodes([nodes.zones[conv.zones[1].id].jammed])
    await server.delete_nodes([nodes.diverts[conv.sorter.diverts[0].id]], recursive=True)
    chute = conv.sorter.chutes[0].id
    count = nodes.chutes[chute].count
    chute_node = await count.get_parent()
    await server.delete_nodes([count])
    await chute_node.add_variable(
        ua.NodeId("wrong.Count", idx), ua.QualifiedName("Count", idx), 0.0, ua.VariantType.Double
    )
    divert = await nodes.sorter.get_child(ua.QualifiedName("Divert", idx))
    await server.delete_nodes([divert])
    await nodes.sorter.add_variable(
        ua.NodeId("wrong.Divert", idx), ua.QualifiedName("Divert", idx), "", ua.VariantType.String
    )
    await server.start()
    try:
        yield on_endpoint(config, endpoint)
    finally:
        await server.stop()


# --- OPC UA -------------------------------------------------------------------------------------


async def test_the_simulator_has_every_documented_node(sim_line: LineConfig) -> None:
    report = await check_conveyor(sim_line)
    assert report.problems() == []
    assert report.ok
    assert len(report.findings) == len(expected_nodes(sim_line))
    by_item = {f.item: f for f in report.findings}
    zone = sim_line.conveyor.zones[0].id
    assert by_item[f"Line/C1/Zones/{zone}/SpeedActual"].detail == "Double"
    assert by_item["Line/C1/Sorter/S1/Divert"].detail == "Method"
    assert by_item["Types/EventTypes/BaseEventType/ScanEventType/Codes"].ok
    assert ("PackML state", "Execute") in report.facts


async def test_missing_nodes_and_wrong_types_are_named(reference_line: LineConfig) -> None:
    conv = reference_line.conveyor
    async with broken_server(reference_line) as line:
        report = await check_conveyor(line)
    problems = {f.item: (f.status, f.detail) for f in report.problems()}
    sorter = "Line/C1/Sorter/S1"
    chute = conv.sorter.chutes[0].id
    assert problems == {
        f"Line/C1/Zones/{conv.zones[1].id}/Jammed": (Status.MISSING, ""),
        # the divert's own properties are not listed again under a missing divert
        f"{sorter}/Diverts/{conv.sorter.diverts[0].id}": (Status.MISSING, ""),
        f"{sorter}/Chutes/{chute}/Count": (Status.WRONG_TYPE, "expected UInt32, got Double"),
        f"{sorter}/Divert": (Status.WRONG_TYPE, "expected Method, got Variable"),
        f"{sorter}/Diverts/{conv.sorter.diverts[1].id}": (
            Status.WRONG_TYPE,
            "EventNotifier lacks SubscribeToEvents",
        ),
    }
    assert not report.ok


async def test_a_namespace_the_server_lacks_is_reported(sim_line: LineConfig) -> None:
    report = await check_conveyor(on_endpoint(sim_line, sim_line.conveyor.opcua.endpoint, "urn:x"))
    assert [(f.item, f.status) for f in report.findings] == [("namespace urn:x", Status.MISSING)]
    assert not report.ok


async def test_an_endpoint_nobody_listens_on_is_unreachable(reference_line: LineConfig) -> None:
    line = on_endpoint(reference_line, f"opc.tcp://127.0.0.1:{free_port()}/linectl/")
    report = await check_conveyor(line, connect_timeout=2.0)
    assert [(f.item, f.status) for f in report.findings] == [("endpoint", Status.UNREACHABLE)]
    assert not report.ok


# --- robots -------------------------------------------------------------------------------------


async def test_every_running_robot_is_found(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    line = on_broker(reference_line, mqtt_url, interface_name)
    async with fleet(line):
        reports = await check_robots(line, wait=WAIT)
    assert [r.device for r in reports] == [f"robot {r.serial}" for r in line.robots.fleet]
    for report in reports:
        assert report.problems() == [], report
        facts = dict(report.facts)
        assert facts["connection"] == "ONLINE"
        assert facts["operating mode"] == "AUTOMATIC"
        assert [f.item for f in report.findings] == ["connection", "state", "factsheet"]


async def test_a_robot_that_is_not_running_is_missing(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    line = on_broker(reference_line, mqtt_url, interface_name)
    absent = line.robots.fleet[-1].serial
    running = with_fleet(line, {r.serial for r in line.robots.fleet} - {absent})
    async with fleet(running):
        # first until every running robot has been heard, then the whole line briefly
        assert all(r.ok for r in await check_robots(running, wait=WAIT))
        reports = {r.device: r for r in await check_robots(line, wait=1.0)}
    assert not reports[f"robot {absent}"].ok
    assert [(f.item, f.status) for f in reports[f"robot {absent}"].findings] == [
        ("connection", Status.MISSING),
        ("state", Status.MISSING),
        ("factsheet", Status.NOTE),  # the controller works without one
    ]
    assert all(r.ok for device, r in reports.items() if device != f"robot {absent}")
    # after a clean stop the retained connection message says OFFLINE
    after = {r.device: r for r in await check_robots(running, wait=1.0)}
    serial = running.robots.fleet[0].serial
    assert after[f"robot {serial}"].findings[0].status is Status.OFFLINE


async def test_an_unreachable_broker_is_reported_per_robot(reference_line: LineConfig) -> None:
    line = on_broker(reference_line, f"mqtt://127.0.0.1:{free_port()}", "uagvnobody")
    reports = await check_robots(line, wait=1.0)
    assert len(reports) == len(line.robots.fleet)
    assert {f.status for r in reports for f in r.findings} == {Status.UNREACHABLE}


# --- the command --------------------------------------------------------------------------------


def _env(
    endpoint: str, mqtt_url: str, interface_name: str, asrs_endpoint: str | None = None
) -> dict[str, str]:
    asrs = asrs_endpoint or f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/"
    return {
        "LINECTL_CONVEYOR__OPCUA__ENDPOINT": endpoint,
        "LINECTL_ASRS__OPCUA__ENDPOINT": asrs,
        "LINECTL_MQTT__URL": mqtt_url,
        "LINECTL_MQTT__INTERFACE_NAME": interface_name,
    }


async def test_command_exits_0_when_every_device_is_there(
    sim_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    env = {
        **os.environ,
        **_env(
            sim_line.conveyor.opcua.endpoint,
            mqtt_url,
            interface_name,
            sim_line.asrs.opcua.endpoint,
        ),
    }
    args = ["devices", "check", "--config", str(REFERENCE_LINE), "--wait", str(WAIT), "--json"]
    async with fleet(on_broker(sim_line, mqtt_url, interface_name)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "controller.app.cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await proc.communicate()
    doc = json.loads(stdout)
    assert proc.returncode == 0, [d for d in doc["devices"] if not d["ok"]]
    assert doc["ok"] is True
    devices = [d["device"] for d in doc["devices"]]
    assert devices == [
        "conveyor C1",
        "AS/RS cranes CR1, CR2",
        *(f"robot {r.serial}" for r in sim_line.robots.fleet),
    ]
    assert doc["devices"][0]["found"] == len(expected_nodes(sim_line))
    assert doc["devices"][1]["found"] == len(expected_crane_nodes(sim_line))


def test_command_reports_an_unreachable_conveyor_and_absent_robots(mqtt_url: str) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    interface_name = f"uagvcheck{uuid.uuid4().hex[:10]}"  # nothing is ever published here
    args = ["devices", "check", "--config", str(REFERENCE_LINE), "--wait", "0.5"]
    result = CliRunner().invoke(app, args, env=_env(endpoint, mqtt_url, interface_name))
    assert result.exit_code == 1, result.output
    assert "unreachable" in result.output
    assert "nothing received" in result.output
    assert "problems: conveyor C1, AS/RS cranes CR1, CR2, robot R01" in result.output

    result = CliRunner().invoke(
        app, [*args, "--json"], env=_env(endpoint, mqtt_url, interface_name)
    )
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["devices"][0]["findings"][0]["status"] == "unreachable"


def test_command_exits_2_for_an_unusable_line_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["devices", "check", "--config", str(tmp_path / "no.yaml")])
    assert result.exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("robots: [\n")
    result = CliRunner().invoke(app, ["devices", "check", "--config", str(bad)])
    assert result.exit_code == 2
    assert "not valid YAML" in result.stderr

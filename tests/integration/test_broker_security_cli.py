"""The commissioning commands on the locked-down broker, each as its own process as an engineer
runs them: ``linectl sim robots --logins`` (every robot logged in as itself) and
``linectl devices check`` (as the controller, from the line file's mqtt section)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.linefile.loader import REFERENCE_LINE
from simulators.broker import free_port
from tests.integration.site_broker import (
    MOSQUITTO,
    MOSQUITTO_PASSWD,
    Logins,
    SiteBroker,
    make_logins,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        MOSQUITTO is None or MOSQUITTO_PASSWD is None,
        reason="needs the mosquitto broker and mosquitto_passwd (Debian package mosquitto)",
    ),
]
DEFAULT_MQTT = "mqtt:\n  url: mqtt://127.0.0.1:1883\n"


def line_file(tmp_path: Path, port: int, logins: Logins) -> Path:
    text = REFERENCE_LINE.read_text()
    assert DEFAULT_MQTT in text
    path = tmp_path / "line.yaml"
    path.write_text(
        text.replace(
            DEFAULT_MQTT,
            f"mqtt:\n  url: mqtt://127.0.0.1:{port}\n  username: linectl\n"
            f"  password_file: {logins.controller_password_file}\n",
        )
    )
    return path


async def linectl(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        *args,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[SiteBroker, Logins]]:
    logins = make_logins(tmp_path / "mqtt")
    async with SiteBroker(tmp_path, free_port(), logins.passwd) as broker:
        yield broker, logins


async def test_devices_check_sees_robots_that_log_in_as_themselves(
    tmp_path: Path, site: tuple[SiteBroker, Logins]
) -> None:
    broker, logins = site
    line = line_file(tmp_path, broker.port, logins)
    robots = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        *("sim", "robots", "--config", str(line), "--logins", str(logins.robot_logins)),
        *("--time-scale", "20", "--log-format", "json"),
        env=dict(os.environ),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _code, out, err = await linectl(
            *("devices", "check", "--config", str(line), "--wait", "10"),
            *("--connect-timeout", "0.5", "--json"),
        )
    finally:
        robots.terminate()
        _, sim_log = await robots.communicate()
    report = json.loads(out)
    robot_reports = [d for d in report["devices"] if d["device"].startswith("robot ")]
    assert len(robot_reports) == 6, out
    for device in robot_reports:
        statuses = {f["item"]: f["status"] for f in device["findings"]}
        assert statuses.get("connection") == statuses.get("state") == "found", device
        assert device["facts"]["connection"] == "ONLINE"
    for serial in ("R01", "R06"):
        assert f"u'{serial}'" in broker.log  # the robot logged in as itself
    secrets = [logins.controller_password, logins.password("R01")]
    assert not any(s in out + err + sim_log.decode() for s in secrets)


async def test_a_wrong_password_is_reported_by_devices_check(
    tmp_path: Path, site: tuple[SiteBroker, Logins]
) -> None:
    broker, logins = site
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    line = line_file(tmp_path, broker.port, logins)
    line.write_text(line.read_text().replace(str(logins.controller_password_file), str(wrong)))
    code, out, _ = await linectl(
        *("devices", "check", "--config", str(line), "--wait", "1"),
        *("--connect-timeout", "0.5", "--json"),
    )
    assert code == 1
    robot = next(d for d in json.loads(out)["devices"] if d["device"] == "robot R01")
    [finding] = robot["findings"]
    assert finding["status"] == "unreachable"
    assert "as linectl" in finding["detail"] and "not-the-password" not in out


async def test_run_refuses_to_start_with_an_unreadable_password_file(tmp_path: Path) -> None:
    logins = Logins(tmp_path)  # nothing written: the password file does not exist
    line = line_file(tmp_path, 1883, logins)
    code, out, err = await linectl("run", "--config", str(line))
    assert code == 1
    assert "mqtt.password_file" in out + err and "cannot read" in out + err

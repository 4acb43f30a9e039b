"""The commissioning commands' answers when there is nothing to talk to, or nothing to do."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE

NO_ENV = {"LINECTL_API_TOKEN": None, "LINECTL_API_URL": None}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_controller_is_exit_2() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    for args in (["line", "hold"], ["robot", "pause", "R01"], ["audit"]):
        r = CliRunner().invoke(app, [*args, "--api", url, "--token", "t" * 20], env=NO_ENV)
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith(f"cannot reach the controller at {url}: ")
        assert "is linectl run serving there? its URL goes in --api or LINECTL_API_URL" in r.stderr


def test_devices_check_needs_exactly_one_of_config_and_api() -> None:
    neither = CliRunner().invoke(app, ["devices", "check"], env=NO_ENV)
    assert neither.exit_code == 2 and "exactly one of --config FILE or --api URL" in neither.stderr
    both = CliRunner().invoke(
        app, ["devices", "check", "--config", "x.yaml", "--api", "http://x"], env=NO_ENV
    )
    assert both.exit_code == 2


def test_a_bad_speed_is_a_usage_error() -> None:
    r = CliRunner().invoke(app, ["conveyor", "jog", "Z03", "--speed", "fast"], env=NO_ENV)
    assert r.exit_code == 2


def test_device_reports_read_back_from_the_api_answer() -> None:
    from controller.app.cli.ops import _report
    from devices.check import DeviceReport, Finding, Status

    report = DeviceReport(
        "robot R01",
        "mqtt://127.0.0.1:1883",
        (Finding("state", Status.FOUND, "valid"), Finding("factsheet", Status.MISSING)),
        (("operating mode", "AUTOMATIC"),),
    )
    assert _report(report.as_dict()) == report


def test_a_time_scale_is_a_finite_number_above_0(tmp_path: Path) -> None:
    line = str(REFERENCE_LINE)
    for command in (["run", "-c", line], ["demo"], ["sim", "conveyors"], ["sim", "asrs"]):
        for bad in ("0", "-2", "nan", "inf"):
            r = CliRunner().invoke(app, [*command, "--time-scale", bad], env=NO_ENV)
            assert r.exit_code == 2, (command, bad, r.output)
            said = " ".join(r.output.replace("│", " ").split())  # typer's box, unwrapped
            assert f"'--time-scale': {bad} is not a time scale: give a number above 0" in said


def test_the_demo_keeps_its_store_only_in_a_new_file(tmp_path: Path) -> None:
    taken = tmp_path / "line.db"
    taken.write_bytes(b"")
    r = CliRunner().invoke(app, ["demo", "--store", str(taken)], env=NO_ENV)
    assert r.exit_code == 2 and "the file exists" in r.stderr

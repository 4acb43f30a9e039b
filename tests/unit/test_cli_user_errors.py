"""User errors on the command line: one line on stderr each, a documented exit code, never a
traceback. The commands run as processes of their own (``python -m controller.app.cli``) with
stdout and stderr piped, as under a supervisor or in a script."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.common import PORT_IN_USE
from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE

ROOT = Path(__file__).resolve().parents[2]
USAGE = 2


def linectl(
    *args: str, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINECTL_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "controller.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def usage_error(text: str) -> str:
    """A usage error's text without the panel it is drawn in, on one line."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command wrote to stderr."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- 1: a controller that is not there ---------------------------------------------------------


def test_sim_wms_without_a_controller_names_the_url_and_what_to_do() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    r = linectl("sim", "wms", "--api", url, "--orders", "3")
    assert r.returncode == USAGE  # as line, robot, audit: a connection error
    line = one_line(r)
    assert line.startswith(f"cannot reach the controller at {url}: "), line
    assert "is linectl run serving there? its URL goes in --api or LINECTL_API_URL" in line
    r = linectl("sim", "wms", "--api", "localhost:8080", "--orders", "3")
    assert r.returncode == USAGE
    assert one_line(r).startswith("--api localhost:8080: ")


def test_sim_wms_at_another_server_than_linectl_reports_its_answers() -> None:
    """A URL where some other HTTP server answers (here one that implements no PUT)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        r = linectl("sim", "wms", "--api", url, "--orders", "2", "--prefix", "X")
    finally:
        server.shutdown()
        server.server_close()
    assert r.returncode == 1  # orders rejected
    assert r.stdout == "sent 2: 0 created, 0 existing, 2 rejected\n"
    assert "Traceback" not in r.stderr
    lines = sorted(line for line in r.stderr.splitlines() if line.startswith("X-"))  # per order
    assert [line.split(": ")[:2] for line in lines] == [
        ["X-000001", "HTTP 501"],
        ["X-000002", "HTTP 501"],
    ], r.stderr
    assert all("Unsupported method ('PUT')" in line for line in lines)


# --- 2: log level and format -------------------------------------------------------------------

LOGGING_COMMANDS = [
    ["run", "--config", str(REFERENCE_LINE)],
    ["demo"],
    ["sim", "robots"],
    ["sim", "conveyors"],
    ["sim", "asrs"],
]


@pytest.mark.parametrize("command", [*LOGGING_COMMANDS, ["devices", "check"]], ids=" ".join)
def test_an_unknown_log_level_is_a_usage_error_listing_the_levels(command: list[str]) -> None:
    r = CliRunner().invoke(app, [*command, "--log-level", "verbose"])
    assert r.exit_code == USAGE, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    expected = "Invalid value for '--log-level': Value error, 'verbose' is not one of 'debug', "
    assert expected + "'info', 'warning', 'error'." in usage_error(r.stderr)


@pytest.mark.parametrize("command", LOGGING_COMMANDS, ids=" ".join)
def test_an_unknown_log_format_is_a_usage_error_listing_the_formats(command: list[str]) -> None:
    r = CliRunner().invoke(app, [*command, "--log-format", "xml"])
    assert r.exit_code == USAGE, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    expected = "Invalid value for '--log-format': Value error, 'xml' is not one of 'text', "
    assert expected + "'json'." in usage_error(r.stderr)


def test_log_level_and_format_are_taken_in_any_case(tmp_path: Path) -> None:
    missing = tmp_path / "line.yaml"
    r = linectl("sim", "robots", "--log-level", "DEBUG", "--log-format", "JSON", "-c", str(missing))
    assert r.returncode == 1  # the options were taken; the line file is missing
    assert one_line(r) == f"{missing}: (document): cannot read file: No such file or directory"


# --- 3: certificates into a folder that cannot be written --------------------------------------


def test_opcua_certs_into_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder\n")
    for folder, reason in (
        (blocker / "sub", "Not a directory"),
        (blocker, "File exists and is not a folder"),
    ):
        r = linectl("opcua", "certs", "--out", str(folder))
        assert r.returncode == 1
        assert one_line(r) == f"--out {folder}: cannot write the certificates there: {reason}"
    assert not list(tmp_path.glob("**/*.pem"))


def test_opcua_certs_names_the_file_it_could_not_write(tmp_path: Path) -> None:
    (tmp_path / "server-key.pem").mkdir()  # where the server's key goes
    r = CliRunner().invoke(app, ["opcua", "certs", "--out", str(tmp_path)])
    assert r.exit_code == 1
    assert r.stderr == (
        f"--out {tmp_path}: cannot write the certificates there "
        f"({tmp_path / 'server-key.pem'}): Is a directory\n"
    )


# --- 5: a port in use --------------------------------------------------------------------------


def test_run_on_a_port_in_use_stops_before_it_touches_the_line(
    taken_port: int, tmp_path: Path
) -> None:
    r = linectl("run", "--config", str(REFERENCE_LINE), "--port", str(taken_port), cwd=tmp_path)
    assert r.returncode == PORT_IN_USE == 69
    assert one_line(r) == (
        f"port {taken_port} on 127.0.0.1 is in use: the API cannot listen there; stop what "
        "listens there (another linectl run?) or give another --port"
    )
    assert not (tmp_path / "var").exists()  # the order store was not even opened


@pytest.mark.parametrize(
    ("command", "path", "what", "setting"),
    [
        ("conveyors", "/linectl/", "the conveyor simulator", "conveyor.opcua.endpoint"),
        ("asrs", "/linectl/asrs/", "the AS/RS simulator", "asrs.opcua.endpoint"),
    ],
)
def test_a_simulator_on_a_port_in_use(
    taken_port: int, command: str, path: str, what: str, setting: str
) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{taken_port}{path}"
    r = linectl("sim", command, "--endpoint", endpoint)
    assert r.returncode == PORT_IN_USE
    assert one_line(r) == (
        f"port {taken_port} on 127.0.0.1 is in use: {what} cannot listen there; stop what "
        f"listens there or give another --endpoint ({setting})"
    )


# --- 7: one line per problem, also piped -------------------------------------------------------


def test_config_validate_keeps_one_line_per_problem_when_piped(tmp_path: Path) -> None:
    folder = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "and-another-level-below-it"
    folder.mkdir(parents=True)
    broken = folder / "line.yaml"
    broken.write_text(
        REFERENCE_LINE.read_text()
        .replace("levels: 10", "levels: 0", 1)
        .replace("  belt_speed: 2.0", "  belt_sped: 2.0")
    )
    r = linectl("config", "validate", str(broken))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert all(line.startswith(f"{broken}:") and len(line) > 150 for line in lines), lines
    assert lines[0].endswith("conveyor.belt_sped: unknown field (check the spelling)")
    assert lines[1].endswith("Input should be greater than or equal to 1 (got 0)")

    ok = folder / "ok.yaml"
    ok.write_text(REFERENCE_LINE.read_text())
    r = linectl("config", "validate", str(ok))
    assert r.returncode == 0, r.stderr
    [line] = r.stdout.splitlines()
    assert line.startswith(f"{ok}: ok (") and line.endswith(" SKUs)")


# --- 8: the version ----------------------------------------------------------------------------


def test_version() -> None:
    r = linectl("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"linectl {version('linectl')}\n"

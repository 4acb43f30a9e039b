"""``linectl run`` on a PostgreSQL store that cannot be reached: one line naming the database,
never its password, and exit code 1 (no traceback); with a standby, on a port in use: one line
and exit code 69."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller.linefile.loader import REFERENCE_LINE
from simulators.broker import free_port
from tests.line_processes import _env
from tests.store_backends import drop_schema, new_schema_name, postgres_dsn

pytestmark = pytest.mark.e2e


def test_run_on_an_unreachable_postgresql_says_so_in_one_line(tmp_path: Path) -> None:
    line = yaml.safe_load(REFERENCE_LINE.read_text())
    port = free_port()  # nothing listens there
    line["store"] = {
        "backend": "postgresql",
        "dsn": f"host=127.0.0.1 port={port} user=linectl password=s3cret-pw dbname=site",
        "connect_timeout": 2,
    }
    line["failover"] = {"enabled": True}
    line["api"]["port"] = free_port()
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump(line))
    done = subprocess.run(
        [sys.executable, "-m", "controller.app.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("linectl run: order store postgresql"), done.stderr
    assert f"127.0.0.1:{port}/site" in last
    assert "Traceback" not in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout


def test_a_controller_with_a_standby_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    """A line with a standby serves its API before it waits for the lease: a port in use ends
    it there, with exit code 69, before it could take the line."""
    schema = new_schema_name()
    line = yaml.safe_load(REFERENCE_LINE.read_text())
    line["store"] = {"backend": "postgresql", "dsn": postgres_dsn(), "db_schema": schema}
    line["failover"] = {"enabled": True}
    path = tmp_path / "line.yaml"
    path.write_text(yaml.safe_dump(line))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = int(taken.getsockname()[1])
        command = ["run", "--config", str(path), "--port", str(port)]
        try:
            done = subprocess.run(
                [sys.executable, "-m", "controller.app.cli", *command],
                capture_output=True,
                text=True,
                timeout=60,
                env=_env(),
            )
        finally:
            drop_schema(schema)
    assert done.returncode == 69, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"port {port} on 127.0.0.1 is in use: the API cannot listen there; stop what listens "
        "there (another linectl run?) or give another --port"
    )

"""``linectl run`` on a PostgreSQL store that cannot be reached: one line naming the database,
never its password, and exit code 1 (no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from controller.linefile.loader import REFERENCE_LINE
from simulators.broker import free_port
from tests.line_processes import _env

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

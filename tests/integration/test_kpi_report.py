"""The KPI report from a real order database written by the store, through ``linectl report``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.app.cli.report import write_report
from controller.linefile.loader import REFERENCE_LINE
from controller.orders.model import OrderIn, OrderStatus
from controller.store.asrs import AsrsCommand, CommandKind, CommandState
from controller.store.sqlite.store import SqliteOrderStore
from tests.report_checks import assert_offline_report

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]
HOSTILE = '<script>alert("x")</script>'


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def order_in(kind: str, due: datetime, until: datetime | None = None) -> OrderIn:
    body: dict[str, object] = {
        "type": kind,
        "due_at": due.isoformat(),
        "destination": "DHL" if kind == "b2c" else "CUST-ACME",
        "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
    }
    if until is not None:
        body |= {"deliver_from": at(-60).isoformat(), "deliver_until": until.isoformat()}
    return OrderIn.model_validate(body)


async def shift(store: SqliteOrderStore) -> None:
    """Three orders through robots and the sorter, one crane cycle, and texts a page must
    escape: a B2C order on time, a B2B order late against deliver_until, one still picking."""
    plan = [
        ("O-1", "b2c", at(60), None, "R1", 0, 12),
        ("O-2", "b2b", at(300), at(20), "R2", 1, 40),  # due later, but delivery window closed
        ("O-3", "b2c", at(30), None, HOSTILE, 2, None),
    ]
    for oid, kind, due, until, robot, start, done in plan:
        await store.create_order(oid, order_in(kind, due, until), at(start))
        data = {"robot": robot, "job": f"job-{oid}", "tote": f"T-{oid}"}
        await store.record(oid, "robot_assigned", at(start + 1), data=data)
        if done is None:
            continue
        await store.record(oid, "dropped", at(start + 5), data={"robot": robot})
        scan = {"outcome": "chute_full", "reason": HOSTILE} if kind == "b2b" else {}
        if scan:
            await store.record(oid, "scanned", at(start + 6), data=scan)
        scan = {"outcome": "diverted", "chute": "C1", "reason": None}
        await store.record(oid, "scanned", at(start + 7), data=scan)
        await store.record(oid, "sorted", at(done - 1), status=OrderStatus.SORTED)
        await store.record(oid, "completed", at(done), status=OrderStatus.COMPLETED)
    command = AsrsCommand(
        "ns-A1-S1.1", "A1", CommandKind.STORE, None, None, "T-9", "A1-L-01-01", None, None,
        CommandState.DONE, "", "ok", "", at(2), at(2.5),
    )  # fmt: skip
    await store.asrs_save(commands=[command])


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Path]:
    """The database of a short shift, still open by its store (a live service's WAL file)."""
    path = tmp_path / "line.db"
    store = SqliteOrderStore(path)
    await store.open()
    try:
        await shift(store)
        yield path
    finally:
        await store.close()


def test_kpis_of_a_real_database(db: Path) -> None:
    kpis = write_report(db, None, None, "line-1")
    assert kpis["completed"] == {"b2c": 1, "b2b": 1}
    assert kpis["cycle_time_seconds"]["b2c"]["p50"] == 12 * 60
    assert kpis["cycle_time_seconds"]["b2b"]["p50"] == 39 * 60
    # O-2 completed at 40 min, after its deliver_until (20 min): late though due_at is later
    assert kpis["on_time"]["b2b"] == {"on_time": 0, "late": 1, "overdue": 0, "share": 0.0}
    # O-3 is due at 30 min, within the window (to 40 min), and not completed
    assert kpis["on_time"]["b2c"] == {"on_time": 1, "late": 0, "overdue": 1, "share": 0.5}
    assert kpis["robots"]["R1"]["busy_seconds"] == 4 * 60  # assigned at 1, dropped at 5
    assert kpis["robots"][HOSTILE]["busy_seconds"] == 37 * 60  # open from 3 to the end, 40
    assert kpis["sorter"] == {
        "diverted": 2,
        "recirculated": {f"chute_full: {HOSTILE}": 1},
        "rejected": {},
    }
    assert kpis["asrs"]["cycles"] == [
        {"aisle": "A1", "kind": "store", "count": 1, "p50": 30.0, "p95": 30.0, "max": 30.0}
    ]


def test_html_report_is_self_contained_and_escapes_database_texts(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    write_report(db, out, None, "line-<1>")
    page = out.read_text()
    assert_offline_report(page)
    assert page.count("<svg") == 6
    assert HOSTILE not in page and "<script" not in page
    assert "&lt;script&gt;" in page  # the robot's name, in the utilisation plot
    assert "KPI report: line-&lt;1&gt;" in page


def test_empty_database_renders_no_data_notes(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"

    async def create() -> None:
        store = SqliteOrderStore(path)
        await store.open()
        await store.close()

    asyncio.run(create())
    out = tmp_path / "empty.html"
    kpis = write_report(path, out, None, "line-1")
    assert kpis["completed"] == {"b2c": 0, "b2b": 0}
    page = out.read_text()
    assert_offline_report(page)
    assert page.count("<svg") == 0 and page.count("no data in this window") == 6


def test_cli_report_from_db_and_from_line_file(db: Path, tmp_path: Path) -> None:
    out, js = tmp_path / "out" / "r.html", tmp_path / "out" / "r.json"
    res = CliRunner().invoke(app, ["report", "--db", str(db), "--out", str(out), "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert f"HTML report written to {out}" in res.output
    assert json.loads(js.read_text())["completed"] == {"b2c": 1, "b2b": 1}
    assert_offline_report(out.read_text())

    line = yaml.safe_load(REFERENCE_LINE.read_text())
    line["store"] = {"path": str(db)}
    line_file = tmp_path / "line.yaml"
    line_file.write_text(yaml.safe_dump(line))
    since, until = at(30).isoformat(), at(45).isoformat()
    args = ["report", "-c", str(line_file), "--out", str(out), "--json", str(js)]
    res = CliRunner().invoke(app, [*args, "--since", since, "--until", until])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["completed"] == {"b2c": 0, "b2b": 1}  # O-1 completed at 12 min, before
    assert data["window"] == {"since": since, "until": until}
    assert f"KPI report: {line['line']['id']}" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "missing.db"], "missing.db: no such file"),
        (["--db", "notes.txt"], "not a linectl order database"),
        (["--db", "other.db"], "not a linectl order database (no orders/events tables)"),
        (["--db", "line.db", "--since", "monday"], "--since 'monday' is not an ISO 8601 time"),
        (["--db", "line.db", "--since", "2026-03-02T07:00", "--until", "2026-03-02T06:00"],
         "--since is after --until"),
        ([], "give exactly one of --db FILE, --config FILE or --dsn DSN"),
        (["--db", "line.db", "--config", "line.yaml"], "give exactly one of"),
        (["--config", "bad.yaml"], "bad.yaml"),
    ],
)  # fmt: skip
def test_cli_report_errors_exit_2_and_write_nothing(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a database\n" * 100)
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    (tmp_path / "bad.yaml").write_text("line: [unclosed\n")
    res = CliRunner().invoke(app, ["report", *args, "--out", "r.html"])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not (tmp_path / "r.html").exists()


def test_report_renders_in_headless_chromium(db: Path, tmp_path: Path) -> None:
    script = ROOT / "scripts" / "report-screenshot"
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        if os.environ.get("LINECTL_REQUIRE_CHROMIUM") == "1":
            pytest.fail("LINECTL_REQUIRE_CHROMIUM=1 but no Chromium installed")
        pytest.skip("no headless Chromium installed (apt-get install chromium)")
    html, png = tmp_path / "report.html", tmp_path / "report.png"
    write_report(db, html, None, "line-1")
    cmd = [str(script), "--html", str(html), "--out", str(png), "--width", "1000"]
    subprocess.run(cmd, check=True, timeout=110, capture_output=True)
    image = Image.open(png).convert("RGB")
    assert image.size == (1000, 1450)
    assert png.stat().st_size > 30_000  # text, six plots: far from a blank page's few KB
    px = np.asarray(image).reshape(-1, 3).astype(int)
    # not blank: many colours, dark pixels (text, axes) and the blue bars of B2C and robots
    assert len(np.unique(px, axis=0)) > 100
    assert (px.sum(axis=1) < 180).sum() > 1000
    assert ((px[:, 2] > 150) & (px[:, 0] < 80)).sum() > 1000

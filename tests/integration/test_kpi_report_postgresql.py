"""``linectl report`` of one line whose store shares a PostgreSQL database with other lines, each
line in its own schema: the report reads that line's orders and no other's, and writes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE
from controller.orders.model import OrderIn, OrderStatus
from controller.store.postgresql.store import PostgresOrderStore
from kernel.config.model import default_schema
from tests.report_checks import assert_offline_report
from tests.store_backends import drop_schema, postgres_dsn

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def order_in(kind: str) -> OrderIn:
    body: dict[str, object] = {
        "type": kind,
        "due_at": at(120).isoformat(),
        "destination": "DHL" if kind == "b2c" else "CUST-ACME",
        "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
    }
    if kind == "b2b":
        body |= {"deliver_from": at(-60).isoformat(), "deliver_until": at(120).isoformat()}
    return OrderIn.model_validate(body)


# per line: (order id, type, robot, minute completed or None for still picking)
Plan = list[tuple[str, str, str, int | None]]
PLANS: dict[str, Plan] = {
    "a": [("A-1", "b2c", "RA-1", 12), ("A-2", "b2c", "RA-2", 20)],
    "b": [("B-1", "b2b", "RB-1", 30), ("B-2", "b2c", "RB-2", None)],
}


@dataclass(frozen=True)
class Site:
    dsn: str
    lines: dict[str, str]  # "a"/"b" -> the line's id; its schema is the default of that id

    def schema(self, key: str) -> str:
        return default_schema(self.lines[key])


async def fill(dsn: str, schema: str, plan: Plan) -> None:
    store = PostgresOrderStore(dsn, schema, connect_timeout=5.0)
    await store.open()
    try:
        for n, (oid, kind, robot, done) in enumerate(plan):
            await store.create_order(oid, order_in(kind), at(n))
            await store.record(oid, "robot_assigned", at(n + 1), data={"robot": robot})
            if done is None:
                continue
            await store.record(oid, "dropped", at(n + 5), data={"robot": robot})
            await store.record(oid, "sorted", at(done - 1), status=OrderStatus.SORTED)
            await store.record(oid, "completed", at(done), status=OrderStatus.COMPLETED)
    finally:
        await store.close()


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """Two lines' stores in two schemas of the test database, each with orders of its own."""
    dsn = postgres_dsn()
    tag = uuid.uuid4().hex[:10]
    s = Site(dsn, {"a": f"test-a-{tag}", "b": f"test-b-{tag}"})
    try:
        for key, plan in PLANS.items():
            await fill(dsn, s.schema(key), plan)
        yield s
    finally:
        for key in PLANS:
            drop_schema(s.schema(key))


def schema_exists(dsn: str, schema: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def run_report(args: list[str], out: Path) -> dict[str, Any]:
    js = out.with_suffix(".json")
    res = CliRunner().invoke(app, ["report", *args, "--out", str(out), "--json", str(js)])
    assert res.exit_code == 0, res.output
    assert f"HTML report written to {out}" in res.output
    data: dict[str, Any] = json.loads(js.read_text())
    return data


@pytest.mark.parametrize("how", ["dsn-line", "dsn-schema", "line-file", "env-dsn-line"])
def test_report_of_one_line_sees_only_that_lines_orders(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    monkeypatch.delenv("LINECTL_STORE__DSN", raising=False)
    line_a, line_b = site.lines["a"], site.lines["b"]
    out = tmp_path / "report.html"
    if how == "dsn-line":  # line a, by its line id
        key, args = "a", ["--dsn", site.dsn, "--line", line_a]
    elif how == "dsn-schema":  # line b, by its schema
        key, args = "b", ["--dsn", site.dsn, "--schema", site.schema("b")]
    elif how == "line-file":  # line b's line file: its store section and line id name the schema
        line = yaml.safe_load(REFERENCE_LINE.read_text())
        line["line"]["id"] = line_b
        line["store"] = {"backend": "postgresql", "dsn": site.dsn}
        line_file = tmp_path / "line-b.yaml"
        line_file.write_text(yaml.safe_dump(line))
        key, args = "b", ["--config", str(line_file)]
    else:  # line a, the DSN from the environment as the controller takes it
        monkeypatch.setenv("LINECTL_STORE__DSN", site.dsn)
        key, args = "a", ["--line", line_a]

    data = run_report(args, out)

    if key == "a":
        assert data["completed"] == {"b2c": 2, "b2b": 0}
        assert set(data["robots"]) == {"RA-1", "RA-2"}
    else:
        assert data["completed"] == {"b2c": 0, "b2b": 1}
        assert set(data["robots"]) == {"RB-1", "RB-2"}
    page = out.read_text()
    assert_offline_report(page)
    title = site.schema(key) if how == "dsn-schema" else site.lines[key]  # no line id given
    assert f"KPI report: {title}" in page
    assert f"schema {site.schema(key)}" in page  # the source line names the schema read
    other = "b" if key == "a" else "a"
    assert site.lines[other] not in page and site.schema(other) not in page


def test_report_of_a_line_without_a_store_fails_and_creates_nothing(
    site: Site, tmp_path: Path
) -> None:
    missing = f"test-none-{uuid.uuid4().hex[:10]}"
    out = tmp_path / "report.html"
    res = CliRunner().invoke(
        app, ["report", "--dsn", site.dsn, "--line", missing, "--out", str(out)]
    )
    assert res.exit_code == 2, res.output
    assert f"schema {default_schema(missing)}: no such schema" in res.output
    assert "linectl stores in this database" in res.output
    assert not schema_exists(site.dsn, default_schema(missing))
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dsn", "DSN"], "--dsn needs --line ID or --schema NAME"),
        (["--line", "line-1"], "give --dsn DSN (or set LINECTL_STORE__DSN)"),
        (["--db", "line.db", "--line", "line-1"], "--line and --schema go with --dsn"),
        (["--db", "line.db", "--dsn", "DSN", "--line", "line-1"], "give exactly one of"),
        (["--dsn", "DSN", "--schema", "Line-1"], "--schema 'Line-1' is not a schema name"),
        # neither message may show the password
        (["--dsn", "password=hunter2 nonsense", "--line", "l"], "not a libpq connection string"),
        (["--dsn", "host=127.0.0.1 port=1 user=postgres password=hunter2 connect_timeout=2",
          "--line", "l"], "cannot connect"),
    ],
)  # fmt: skip
def test_report_postgresql_argument_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.delenv("LINECTL_STORE__DSN", raising=False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["report", *args, "--out", "r.html"])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "hunter2" not in res.output
    assert not (tmp_path / "r.html").exists()

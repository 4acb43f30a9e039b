"""The whole line in one process: WMS -> API -> robots -> conveyor -> sorter -> chute."""

import gc
import html
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.app.demo import DemoOptions, run_demo
from controller.orders.model import OrderStatus
from controller.store import open_store
from kernel.config.model import LineConfig, StoreConfig
from simulators import broker as brokers
from simulators.broker import LocalBroker, find_mosquitto
from tests.report_checks import assert_offline_report

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def collect_closed_loops() -> Iterator[None]:
    """Each demo here runs a whole line in an event loop of its own, which it closes when the
    line stops. The embedded broker (amqtt) can leave a client connection's stream writer
    unclosed when it shuts down; such leftovers of a closed loop are collected before and
    after each test, so that their ResourceWarning is not raised inside the next test's line
    (where it says nothing about that test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_cli_demo_with_embedded_broker_completes_every_order(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    store = tmp_path / "demo.db"
    res = CliRunner().invoke(
        app,
        [
            "demo",
            "--orders",
            "24",
            "--time-scale",
            "40",
            "--report",
            str(report),
            "--store",
            str(store),
            "--timeout",
            "120",
            "--own-broker",
            "embedded",
        ],
        env={"COLUMNS": "200"},  # the summary's tables unwrapped
    )
    assert res.exit_code == 0, res.output
    data = json.loads(report.read_text())
    assert data["orders_created"] == 24
    assert data["all_terminal"] and data["all_completed"]
    assert data["by_status"]["completed"] == 24
    assert data["sort_decisions"]["diverted"] >= 24
    assert data["mqtt_broker"] == "embedded"
    # traffic control: robots were released node by node and never met on a node or an edge
    assert data["robot_collisions"] == 0
    assert data["traffic"]["released_nodes"] > 0
    assert "all orders terminal" in res.output
    # the KPI report with plots, next to the JSON, from the demo's order database
    assert str(report.with_suffix(".html")) in res.output.replace("\n", "")  # paths may wrap
    page = report.with_suffix(".html").read_text()
    assert_offline_report(page)
    assert page.count("<svg") == 6  # every plot has data: the demo line has AS/RS aisles
    assert sum(data["kpi"]["completed"].values()) == 24
    assert data["kpi"]["asrs"]["cycles"]
    assert_summary_is_the_reports(res.stdout, data, store, tmp_path)


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
async def test_demo_runs_on_a_private_mosquitto_when_installed(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    opts = DemoOptions(orders=6, time_scale=40, timeout=120, store_path=str(tmp_path / "d.db"))
    assert opts.own_broker is LocalBroker.AUTO  # what linectl demo does without options
    report = await run_demo(reference_line, opts)
    assert report["mqtt_broker"] == "mosquitto"
    assert report["by_status"]["completed"] == 6 and report["all_terminal"]
    assert report["robot_collisions"] == 0


def test_cli_demo_asked_for_mosquitto_without_it_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(brokers, "_SBIN", ())
    res = CliRunner().invoke(
        app, ["demo", "--own-broker", "mosquitto"], env={"PATH": str(tmp_path), "COLUMNS": "200"}
    )
    assert res.exit_code == 2, res.output
    assert "mosquitto binary is not installed" in res.output


def assert_summary_is_the_reports(
    printed: str, data: dict[str, Any], store: Path, tmp_path: Path
) -> None:
    """``linectl report`` on the demo's order store: the same KPIs as the demo's JSON report,
    and the table at the top of its page is what the demo printed, cell for cell."""
    page, kpis = tmp_path / "kpi.html", tmp_path / "kpi.json"
    res = CliRunner().invoke(
        app, ["report", "--db", str(store), "--out", str(page), "--json", str(kpis)]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(kpis.read_text()) == data["kpi"]
    summary = data["kpi"]["summary"]
    everything = summary["orders"][-1]
    assert everything["type"] == "all"
    assert everything["completed"] == data["by_status"]["completed"] == 24
    assert summary["sorter"]["diverted"] >= 24

    table = page.read_text().split("<table>", 1)[1].split("</table>", 1)[0]
    head = re.findall(r"<th>(.*?)</th>", table)
    rows = [
        [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1])
    ]
    shown = [
        [c.strip() for c in line.strip("│┃").split("│" if "│" in line else "┃")]
        for line in printed.splitlines()
        if line.startswith(("│", "┃"))
    ]
    assert head in shown  # the same columns, named alike
    orders = [r for r in rows if len(r) == len(head)]
    notes = [r for r in rows if len(r) == 2]
    assert [r[0] for r in orders] == ["B2C", "B2B", "All"]
    for row in orders:
        assert row in shown, (row, printed)
    assert [n[0] for n in notes] == ["Robots", "Sorter", "AS/RS"]
    for name, text in notes:
        assert f"{name}: {text}" in printed.splitlines()


async def test_demo_on_the_machine_broker_and_history_is_complete(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    base = reference_line.model_copy(
        update={"mqtt": reference_line.mqtt.model_copy(update={"interface_name": interface_name})}
    )
    seen: list[int] = []
    db = tmp_path / "demo.db"
    opts = DemoOptions(
        orders=12, b2b_share=0.5, time_scale=40, broker=mqtt_url, timeout=120, store_path=str(db)
    )
    report = await run_demo(base, opts, on_progress=lambda p: seen.append(p.terminal))
    assert report["by_status"]["completed"] == 12, report
    assert report["all_terminal"]
    assert seen and seen[-1] == 12
    cycle = report["kpi"]["summary"]["orders"][-1]["cycle_minutes"]
    assert 0 < cycle["p50"] <= cycle["p95"] <= cycle["max"]
    assert report["robot_collisions"] == 0

    store = open_store(StoreConfig(path=str(db)))
    await store.open()
    try:
        page = await store.list_orders(limit=100)
        assert len(page.orders) == 12
        for order in page.orders:
            assert order.status is OrderStatus.COMPLETED
            assert all(line.picked == line.requested for line in order.lines_progress())
            steps = [e.type for e in await store.history(order.id)]
            for expected in (
                "accepted",
                "robot_assigned",
                "picked",
                "dropped",
                "scanned",
                "sorted",
                "completed",
            ):
                assert expected in steps, (order.id, steps)
            assert steps.index("robot_assigned") < steps.index("dropped") < steps.index("sorted")
            assert steps[-1] == "completed"
    finally:
        await store.close()

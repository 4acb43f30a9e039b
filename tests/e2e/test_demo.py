"""The whole line in one process: WMS -> API -> robots -> conveyor -> sorter -> chute."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.app.demo import DemoOptions, run_demo
from controller.orders.model import OrderStatus
from controller.store import open_store
from kernel.config.model import LineConfig, StoreConfig
from tests.report_checks import assert_offline_report

pytestmark = pytest.mark.e2e


def test_cli_demo_with_embedded_broker_completes_every_order(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
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
            "--timeout",
            "120",
        ],
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
    assert report["cycle_time_line_seconds"]["p50"] > 0
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

"""promtool on what ships: the live /metrics output, the alert rules and their unit tests, the
Prometheus configuration.

promtool comes with Prometheus (Debian: package ``prometheus``). Without it these tests skip,
unless LINECTL_REQUIRE_PROMTOOL=1 (CI), where a missing promtool fails them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from controller.robots.activity import ROBOT_STATES
from kernel.config.model import LineConfig
from tests.deploy.promql_check import substitute
from tests.deploy.test_dashboards import UIDS, expressions, load
from tests.e2e.test_lifecycle import Line, running_line, settled

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


@pytest.fixture
def promtool() -> Iterator[str]:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("LINECTL_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool not found and LINECTL_REQUIRE_PROMTOOL=1")
        pytest.skip(
            "promtool not installed (Debian package prometheus); "
            "LINECTL_REQUIRE_PROMTOOL=1 makes this a failure"
        )
    yield path


def run(promtool: str, *args: str, cwd: Path = PROMETHEUS, stdin: str | None = None) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_rules_are_valid(promtool: str) -> None:
    rules = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert rules
    assert "SUCCESS" in run(promtool, "check", "rules", *rules)


def test_rule_unit_tests_pass(promtool: str) -> None:
    tests = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    assert "SUCCESS" in run(promtool, "test", "rules", *tests)


def test_prometheus_config_is_valid(promtool: str) -> None:
    # rule_files are relative to the configuration file
    output = run(promtool, "check", "config", "prometheus.yml")
    assert "1 rule files found" in output


def test_dashboard_expressions_parse_in_prometheus(promtool: str, tmp_path: Path) -> None:
    """Prometheus's own parser on every dashboard query (Grafana variables substituted), as
    recording rules; a label_values() variable query is checked by its selector."""
    rules: list[dict[str, str]] = []
    for name in sorted(UIDS):
        for where, expr in expressions(load(name)):
            text = substitute(expr)
            if text.startswith("label_values("):
                text = text.removeprefix("label_values(").rsplit(",", 1)[0]
            rules.append({"record": f"dashboard:{name[:-5]}:{len(rules)}", "expr": text})
            assert text, where
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run(promtool, "check", "rules", str(path))


def test_promtool_lints_bad_exposition(promtool: str) -> None:
    """The check below can fail: a counter without _total is reported."""
    bad = "# HELP linectl_x Things.\n# TYPE linectl_x counter\nlinectl_x 1\n"
    done = subprocess.run(
        [promtool, "check", "metrics"], input=bad, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "_total" in done.stdout + done.stderr


@pytest.mark.e2e
async def test_live_metrics_pass_promtool(
    promtool: str,
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name, tmp_path) as line:
        await complete_orders(line)
        text = await until_metrics(line, "linectl_robot_state")
    output = run(promtool, "check", "metrics", stdin=text)
    assert output.strip() == "", output
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # the metrics the dashboards are built on moved on the whole line
    states = list(families["linectl_robot_state"].samples)
    robots = {s.labels["robot"] for s in states}
    assert robots == {r.serial for r in reference_line.robots.fleet}
    for robot in robots:
        current = [s.labels["state"] for s in states if s.labels["robot"] == robot and s.value]
        assert len(current) == 1 and current[0] in ROBOT_STATES, (robot, current)
    battery = [s.value for s in families["linectl_robot_battery_ratio"].samples]
    assert len(battery) == len(robots) and all(0 < b <= 1 for b in battery)
    on_time = {
        (s.labels["type"], s.labels["on_time"]): s.value
        for s in families["linectl_orders_on_time"].samples
        if s.name.endswith("_total")
    }
    assert on_time == {
        ("b2c", "true"): 2.0,
        ("b2c", "false"): 0.0,
        ("b2b", "true"): 0.0,
        ("b2b", "false"): 0.0,
    }
    # no order, SKU or tote ids as label names or values
    for family in families.values():
        for sample in family.samples:
            assert not {"order", "order_id", "sku", "tote"} & set(sample.labels), sample
            for value in sample.labels.values():
                assert value not in ("M1", "M2") and not value.startswith("SKU-"), sample


async def complete_orders(line: Line) -> None:
    await line.put("M1", **line.b2c("SKU-0001"))
    await line.put("M2", **line.b2c("SKU-0013", destination="UPS"))
    for order_id in ("M1", "M2"):
        order, _ = await line.until(order_id, settled, within=60)
        assert order.status.value == "completed"


async def until_metrics(line: Line, needle: str, within: float = 10) -> str:
    """/metrics over HTTP once it shows ``needle`` (gauges refresh every few seconds)."""
    async with asyncio.timeout(within):
        while True:
            resp = await line.http.get("/metrics")
            assert resp.status_code == 200
            if needle in resp.text:
                return resp.text
            await asyncio.sleep(0.2)

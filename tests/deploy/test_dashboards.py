"""The shipped dashboards and alert rules: structure, and only metrics the service exports."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.promql_check import exported, metric_names, problems

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
RULES = DEPLOY / "prometheus" / "rules"
DATASOURCE_UID = "linectl-prometheus"
UIDS = {
    "line.json": "linectl-line",
    "orders.json": "linectl-orders",
    "sorter.json": "linectl-sorter",
    "robots.json": "linectl-robots",
    "asrs.json": "linectl-asrs",
    "devices.json": "linectl-devices",
}
SCHEMA_VERSION = 39  # Grafana 10.4 / 11
# what the controller reads from the devices; a standby connects to none, and exports 0 for the
# gauges without labels (the links)
DEVICE_GAUGES = {
    "linectl_mqtt_connected",
    "linectl_opcua_connected",
    "linectl_asrs_opcua_connected",
    "linectl_robot_state",
    "linectl_robots_needing_operator",
    "linectl_asrs_crane_state",
    "linectl_conveyor_state",
    "linectl_conveyor_zone_jammed",
}
STANDBY_LINKS = {"linectl_mqtt_connected", "linectl_asrs_opcua_connected"}
NOT_STANDBY = "unless on (job, instance) (linectl_controller_active == 0)"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DASHBOARDS / name).read_text())
    return doc


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) for every panel target and templating variable query."""
    for panel in dashboard["panels"]:
        for t in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {t['refId']}", t["expr"]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and text:
            yield f"variable ${var['name']}", text


def rule_expressions() -> Iterator[tuple[str, str]]:
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                yield f"{path.name} rule {name}", rule["expr"]


def test_every_dashboard_ships() -> None:
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == sorted(UIDS)


@pytest.mark.parametrize("name", sorted(UIDS))
def test_dashboard_structure(name: str) -> None:
    d = load(name)
    assert d["uid"] == UIDS[name]
    assert d["title"].startswith("linectl / ")
    assert d["schemaVersion"] >= SCHEMA_VERSION
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    kinds = {"stat", "timeseries", "state-timeline", "bargauge", "heatmap"}
    # stat panels first (the row on top), then the rest
    types = [p["type"] for p in d["panels"]]
    assert types[0] == "stat" and types == sorted(types, key=lambda t: t != "stat")
    for p in d["panels"]:
        where = f"{name}: panel {p['title']!r}"
        assert p["type"] in kinds, where
        assert p["description"], f"{where} has no description"
        assert p["datasource"]["uid"] == DATASOURCE_UID, where
        assert p["targets"], f"{where} has no target"
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, where
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if p["type"] in ("stat", "timeseries", "bargauge"):
            assert unit, f"{where} has no unit"
        for t in p["targets"]:
            expr = t["expr"]
            # counters are rated over Grafana's rate interval (or the dashboard's range)
            if "rate(" in expr and "[" in expr:
                assert "$__rate_interval" in expr or "$__range" in expr or "[15m:]" in expr, (
                    f"{where}: {expr}"
                )
    for var in d["templating"]["list"]:
        assert var["datasource"]["uid"] == DATASOURCE_UID


def test_dashboards_use_only_exported_metrics_and_labels() -> None:
    known = exported()
    found = []
    for name in sorted(UIDS):
        for where, expr in expressions(load(name)):
            found += [f"{name}: {where}: {p}" for p in problems(expr, known)]
    assert found == []


def test_rules_use_only_exported_metrics_and_labels() -> None:
    known = exported()
    found = [f"{where}: {p}" for where, expr in rule_expressions() for p in problems(expr, known)]
    assert found == []


def test_every_new_metric_is_on_a_dashboard() -> None:
    exprs = " ".join(e for name in UIDS for _, e in expressions(load(name)))
    for metric in (
        "linectl_robot_state",
        "linectl_robot_battery_ratio",
        "linectl_orders_on_time",
        "linectl_controller_active",
        "linectl_controller_term",
    ):
        assert metric in exprs


def test_device_alerts_and_link_panels_skip_the_standby() -> None:
    """A standby's device gauges (0: it connects to no device) raise no alert and show no link
    down; a controller without linectl_controller_active counts as active."""
    gated = []
    for where, expr in rule_expressions():
        if DEVICE_GAUGES & set(metric_names(expr)):
            assert NOT_STANDBY in " ".join(expr.split()), where
            gated.append(where)
    assert len(gated) >= 9, gated
    for name in sorted(UIDS):
        for where, expr in expressions(load(name)):
            if expr.startswith("label_values("):  # a variable: its selector
                expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
            if STANDBY_LINKS & set(metric_names(expr)):
                assert NOT_STANDBY in expr, f"{name}: {where}"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sum(rate(linectl_orders_recieved_total[$__rate_interval]))", "unknown metric"),
        ("linectl_robots_total", "unknown metric linectl_robots_total"),  # a gauge has no _total
        ("linectl_orders_received_bucket", "unknown metric"),
        ('linectl_robot_state{serial="R1"}', "unknown label serial on linectl_robot_state"),
        ("sum by (le) (linectl_orders_received_total)", "unknown label le in sum"),
        ("sum by (order_id) (linectl_orders)", "unknown label order_id"),
        ("linectl_orders / on(type) linectl_orders_received_total", "unknown label type in on"),
        ("label_values(linectl_robots, robot)", "unknown label robot in label_values"),
        ("rate(linectl_orders_received_total[5m]", "does not parse"),
        ("{job='linectl'}", "without a metric name"),
    ],
)
def test_checker_names_what_is_not_exported(expr: str, expected: str) -> None:
    found = problems(expr, exported())
    assert any(expected in p for p in found), found


def test_checker_accepts_grafana_variables_and_builtins() -> None:
    known = exported()
    for expr in (
        'sum by (le) (rate(linectl_scan_to_divert_seconds_bucket{job="x"}[$__rate_interval]))',
        'avg_over_time((sum by (robot) (linectl_robot_state{robot=~"$robot"}))[$__range:])',
        "sum(increase(linectl_asrs_cycles_total[$__range])) / ($__range_s / 3600)",
        'up{job="linectl"} == 0',
        'ALERTS{alertname="LinectlDown", severity="critical"}',
        "label_values(linectl_asrs_crane_state, aisle)",
        "sum by (job, line) (linectl_controller_active)",  # line: a target label
    ):
        assert problems(expr, known) == [], expr


def test_committed_dashboards_are_the_generators_output() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "gen-dashboards.py"
    spec = importlib.util.spec_from_file_location("gen_dashboards", script)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    rendered = gen.render()
    assert sorted(rendered) == sorted(UIDS)
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, (
            f"{name} differs from scripts/gen-dashboards.py: run the script and commit the JSON"
        )


def test_provisioning_points_at_the_datasource_and_dashboards() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    sources = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((prov / "dashboards" / "linectl.yml").read_text())["providers"]
    assert provider["type"] == "file"
    # the compose file mounts the dashboards where the provider reads them
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(
        v.rsplit(":", 1)[0].split(":", 1) for v in compose["services"]["grafana"]["volumes"]
    )
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_every_alert_has_severity_for_and_guidance_and_a_unit_test() -> None:
    tests_text = "\n".join(p.read_text() for p in (DEPLOY / "prometheus" / "tests").glob("*.yml"))
    alerts = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                alerts.append(rule["alert"])
                assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule
                assert "for" in rule, rule["alert"]
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]
                assert f"alertname: {rule['alert']}\n" in tests_text, (
                    f"{rule['alert']} has no case in deploy/prometheus/tests"
                )
    assert len(alerts) == len(set(alerts))
    for wanted in (
        "LinectlConveyorLinkDown",
        "LinectlLineHeld",
        "LinectlSafeStateEntered",
        "LinectlSorterRejectShareHigh",
        "LinectlB2cCycleTimeOverSlo",
        "LinectlWebhookDeliveriesDead",
        "LinectlLowStock",
        "LinectlNoActiveController",
        "LinectlFailover",
    ):
        assert wanted in alerts

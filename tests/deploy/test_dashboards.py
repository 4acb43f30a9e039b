"""The shipped dashboards and alert rules: structure, and only metrics the service exports."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser as pq
import pytest
import yaml

from tests.deploy.promql_check import (
    counter_selectors,
    exported,
    metric_names,
    problems,
    selectors,
    substitute,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
RULES = DEPLOY / "prometheus" / "rules"
# the provisioned datasource (deploy/grafana/provisioning); the dashboards name none of their
# own: every panel queries the datasource variable, filled in from the import input
DATASOURCE_UID = "linectl-prometheus"
PANEL_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
INPUT = "DS_PROMETHEUS"
LINE = 'line=~"$line"'
LINE_QUERY = 'label_values(up{job="linectl"}, line)'
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
        assert p["datasource"] == PANEL_DATASOURCE, where
        assert p["targets"], f"{where} has no target"
        for t in p["targets"]:
            assert t["datasource"] == PANEL_DATASOURCE, where
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
    # each panel type the dashboard uses is listed as required for an import
    required = {r["id"] for r in d["__requires"] if r["type"] == "panel"}
    assert required == {p["type"] for p in d["panels"]}, name


@pytest.mark.parametrize("name", sorted(UIDS))
def test_dashboard_takes_the_datasource_and_the_line_as_variables(name: str) -> None:
    d = load(name)
    # imported: Grafana asks for the Prometheus of the input DS_PROMETHEUS, whose value fills
    # the datasource variable; provisioned, the variable falls back to a Prometheus datasource
    (source,) = d["__inputs"]
    assert source["name"] == INPUT and source["type"] == "datasource"
    assert source["pluginId"] == "prometheus"
    datasource, line, *others = d["templating"]["list"]
    assert datasource["name"] == "datasource" and datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    assert datasource["current"]["value"] == f"${{{INPUT}}}"
    assert datasource["includeAll"] is False and datasource["multi"] is False
    # the line: one at a time (two lines are never summed), from the targets' label line
    assert line["name"] == "line" and line["type"] == "query"
    assert line["query"]["query"] == LINE_QUERY == line["definition"]
    assert line["includeAll"] is False and line["multi"] is False
    for var in (line, *others):
        assert var["datasource"] == PANEL_DATASOURCE, var["name"]
    for var in others:  # robot, aisle: of the selected line
        assert LINE in var["query"]["query"], var["name"]
    # the only datasource reference the dashboards make is the variable (and the input in it)
    text = json.dumps(d)
    assert DATASOURCE_UID not in text
    assert text.count(f"${{{INPUT}}}") == 2  # the variable's current text and value
    # links to the other dashboards keep the line and the datasource chosen
    assert all(link["includeVars"] for link in d["links"])


@pytest.mark.parametrize("name", sorted(UIDS))
def test_every_query_selects_the_line_s_series_only(name: str) -> None:
    """Every selector of every panel and variable query (except the line variable's own) has
    the line's matcher; without it, two lines scraped by one Prometheus would be summed."""
    checked = 0
    for where, expr in expressions(load(name)):
        if expr == LINE_QUERY:
            continue
        text = expr
        if expr.startswith("label_values("):  # a variable: its selector
            text = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        found = list(selectors(text))
        assert found, f"{where}: {expr}"
        for selector in found:
            lines = [m for m in selector.matchers.matchers if m.name == "line"]
            assert len(lines) == 1 and str(lines[0].op) == "MatchOp.Re", f"{where}: {expr}"
        assert text.count(LINE) == len(found), f"{where}: {expr}"
        checked += len(found)
    assert checked


def test_the_line_check_finds_a_query_without_the_line() -> None:
    panels_dir = Path(__file__).resolve().parents[2] / "scripts"
    spec = importlib.util.spec_from_file_location(
        "dashboard_panels", panels_dir / "dashboards" / "panels.py"
    )
    assert spec is not None and spec.loader is not None
    panels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(panels)
    expr = 'sum(rate(linectl_sort_decisions_total{outcome="rejected"}[5m])) / on () up'
    on_line = panels.on_line(expr)
    assert on_line == (
        'sum(rate(linectl_sort_decisions_total{outcome="rejected",line=~"$line"}[5m])) '
        '/ on () up{line=~"$line"}'
    )
    assert on_line.count(LINE) == len(list(selectors(on_line))) == 2
    assert expr.count(LINE) == 0 < len(list(selectors(expr)))
    # a label value that reads like a metric name is left alone
    assert panels.on_line('x{state="up"}') == 'x{state="up"}'


def divides_by_series(expr: str) -> bool:
    """Whether ``expr`` divides by something that has series (a share or a mean)."""
    found: list[bool] = []

    def visit(node: object) -> None:
        if isinstance(node, pq.BinaryExpr) and str(node.op) == "/":
            found.append(bool(list(selectors(str(node.rhs)))))

    pq.walk(pq.parse(substitute(expr)), visit)
    return any(found)


def test_stat_panels_show_a_value_or_say_why_not() -> None:
    """No stat panel shows "No data": a count of events in the range (nothing counted is 0)
    adds ``or vector(0)``; a panel whose series may be absent for another reason (linectl not
    scraped, nothing to take a share or percentile of) names that in ``noValue``."""
    stats = zero = 0
    for name in sorted(UIDS):
        for p in load(name)["panels"]:
            if p["type"] != "stat":
                continue
            stats += 1
            where = f"{name}: stat {p['title']!r}"
            ((t),) = p["targets"]
            expr = t["expr"]
            no_value = p["fieldConfig"]["defaults"].get("noValue")
            zeroes = expr.endswith(" or vector(0)")
            assert zeroes != (no_value is not None), f"{where}: both or neither"
            body = expr.removesuffix(" or vector(0)")
            read = {s.name for s in selectors(body)}
            counted = {s.name for s in counter_selectors(body)}
            count_of_events = (
                read == counted and "histogram_quantile" not in body and not divides_by_series(body)
            )
            if zeroes:
                zero += 1
                assert count_of_events, f"{where}: 0 where absence is not a count of none"
            else:
                assert no_value.strip() and no_value.lower() != "no data", where
                assert not count_of_events, f"{where}: a count of events shows 0: or vector(0)"
                if "histogram_quantile" in body or divides_by_series(body):
                    # a share or percentile of nothing is no value, not NaN
                    assert " > 0)" in body, f"{where}: NaN without events"
    assert stats >= 36 and zero >= 7, (stats, zero)


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
        "linectl_line_held",
        "linectl_build_info",
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
                any_line = expr.replace(f",{LINE}", "").replace(f"{{{LINE}}}", "")
                assert NOT_STANDBY in any_line, f"{name}: {where}"


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
        'max(linectl_line_held{line=~"$line"}) or vector(0)',
        "max by (version) (linectl_build_info)",
        "rate(process_cpu_seconds_total[5m])",
        'python_info{version=~"3.*"}',
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
    # the provisioned dashboards' datasource variable starts on it (no import fills it in)
    assert source["isDefault"] is True
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

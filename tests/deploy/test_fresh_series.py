"""Every counter an alert rule reads over a range (``increase``, ``rate``) exists at 0 from the
controller's start, for every label set the rule selects: ``increase()`` sees an event only as a
change between two samples, so a series that first appears with its first event never raises
its alert (deploy/prometheus/tests/linectl-first-events.rules.test.yml shows both)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from tests.deploy.promql_check import counter_selectors, matches
from tests.deploy.test_dashboards import rule_expressions
from tests.deploy.test_promtool import until_metrics
from tests.e2e.test_lifecycle import running_line


def samples(text: str) -> list[Sample]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


def not_at_zero(exposed: Iterable[Sample]) -> list[str]:
    """What the rules' counters lack in ``exposed``: a selector without any series, or one
    whose series are not all 0."""
    exposed = list(exposed)
    missing = []
    for where, expr in rule_expressions():
        for selector in counter_selectors(expr):
            found = [s for s in exposed if s.name == selector.name and matches(selector, s.labels)]
            if not found:
                missing.append(f"{where}: no series for {selector}")
            missing += [f"{where}: {s.name}{s.labels} = {s.value}" for s in found if s.value != 0]
    return missing


def test_the_rules_read_counters_over_ranges() -> None:
    """The check below has something to check, and can tell a series from its absence."""
    used = {s.name for _, expr in rule_expressions() for s in counter_selectors(expr)}
    assert {
        "linectl_conveyor_safe_state_total",
        "linectl_webhook_deliveries_total",
        "linectl_robot_orders_refused_total",
        "linectl_deadline_exceeded_total",
        "linectl_stockouts_total",
        "linectl_sort_decisions_total",
        "linectl_order_cycle_seconds_bucket",
        "linectl_orders_on_time_total",
    } <= used
    metrics = Metrics()  # the line's own devices unknown: no conveyor series yet
    problems = not_at_zero(samples(generate_latest(metrics.registry).decode()))
    assert problems and all("linectl_conveyor_safe_state_total" in p for p in problems), problems
    metrics.webhook_deliveries.labels("dead").inc()
    problems = not_at_zero(samples(generate_latest(metrics.registry).decode()))
    assert any("outcome': 'dead'}" in p and p.endswith("= 1.0") for p in problems), problems


def test_every_counter_the_rules_read_starts_at_zero(reference_line: LineConfig) -> None:
    registry = Metrics(line=reference_line).registry
    assert not_at_zero(samples(generate_latest(registry).decode())) == []


@pytest.mark.e2e
async def test_a_freshly_started_line_exports_them_at_zero(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    """The /metrics of a whole simulated line right after it started, before any order."""
    async with running_line(reference_line, mqtt_url, interface_name, tmp_path) as line:
        text = await until_metrics(line, "linectl_robot_state")
    assert not_at_zero(samples(text)) == []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [build] = families["linectl_build_info"].samples
    assert build.value == 1 and build.labels["version"]
    assert families["process_resident_memory_bytes"].samples
    assert families["python_info"].samples
    [held] = families["linectl_line_held"].samples
    assert held.value == 0
    assert "_created" not in text

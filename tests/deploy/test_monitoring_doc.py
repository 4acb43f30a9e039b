"""docs/monitoring.md against what ships: every metric the registry exports and every alert rule
is described, and the document names no metric or alert that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from tests.deploy.promql_check import exported
from tests.deploy.test_dashboards import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "monitoring.md"


def test_the_document_names_every_metric_and_only_those(reference_line: LineConfig) -> None:
    text = DOC.read_text()
    named = set(re.findall(r"\blinectl_\w+", text))
    metrics = Metrics(line=reference_line)
    families = {f.name: f.type for f in metrics.registry.collect() if f.name.startswith("linectl_")}
    undocumented = [
        name for name in families if not any(n == name or n.startswith(f"{name}_") for n in named)
    ]
    assert undocumented == []
    # a sample name, or a histogram named by its family
    samples = set(exported(metrics))
    histograms = {name for name, kind in families.items() if kind == "histogram"}
    assert sorted(named - samples - histograms) == []
    for name in ("process_cpu_seconds_total", "python_info", "python_gc_*"):
        assert f"`{name}`" in text


def test_the_alert_table_has_every_alert_and_only_those() -> None:
    rules = {
        rule["alert"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    table = set(re.findall(r"^\| `(Linectl\w+)` \|", DOC.read_text(), re.M))
    assert table == rules

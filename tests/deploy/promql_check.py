"""Check PromQL expressions (dashboards, alert rules) against the metrics linectl exports.

``exported()`` lists every sample name a ``Metrics()`` registry can expose with the labels it
carries; ``problems(expr, exported)`` parses one expression and names each metric or label it
uses that the service does not export.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import promql_parser as pq
from prometheus_client.metrics import MetricWrapperBase

from kernel.metrics import Metrics

# labels Prometheus adds to every scraped series, and the line where one Prometheus scrapes
# several lines (a target label, see deploy/prometheus/prometheus.yml)
TARGET_LABELS = frozenset({"job", "instance", "line"})
# series Prometheus itself makes: any label goes on ALERTS (the rules' labels)
BUILTINS: dict[str, frozenset[str] | None] = {
    "up": frozenset(),
    "ALERTS": None,
    "ALERTS_FOR_STATE": None,
}
# Grafana's built-in variables, replaced by a value of the right kind before parsing
GRAFANA_BUILTINS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range_s": "3600",
    "$__range_ms": "3600000",
    "$__range": "1h",
}
# the samples of each kind of family (no ``_created``: linectl does not export them)
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
    "stateset": ("",),
}
# functions over the samples of a counter in a range: they see an event only as a change
# between two samples, so the series must exist before its first event
COUNTER_FUNCTIONS = frozenset({"increase", "rate", "irate", "resets"})


def exported(metrics: Metrics | None = None) -> dict[str, frozenset[str]]:
    """Sample name -> its label names, for every metric of a ``Metrics`` registry."""
    metrics = metrics or Metrics()
    # label names are not in a family without children: take them from the metric objects
    labels = {
        w._name: frozenset(w._labelnames)
        for w in vars(metrics).values()
        if isinstance(w, MetricWrapperBase)
    }
    names: dict[str, frozenset[str]] = {}
    for family in metrics.registry.collect():
        # a collector's family (process, platform) names its labels on its samples only
        seen = {name for sample in family.samples for name in sample.labels} - {"le"}
        own = labels.get(family.name, frozenset()) | seen
        for suffix in SUFFIXES[family.type]:
            extra = {"le"} if suffix == "_bucket" else set()
            names[family.name + suffix] = own | extra
    return names


def substitute(expr: str) -> str:
    """Grafana's variables replaced: built-ins by values, ``$var`` (regex matchers) by ``.*``."""
    for var in sorted(GRAFANA_BUILTINS, key=len, reverse=True):
        expr = expr.replace(var, GRAFANA_BUILTINS[var])
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


@dataclass
class _Use:
    """What one sub-expression selects: metric names, and labels it groups or matches by."""

    metrics: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _selector(vs: pq.VectorSelector, known: dict[str, frozenset[str] | None], use: _Use) -> None:
    name = vs.name
    matchers = list(vs.matchers.matchers) + [m for ms in vs.matchers.or_matchers for m in ms]
    if name is None:
        name = next((m.value for m in matchers if m.name == "__name__"), None)
    if name is None:
        use.problems.append("a selector without a metric name")
        return
    if name not in known:
        use.problems.append(f"unknown metric {name}")
        return
    use.metrics.append(name)
    allowed = known[name]
    for m in matchers:
        if m.name == "__name__" or allowed is None:
            continue
        if m.name not in allowed | TARGET_LABELS:
            use.problems.append(f"unknown label {m.name} on {name}")


def _grouping(
    labels: list[str], what: str, use: _Use, known: dict[str, frozenset[str] | None]
) -> None:
    """A label in by/without/on/ignoring/group_x must be on a metric the clause applies to."""
    have: set[str] = set(TARGET_LABELS)
    for name in use.metrics:
        allowed = known.get(name)
        if allowed is None:
            return  # ALERTS: any label
        have |= allowed
    for label in labels:
        if label not in have:
            use.problems.append(
                f"unknown label {label} in {what} (metrics: {', '.join(sorted(set(use.metrics)))})"
            )


def _walk(node: object, known: dict[str, frozenset[str] | None]) -> _Use:
    use = _Use()
    if isinstance(node, pq.VectorSelector):
        _selector(node, known, use)
    elif isinstance(node, pq.MatrixSelector):
        _selector(node.vector_selector, known, use)
    elif isinstance(node, pq.AggregateExpr):
        for child in (node.expr, node.param):
            _merge(use, _walk(child, known) if child is not None else _Use())
        if node.modifier is not None:
            _grouping(list(node.modifier.labels), f"{node.op} by/without", use, known)
    elif isinstance(node, pq.BinaryExpr):
        sides = [_walk(node.lhs, known), _walk(node.rhs, known)]
        mod = node.modifier
        if mod is not None and mod.matching is not None:
            for side in sides:  # on/ignoring labels: on both sides (that select metrics)
                if side.metrics:
                    _grouping(list(mod.matching.labels), "on/ignoring", side, known)
        for side in sides:
            _merge(use, side)
        if mod is not None and mod.group_labels:
            _grouping(list(mod.group_labels), "group_left/group_right", use, known)
    elif isinstance(node, pq.Call):
        for arg in node.args:
            _merge(use, _walk(arg, known))
    elif isinstance(node, pq.ParenExpr | pq.UnaryExpr | pq.SubqueryExpr):
        _merge(use, _walk(node.expr, known))
    return use


def _merge(into: _Use, other: _Use) -> None:
    into.metrics += other.metrics
    into.problems += other.problems


def problems(expr: str, known: dict[str, frozenset[str]]) -> list[str]:
    """What ``expr`` uses that is not exported (empty when all is known); parse errors too."""
    names: dict[str, frozenset[str] | None] = {**known, **BUILTINS}
    text = substitute(expr)
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", text, re.S)
    label = None
    if match is not None:  # a Grafana variable query
        text, label = match.group(1), match.group(2)
    try:
        node = pq.parse(text)
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    use = _walk(node, names)
    if label is not None:
        _grouping([label], "label_values", use, names)
    return use.problems


def metric_names(expr: str) -> Iterator[str]:
    """Every metric name ``expr`` selects (for tests that look for a metric's use)."""
    names: dict[str, frozenset[str] | None] = {**exported(), **BUILTINS}
    yield from _walk(pq.parse(substitute(expr)), names).metrics


def counter_selectors(expr: str) -> Iterator[pq.VectorSelector]:
    """The selectors of ``expr`` that a counter function (increase, rate, ...) reads over a
    range: the series it needs to exist before their first event."""
    found: list[pq.VectorSelector] = []

    def visit(node: object) -> None:
        if (
            isinstance(node, pq.Call)
            and node.func.name in COUNTER_FUNCTIONS
            and isinstance(node.args[0], pq.MatrixSelector)
        ):
            found.append(node.args[0].vector_selector)

    pq.walk(pq.parse(substitute(expr)), visit)
    yield from found


def matches(selector: pq.VectorSelector, labels: dict[str, str]) -> bool:
    """Whether a series with ``labels`` (its own, without the target labels Prometheus adds)
    is selected by ``selector``'s label matchers; a matcher on a target label matches."""
    for m in selector.matchers.matchers:
        if m.name in TARGET_LABELS:
            continue
        value = labels.get(m.name, "")
        full = re.fullmatch(m.value, value) is not None
        op = str(m.op)
        if (
            (op == "MatchOp.Equal" and value != m.value)
            or (op == "MatchOp.NotEqual" and value == m.value)
            or (op == "MatchOp.Re" and not full)
            or (op == "MatchOp.NotRe" and full)
        ):
            return False
    return True


def selectors(expr: str) -> Iterator[pq.VectorSelector]:
    """Every vector selector of ``expr`` (also those inside range selectors and subqueries)."""
    found: list[pq.VectorSelector] = []

    def visit(node: object) -> None:
        if isinstance(node, pq.VectorSelector):  # a range selector's own is visited too
            found.append(node)

    pq.walk(pq.parse(substitute(expr)), visit)
    yield from found

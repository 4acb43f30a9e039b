"""The panels every dashboard is made of: stat, time series, state timeline, bar gauge and
heatmap, their Prometheus targets, value mappings for states and flags, and expression helpers.

Every target names the dashboard's datasource variable (``${datasource}``) and selects only the
series of the line chosen in its ``line`` variable (:func:`on_line` adds the matcher to every
selector of a target); rates use ``$__rate_interval``. A stat panel says what it shows when its
series are absent: 0 for a count of events (``or vector(0)``), else a word (``noValue``).
"""

from __future__ import annotations

import re
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
RANGE_MINUTES = "$__range_s / 60"
# the line's series: its targets carry the label line (deploy/prometheus/prometheus.yml); where
# none does (a Prometheus of one line), the variable is empty and matches them all
LINE = 'line=~"$line"'
# a string literal (left as it is), or a selector of a linectl metric or of up with its matchers
_SELECTOR = re.compile(r'"(?:[^"\\]|\\.)*"|\b(linectl_\w+|up)\b(\{[^}]*\})?')

Panel = dict[str, Any]

# state colours in state timelines; a state not named here is shown in the text colour
COLOURS = {
    "offline": "dark-red",
    "fault": "red",
    "paused": "orange",
    "charging": "yellow",
    "driving": "blue",
    "working": "green",
    "Moving": "blue",
    "PickingUp": "green",
    "Depositing": "green",
    "Fault": "red",
    "Unknown": "dark-red",
    "Execute": "green",
    "Held": "red",
    "Holding": "orange",
    "Aborted": "dark-red",
    "Aborting": "dark-red",
    "Idle": "blue",
    "Suspended": "yellow",
}


def on_line(expr: str) -> str:
    """``expr`` with the line's matcher added to each of its selectors."""

    def add(m: re.Match[str]) -> str:
        name, matchers = m.group(1), m.group(2)
        if name is None:
            return m.group(0)
        inner = matchers[1:-1] if matchers else ""
        if "line=" in inner or "line!" in inner:
            return m.group(0)
        return f"{name}{{{inner},{LINE}}}" if inner else f"{name}{{{LINE}}}"

    return _SELECTOR.sub(add, expr)


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": on_line(expr),
        "legendFormat": legend or "__auto",
        "range": True,
        "refId": ref,
        **extra,
    }


def targets(*pairs: tuple[str, str]) -> list[dict[str, Any]]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def _panel(kind: str, title: str, description: str, tgts: list[dict[str, Any]]) -> Panel:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": tgts,
    }


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str = "short",
    *,
    legend: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    text_mode: str = "value",
    decimals: int | None = None,
    zero: bool = False,
    no_value: str | None = None,
) -> Panel:
    """A stat; what it shows without series is said, never Grafana's "No data": ``zero`` for a
    count of events (none counted is 0), else ``no_value`` (absent means not known, or nothing
    to take a share or percentile of)."""
    if zero == (no_value is not None):
        raise ValueError(f"stat {title!r}: say either zero=True or no_value, not both")
    if zero:
        expr = f"{expr} or vector(0)"
    p = _panel("stat", title, description, [target(expr, legend, instant=True)])
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if no_value is not None:
        defaults["noValue"] = no_value
    p["fieldConfig"] = {"defaults": defaults, "overrides": []}
    p["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "textMode": text_mode,
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return p


def series(
    title: str,
    description: str,
    tgts: list[dict[str, Any]],
    unit: str = "short",
    *,
    stack: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
) -> Panel:
    p = _panel("timeseries", title, description, tgts)
    defaults: dict[str, Any] = {
        "unit": unit,
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if stack else 0,
            "showPoints": "never",
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        },
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    p["fieldConfig"] = {"defaults": defaults, "overrides": []}
    p["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return p


def timeline(
    title: str, description: str, tgts: list[dict[str, Any]], mappings: list[dict[str, Any]]
) -> Panel:
    p = _panel("state-timeline", title, description, tgts)
    p["fieldConfig"] = {
        "defaults": {"mappings": mappings, "custom": {"fillOpacity": 80, "lineWidth": 0}},
        "overrides": [],
    }
    p["options"] = {
        "mergeValues": True,
        "showValue": "never",
        "rowHeight": 0.9,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
    }
    return p


def bargauge(
    title: str,
    description: str,
    tgts: list[dict[str, Any]],
    unit: str,
    thresholds: list[tuple[float | None, str]],
    maximum: float | None = None,
) -> Panel:
    p = _panel("bargauge", title, description, [dict(t, instant=True) for t in tgts])
    defaults: dict[str, Any] = {
        "unit": unit,
        "min": 0,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": c, "value": v} for v, c in thresholds],
        },
    }
    if maximum is not None:
        defaults["max"] = maximum
    p["fieldConfig"] = {"defaults": defaults, "overrides": []}
    p["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
    }
    return p


def heatmap(title: str, description: str, expr: str, unit: str) -> Panel:
    p = _panel("heatmap", title, description, [target(expr, "{{le}}", format="heatmap")])
    p["fieldConfig"] = {"defaults": {}, "overrides": []}
    p["options"] = {
        "calculate": False,
        "yAxis": {"unit": unit},
        "cellGap": 1,
        "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
        "tooltip": {"show": True, "yHistogram": True},
        "legend": {"show": True},
    }
    return p


def value_map(states: tuple[str, ...]) -> list[dict[str, Any]]:
    """Value mappings for a state encoded as 1..n (see ``encode``)."""
    return [
        {
            "type": "value",
            "options": {
                str(i + 1): {"text": name, "color": COLOURS.get(name, "text"), "index": i}
                for i, name in enumerate(states)
            },
        }
    ]


def encode(metric: str, by: str, states: tuple[str, ...], selector: str = "") -> str:
    """One series per ``by`` whose value is 1..n for the state it is in (0: none reported)."""
    extra = f",{selector}" if selector else ""
    return " + ".join(
        f'{i + 1} * sum by ({by}) ({metric}{{state="{name}"{extra}}})'
        for i, name in enumerate(states)
    )


def flag_map(on: str, off: str, on_colour: str = "green", off_colour: str = "red") -> list[Any]:
    return [
        {
            "type": "value",
            "options": {
                "1": {"text": on, "color": on_colour, "index": 0},
                "0": {"text": off, "color": off_colour, "index": 1},
            },
        }
    ]


def not_standby(expr: str) -> str:
    """``expr`` without the series of a standby controller: on a line with a standby, the
    standby connects to no device and its device gauges stay at 0."""
    return f"{expr} unless on (job, instance) (linectl_controller_active == 0)"


def share(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


def share_of_some(numerator: str, denominator: str) -> str:
    """A share with no value (rather than NaN) while the denominator is 0."""
    return f"({numerator}) / (({denominator}) > 0)"


def if_any(expr: str, count: str) -> str:
    """``expr`` (a percentile, NaN without observations) only while ``count`` is above 0."""
    return f"{expr} and on () ({count} > 0)"


# the states of a hold (1 held, 0 not), for the stat and the timeline of holds
HELD = [
    {
        "type": "value",
        "options": {
            "1": {"text": "held", "color": "orange", "index": 0},
            "0": {"text": "no", "color": "green", "index": 1},
        },
    }
]

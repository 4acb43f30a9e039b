"""A dashboard around its panels: stats on top, the rest below in a grid, the template
variables, and the settings every linectl dashboard shares (tags, links, refresh, time range,
the datasource input and variable, the line variable).

The datasource: imported (Dashboards, Import), Grafana asks for the Prometheus datasource of the
input ``DS_PROMETHEUS``, which becomes the ``datasource`` variable's value; provisioned from the
files, the input is not filled in and the variable falls back to a Prometheus datasource of
Grafana's (in deploy/compose.yaml the only one). Either way the Datasource drop-down switches it.
"""

from __future__ import annotations

from typing import Any

from dashboards.panels import DATASOURCE, Panel, on_line

SCHEMA_VERSION = 39
GRAFANA_VERSION = "10.4.0"  # the oldest Grafana the dashboards are for
INPUT = "DS_PROMETHEUS"


def layout(stats: list[Panel], rest: list[Panel]) -> list[Panel]:
    """Stats six to a row (height 4) on top; the rest two to a row (height 8); ids in order."""
    width = 24 // max(1, min(len(stats), 6))
    for i, p in enumerate(stats):
        p["gridPos"] = {"h": 4, "w": width, "x": (i % 6) * width, "y": (i // 6) * 4}
    y, x = ((len(stats) + 5) // 6) * 4, 0
    for p in rest:
        w = 24 if p["type"] == "state-timeline" else 12  # timelines take a whole row
        if x + w > 24:
            y, x = y + 8, 0
        p["gridPos"] = {"h": 8, "w": w, "x": x, "y": y}
        x += w
    panels = stats + rest
    for i, p in enumerate(panels):
        p["id"] = i + 1
    return panels


def datasource_variable() -> dict[str, Any]:
    """The Prometheus datasource every panel queries (``${datasource}``)."""
    return {
        "name": "datasource",
        "label": "Datasource",
        "type": "datasource",
        "query": "prometheus",
        "regex": "",
        "current": {"selected": False, "text": f"${{{INPUT}}}", "value": f"${{{INPUT}}}"},
        "refresh": 1,
        "includeAll": False,
        "multi": False,
        "hide": 0,
    }


def line_variable() -> dict[str, Any]:
    """The line whose series every panel shows: one at a time, so that two lines scraped by
    one Prometheus are never summed. Its values are the ``line`` label of the linectl targets;
    without one (a Prometheus of one line) it is empty and the panels show every series."""
    query = 'label_values(up{job="linectl"}, line)'
    return {
        "name": "line",
        "label": "Line",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query,
        "refresh": 2,
        "includeAll": False,
        "multi": False,
        "current": {},
        "sort": 1,
    }


def variable(name: str, label: str, metric: str, label_name: str) -> dict[str, Any]:
    """A variable over the values of ``label_name`` on the selected line's ``metric``."""
    query = on_line(f"label_values({metric}, {label_name})")
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    stats: list[Panel],
    rest: list[Panel],
    variables: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    panels = layout(stats, rest)
    return {
        "__inputs": [
            {
                "name": INPUT,
                "label": "Prometheus",
                "description": "The Prometheus that scrapes the linectl controllers",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            *(
                {"type": "panel", "id": kind, "name": kind, "version": ""}
                for kind in sorted({p["type"] for p in panels})
            ),
        ],
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["linectl"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "links": [
            {
                "type": "dashboards",
                "tags": ["linectl"],
                "asDropdown": True,
                "title": "linectl",
                "includeVars": True,  # the line and datasource chosen stay chosen
                "keepTime": True,
            }
        ],
        "annotations": {"list": []},
        "templating": {
            "list": [datasource_variable(), line_variable(), *(variables or [])],
        },
        "panels": panels,
    }

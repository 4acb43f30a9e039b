"""A dashboard around its panels: stats on top, the rest below in a grid, the template
variables, and the settings every linectl dashboard shares (tags, links, refresh, time range).
"""

from __future__ import annotations

from typing import Any

from dashboards.panels import DATASOURCE, Panel

SCHEMA_VERSION = 39


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


def variable(name: str, label: str, metric: str, label_name: str) -> dict[str, Any]:
    query = f"label_values({metric}, {label_name})"
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
    return {
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
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "annotations": {"list": []},
        "templating": {"list": variables or []},
        "panels": layout(stats, rest),
    }

#!/usr/bin/env python3
"""Write the Grafana dashboards in deploy/grafana/dashboards/ (the JSON files are what ships).

Every dashboard has the same shape: a row of stat panels on top, then time series, state
timelines, bar gauges and heatmaps; every target names the provisioned Prometheus datasource
(uid ``linectl-prometheus``) and rates use ``$__rate_interval``. Run from anywhere:

    python scripts/gen-dashboards.py            # write the files
    python scripts/gen-dashboards.py --check    # exit 1 if a committed file differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from controller.metrics import ROBOT_STATES
from controller.service import PACKML_STATES
from devices.opcua.cranes_state import STATES as CRANE_STATES

OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "linectl-prometheus"}
SCHEMA_VERSION = 39
RATE = "$__rate_interval"
RANGE_MINUTES = "$__range_s / 60"

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


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "expr": expr,
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
) -> Panel:
    p = _panel("stat", title, description, [target(expr, legend, instant=True)])
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "green")])]
    defaults: dict[str, Any] = {
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
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


def share(numerator: str, denominator: str) -> str:
    return f"({numerator}) / ({denominator})"


# --- the dashboards -------------------------------------------------------------------------


def line() -> dict[str, Any]:
    completed = f'linectl_orders_finished_total{{outcome="completed"}}[{RATE}]'
    stats = [
        stat(
            "Conveyor state",
            "The PackML state the conveyor reports now (Unknown while the OPC UA session is "
            "down). Execute is running; Held means the belts are held (jam, lost link, operator).",
            "max by (state) (linectl_conveyor_state) == 1",
            legend="{{state}}",
            text_mode="name",
            thresholds=[(None, "blue")],
        ),
        stat(
            "Conveyor link",
            "1 while the controller's OPC UA session to the conveyor PLC is up.",
            "min(linectl_opcua_connected)",
            mappings=flag_map("up", "down"),
        ),
        stat(
            "Orders in queue",
            "Orders not yet finished, all statuses (accepted to at the station).",
            "sum(linectl_orders)",
            thresholds=[(None, "green")],
        ),
        stat(
            "Completed per minute",
            "Orders completed per minute over the selected range (all types).",
            f'sum(increase(linectl_orders_finished_total{{outcome="completed"}}[$__range])) '
            f"/ ({RANGE_MINUTES})",
            "opm",
            decimals=1,
        ),
        stat(
            "Robots available",
            "Robots the controller can give work to (online, automatic, no fatal error).",
            'sum(linectl_robots{availability="available"})',
            thresholds=[(None, "red"), (1, "orange"), (4, "green")],
        ),
        stat(
            "Low-stock SKUs",
            "SKUs whose units on hand are below their low-stock level.",
            "linectl_low_stock_skus",
            thresholds=[(None, "green"), (1, "orange")],
        ),
    ]
    rest = [
        timeline(
            "PackML state",
            "The conveyor's PackML state over time. Red (Held) or dark red (Aborted, Unknown) "
            "stretches are when the line stood; hover for the state.",
            [target(encode("linectl_conveyor_state", "conveyor", PACKML_STATES), "{{conveyor}}")],
            value_map(PACKML_STATES),
        ),
        series(
            "Throughput",
            "Orders completed and received per minute, by type. Received above completed for "
            "long means the queue grows.",
            targets(
                (f"sum by (type) (rate({completed})) * 60", "completed {{type}}"),
                (
                    f"sum by (type) (rate(linectl_orders_received_total[{RATE}])) * 60",
                    "received {{type}}",
                ),
            ),
            "opm",
        ),
        series(
            "Queue by status",
            "Orders by status (stacked). A band that keeps growing shows the stage that holds "
            "orders back: accepted/released (robots, stock), picking, at_station (operators).",
            targets(("sum by (status) (linectl_orders)", "{{status}}")),
            stack=True,
        ),
        series(
            "Safe-state entries",
            "Times per interval the conveyor went to its safe state (belts held), by reason: "
            "comms_lost, controller_silent (PLC watchdog), jam.",
            targets(
                (
                    f"sum by (conveyor, reason) (increase(linectl_conveyor_safe_state_total"
                    f"[{RATE}]))",
                    "{{conveyor}} {{reason}}",
                )
            ),
        ),
        series(
            "Jammed zones",
            "Conveyor zones that report a jam (1). The zones upstream of a jammed zone hold.",
            targets(("linectl_conveyor_zone_jammed == 1", "{{conveyor}} {{zone}}")),
        ),
        series(
            "Orders finished by outcome",
            "Orders reaching a terminal state per minute: completed, cancelled, exception.",
            targets(
                (
                    f"sum by (outcome) (rate(linectl_orders_finished_total[{RATE}])) * 60",
                    "{{outcome}}",
                )
            ),
            "opm",
            stack=True,
        ),
    ]
    return dashboard(
        "linectl-line",
        "linectl / Line overview",
        "The line at a glance: conveyor PackML state, throughput, the order queue.",
        stats,
        rest,
    )


def orders() -> dict[str, Any]:
    on_time = "linectl_orders_on_time_total"

    def on_time_share(kind: str, window: str) -> str:
        sel = f'type="{kind}"'
        return share(
            f'sum(increase({on_time}{{{sel},on_time="true"}}[{window}]))',
            f"sum(increase({on_time}{{{sel}}}[{window}]))",
        )

    def quantile(q: str, kind: str, window: str) -> str:
        return (
            f"histogram_quantile({q}, sum by (le) (rate(linectl_order_cycle_seconds_bucket"
            f'{{type="{kind}"}}[{window}])))'
        )

    share_steps: list[tuple[float | None, str]] = [(None, "red"), (0.9, "orange"), (0.98, "green")]
    stats = [
        stat(
            "B2C completed",
            "B2C orders completed in the selected range.",
            'sum(increase(linectl_orders_finished_total{type="b2c",outcome="completed"}'
            "[$__range]))",
            decimals=0,
        ),
        stat(
            "B2B completed",
            "B2B orders completed in the selected range.",
            'sum(increase(linectl_orders_finished_total{type="b2b",outcome="completed"}'
            "[$__range]))",
            decimals=0,
        ),
        stat(
            "B2C on time",
            "Share of B2C orders completed by their carrier cut-off (due_at), in the range.",
            on_time_share("b2c", "$__range"),
            "percentunit",
            thresholds=share_steps,
        ),
        stat(
            "B2B on time",
            "Share of B2B orders completed by the end of their delivery window (deliver_until, "
            "else due_at), in the range.",
            on_time_share("b2b", "$__range"),
            "percentunit",
            thresholds=share_steps,
        ),
        stat(
            "B2C cycle p95",
            "95th percentile of B2C cycle time (acceptance to completion, line time) in the range.",
            quantile("0.95", "b2c", "$__range"),
            "s",
        ),
        stat(
            "Exceptions",
            "Orders that ended in the exception state in the range (verification mismatch, "
            "lost tote, stock-out): look them up in the API (status=exception).",
            'sum(increase(linectl_orders_finished_total{outcome="exception"}[$__range]))',
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
        ),
    ]
    rest = [
        series(
            "Completed by type",
            "Orders completed per minute, B2C and B2B.",
            targets(
                (
                    "sum by (type) (rate(linectl_orders_finished_total"
                    f'{{outcome="completed"}}[{RATE}])) * 60',
                    "{{type}}",
                )
            ),
            "opm",
        ),
        series(
            "Finished by type and outcome",
            "Orders reaching a terminal state per minute by type and outcome.",
            targets(
                (
                    f"sum by (type, outcome) (rate(linectl_orders_finished_total[{RATE}])) * 60",
                    "{{type}} {{outcome}}",
                )
            ),
            "opm",
        ),
        series(
            "Cycle time",
            "Median and 95th percentile of order cycle time by type (line seconds from "
            "acceptance to completion).",
            targets(
                *(
                    (
                        f"histogram_quantile({q}, sum by (le, type) (rate("
                        f"linectl_order_cycle_seconds_bucket[{RATE}])))",
                        f"p{int(float(q) * 100)} {{{{type}}}}",
                    )
                    for q in ("0.5", "0.95")
                )
            ),
            "s",
        ),
        series(
            "On-time share",
            "Share of completed orders that met their due time, by type (B2C: cut-off; B2B: "
            "end of the delivery window). Below 1 means orders complete late: check the queue "
            "and the robots.",
            targets(
                (
                    share(
                        f'sum by (type) (rate({on_time}{{on_time="true"}}[{RATE}]))',
                        f"sum by (type) (rate({on_time}[{RATE}]))",
                    ),
                    "{{type}}",
                )
            ),
            "percentunit",
            maximum=1,
        ),
        heatmap(
            "Cycle time distribution",
            "Completed orders by cycle time bucket (all types); a band moving up means orders "
            "take longer.",
            f"sum by (le) (increase(linectl_order_cycle_seconds_bucket[{RATE}]))",
            "s",
        ),
        series(
            "Stock-outs and short picks",
            "Order lines that could not be allocated from stock, and picks that took fewer "
            "units than reserved, per interval.",
            targets(
                (f"sum(increase(linectl_stockouts_total[{RATE}]))", "stock-outs"),
                (f"sum(increase(linectl_short_picks_total[{RATE}]))", "short picks"),
            ),
        ),
    ]
    return dashboard(
        "linectl-orders",
        "linectl / Orders",
        "B2C vs B2B: completions, cycle time, on-time share against the cut-off.",
        stats,
        rest,
    )


def sorter() -> dict[str, Any]:
    decisions = "linectl_sort_decisions_total"

    def outcome_share(outcome: str, window: str) -> str:
        return share(
            f'sum(rate({decisions}{{outcome="{outcome}"}}[{window}]))',
            f"sum(rate({decisions}[{window}]))",
        )

    def latency(q: str, window: str, by: str = "le") -> str:
        return (
            f"histogram_quantile({q}, sum by ({by}) (rate("
            f"linectl_scan_to_divert_seconds_bucket[{window}])))"
        )

    stats = [
        stat(
            "Decisions per minute",
            "Sort decisions per minute over the range (every scan of a tote at the sorter).",
            f"sum(increase({decisions}[$__range])) / ({RANGE_MINUTES})",
            "opm",
            decimals=1,
        ),
        stat(
            "Diverted",
            "Share of decisions that sent the tote to its own chute.",
            outcome_share("diverted", "$__range"),
            "percentunit",
            thresholds=[(None, "red"), (0.8, "orange"), (0.9, "green")],
        ),
        stat(
            "Rejected",
            "Share of decisions that sent the tote to the reject chute.",
            outcome_share("rejected", "$__range"),
            "percentunit",
            thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")],
        ),
        stat(
            "No-read",
            "Share of scans with no code read (the tote recirculates): a high share points at "
            "the scanner or the labels.",
            outcome_share("no_read", "$__range"),
            "percentunit",
            thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")],
        ),
        stat(
            "Scan-to-divert p99",
            "99th percentile of wall time from the scan event to the Divert method returning.",
            latency("0.99", "$__range"),
            "s",
            thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")],
        ),
        stat(
            "B2B chutes held",
            "Chutes currently held by an open B2B order (dynamic allocation).",
            "linectl_b2b_chutes_allocated",
        ),
    ]
    rest = [
        series(
            "Decisions by outcome",
            "Sort decisions per minute by outcome (stacked): diverted, no_read, multi_read, "
            "chute_full (recirculated), rejected, divert_failed, divert_refused.",
            targets((f"sum by (outcome) (rate({decisions}[{RATE}])) * 60", "{{outcome}}")),
            "opm",
            stack=True,
        ),
        series(
            "Outcome share",
            "Share of decisions by outcome; no_read and rejected should stay near zero.",
            targets(
                (
                    share(
                        f"sum by (outcome) (rate({decisions}[{RATE}]))",
                        f"scalar(sum(rate({decisions}[{RATE}])))",
                    ),
                    "{{outcome}}",
                )
            ),
            "percentunit",
            maximum=1,
        ),
        series(
            "Scan-to-divert latency",
            "Median, 95th and 99th percentile of scan-to-divert latency. Rising latency risks "
            "missed diverts: check controller load and the OPC UA link.",
            targets(
                (latency("0.5", RATE), "p50"),
                (latency("0.95", RATE), "p95"),
                (latency("0.99", RATE), "p99"),
            ),
            "s",
        ),
        heatmap(
            "Scan-to-divert distribution",
            "Divert calls by latency bucket.",
            f"sum by (le) (increase(linectl_scan_to_divert_seconds_bucket[{RATE}]))",
            "s",
        ),
        series(
            "B2B chutes",
            "Chutes given to and freed by B2B orders per interval, and chutes held now.",
            targets(
                (f"sum(increase(linectl_b2b_chute_allocations_total[{RATE}]))", "allocated"),
                (
                    f"sum by (status) (increase(linectl_b2b_chute_releases_total[{RATE}]))",
                    "released ({{status}})",
                ),
                ("linectl_b2b_chutes_allocated", "held"),
            ),
        ),
        series(
            "Tote returns",
            "AS/RS totes sent back to the rack from a station or chute per interval.",
            targets((f"sum(increase(linectl_tote_returns_total[{RATE}]))", "returns")),
        ),
    ]
    return dashboard(
        "linectl-sorter",
        "linectl / Sorter",
        "Sort outcomes and scan-to-divert latency.",
        stats,
        rest,
    )


def robots() -> dict[str, Any]:
    sel = 'robot=~"$robot"'
    busy = f'sum by (robot) (linectl_robot_state{{state=~"driving|working",{sel}}})'
    stats = [
        stat(
            "Available",
            "Robots the controller can give work to.",
            'sum(linectl_robots{availability="available"})',
            thresholds=[(None, "red"), (1, "orange"), (4, "green")],
        ),
        stat(
            "Unavailable",
            "Robots offline, in fault, in manual mode or with stale state.",
            'sum(linectl_robots{availability="unavailable"})',
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            "Utilisation",
            "Share of time the selected robots were busy (driving or working) in the range.",
            f"avg(avg_over_time(({busy})[$__range:]))",
            "percentunit",
            thresholds=[(None, "blue")],
        ),
        stat(
            "In fault or offline",
            "Robots in the fault or offline state now.",
            f'sum(linectl_robot_state{{state=~"fault|offline",{sel}}})',
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            "Lowest battery",
            "The lowest battery charge of the selected robots.",
            f"min(linectl_robot_battery_ratio{{{sel}}})",
            "percentunit",
            thresholds=[(None, "red"), (0.2, "orange"), (0.4, "green")],
        ),
        stat(
            "Waiting in traffic",
            "Robots standing at a decision point, waiting for a node another robot holds.",
            "linectl_traffic_waiting_robots",
            thresholds=[(None, "green"), (2, "orange")],
        ),
    ]
    rest = [
        timeline(
            "Robot state",
            "What each robot did over time: idle, driving, working (on a trip, standing: "
            "picking, dropping, waiting), charging, paused, fault, offline.",
            [target(encode("linectl_robot_state", "robot", ROBOT_STATES, sel), "{{robot}}")],
            value_map(ROBOT_STATES),
        ),
        series(
            "Utilisation",
            "Share of the last 15 minutes each robot was busy (driving or working).",
            targets((f"avg_over_time(({busy})[15m:])", "{{robot}}")),
            "percentunit",
            maximum=1,
        ),
        series(
            "Battery",
            "Battery charge of each robot.",
            targets((f"linectl_robot_battery_ratio{{{sel}}}", "{{robot}}")),
            "percentunit",
            maximum=1,
        ),
        bargauge(
            "Battery now",
            "Battery charge of each robot now.",
            targets((f"linectl_robot_battery_ratio{{{sel}}}", "{{robot}}")),
            "percentunit",
            [(None, "red"), (0.2, "orange"), (0.4, "green")],
            maximum=1,
        ),
        series(
            "Fleet by state",
            "Number of robots in each state (stacked).",
            targets((f"sum by (state) (linectl_robot_state{{{sel}}})", "{{state}}")),
            stack=True,
        ),
        series(
            "Trips",
            "Robot trips sent per minute by outcome (sent, send_failed).",
            targets(
                (f"sum by (outcome) (rate(linectl_robot_trips_total[{RATE}])) * 60", "{{outcome}}")
            ),
            "opm",
        ),
        series(
            "Traffic control",
            "Per interval: routes re-planned (by reason), idle robots sent out of the way, wait "
            "cycles ended by cancelling a trip (deadlocks).",
            targets(
                (
                    f"sum by (reason) (increase(linectl_traffic_reroutes_total[{RATE}]))",
                    "reroute {{reason}}",
                ),
                (f"sum(increase(linectl_traffic_evacuations_total[{RATE}]))", "evacuations"),
                (f"sum(increase(linectl_traffic_deadlocks_total[{RATE}]))", "deadlocks"),
            ),
        ),
        series(
            "VDA 5050 messages",
            "MQTT messages per second by direction, topic and result; rejected or "
            "unknown_robot results point at a robot's software or configuration.",
            targets(
                (
                    "sum by (direction, topic, result) (rate(linectl_mqtt_messages_total"
                    f"[{RATE}]))",
                    "{{direction}} {{topic}} {{result}}",
                )
            ),
            "ops",
        ),
    ]
    return dashboard(
        "linectl-robots",
        "linectl / Robots",
        "VDA 5050 picking robots: state, battery, utilisation, traffic.",
        stats,
        rest,
        [variable("robot", "Robot", "linectl_robot_state", "robot")],
    )


def asrs() -> dict[str, Any]:
    sel = 'aisle=~"$aisle"'
    stats = [
        stat(
            "AS/RS link",
            "1 while the OPC UA session to the AS/RS cranes is up.",
            "linectl_asrs_opcua_connected",
            mappings=flag_map("up", "down"),
        ),
        stat(
            "Cycles per hour",
            "Crane cycles per hour over the range (selected aisles).",
            f"sum(increase(linectl_asrs_cycles_total{{{sel}}}[$__range])) / ($__range_s / 3600)",
            decimals=0,
        ),
        stat(
            "Mean cycle time",
            "Mean line seconds of a crane cycle in the range (selected aisles).",
            share(
                f"sum(increase(linectl_asrs_cycle_seconds_sum{{{sel}}}[$__range]))",
                f"sum(increase(linectl_asrs_cycle_seconds_count{{{sel}}}[$__range]))",
            ),
            "s",
        ),
        stat(
            "Cranes in fault",
            "Cranes reporting the Fault state now.",
            f'sum(linectl_asrs_crane_state{{state="Fault",{sel}}})',
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            "Open transports",
            "AS/RS transports not finished (waiting, pending, sent, check).",
            f"sum(linectl_asrs_open{{{sel}}})",
        ),
        stat(
            "Failed commands",
            "Crane commands that failed or were rejected in the range.",
            'sum(increase(linectl_asrs_commands_total{outcome=~"failed|rejected"}[$__range]))',
            thresholds=[(None, "green"), (1, "orange")],
            decimals=0,
        ),
    ]
    rest = [
        timeline(
            "Crane state",
            "Each aisle's crane over time: Idle, Moving, PickingUp, Depositing, Fault, Unknown "
            "(no OPC UA session).",
            [target(encode("linectl_asrs_crane_state", "aisle", CRANE_STATES, sel), "{{aisle}}")],
            value_map(CRANE_STATES),
        ),
        series(
            "Cycles",
            "Crane cycles per minute by aisle and kind (single_store, single_retrieve, dual).",
            targets(
                (
                    f"sum by (aisle, kind) (rate(linectl_asrs_cycles_total{{{sel}}}[{RATE}])) * 60",
                    "{{aisle}} {{kind}}",
                )
            ),
            "opm",
        ),
        series(
            "Cycle time",
            "Mean line seconds per cycle by aisle and kind; compare with `linectl asrs "
            "estimate` for the rack.",
            targets(
                (
                    share(
                        f"sum by (aisle, kind) (rate(linectl_asrs_cycle_seconds_sum{{{sel}}}"
                        f"[{RATE}]))",
                        f"sum by (aisle, kind) (rate(linectl_asrs_cycle_seconds_count{{{sel}}}"
                        f"[{RATE}]))",
                    ),
                    "{{aisle}} {{kind}}",
                )
            ),
            "s",
        ),
        series(
            "Open transports",
            "Transports not finished by aisle and state; many in check after a power loss "
            "wait for the racks' contents.",
            targets((f"sum by (aisle, state) (linectl_asrs_open{{{sel}}})", "{{aisle}} {{state}}")),
            stack=True,
        ),
        series(
            "Commands",
            "Crane commands per interval by kind and outcome.",
            targets(
                (
                    f"sum by (kind, outcome) (increase(linectl_asrs_commands_total[{RATE}]))",
                    "{{kind}} {{outcome}}",
                )
            ),
        ),
        series(
            "Case totes and replenishment",
            "Per interval: AS/RS totes for B2B case picks by stage, replenishments of robot "
            "pick locations by stage.",
            targets(
                (
                    f"sum by (stage) (increase(linectl_case_totes_total[{RATE}]))",
                    "case tote {{stage}}",
                ),
                (
                    f"sum by (stage) (increase(linectl_replenishments_total[{RATE}]))",
                    "replenishment {{stage}}",
                ),
            ),
        ),
    ]
    return dashboard(
        "linectl-asrs",
        "linectl / AS/RS",
        "AS/RS cranes: state, cycles, cycle time, transports.",
        stats,
        rest,
        [variable("aisle", "Aisle", "linectl_asrs_crane_state", "aisle")],
    )


def devices() -> dict[str, Any]:
    link = flag_map("up", "down")
    stats = [
        stat(
            "linectl scraped",
            "1 while Prometheus reaches linectl's /metrics.",
            'min(up{job="linectl"})',
            mappings=link,
        ),
        stat(
            "MQTT broker",
            "1 while the controller's connection to the MQTT broker is up.",
            "linectl_mqtt_connected",
            mappings=link,
        ),
        stat(
            "Conveyor OPC UA",
            "1 while the OPC UA session to every conveyor is up.",
            "min(linectl_opcua_connected)",
            mappings=link,
        ),
        stat(
            "AS/RS OPC UA",
            "1 while the OPC UA session to the AS/RS cranes is up.",
            "linectl_asrs_opcua_connected",
            mappings=link,
        ),
        stat(
            "Robots offline",
            "Robots not ONLINE or without any state message.",
            'sum(linectl_robot_state{state="offline"})',
            thresholds=[(None, "green"), (1, "red")],
        ),
        stat(
            "Webhook outbox",
            "Webhook deliveries waiting (not delivered, not dead).",
            "linectl_webhook_outbox_pending",
            thresholds=[(None, "green"), (100, "orange")],
        ),
    ]
    rest = [
        timeline(
            "Links",
            "Each device link over time: green up, red down.",
            targets(
                ("linectl_mqtt_connected", "MQTT broker"),
                ("linectl_opcua_connected", "conveyor {{conveyor}}"),
                ("linectl_asrs_opcua_connected", "AS/RS cranes"),
            ),
            link,
        ),
        timeline(
            "Robots online",
            "Each robot's link: offline (not ONLINE or no state) in red.",
            targets(('1 - linectl_robot_state{state="offline"}', "{{robot}}")),
            flag_map("online", "offline"),
        ),
        series(
            "Robots by availability",
            "Robots available and unavailable to the controller.",
            targets(("sum by (availability) (linectl_robots)", "{{availability}}")),
            stack=True,
        ),
        series(
            "OPC UA events",
            "OPC UA events received per second by kind (scans, divert confirmations, crane "
            "events).",
            targets(
                (f"sum by (kind) (rate(linectl_opcua_events_total[{RATE}]))", "{{kind}}"),
            ),
            "ops",
        ),
        series(
            "Conveyor reconciliation",
            "Tracked items put right after the conveyor came back, by action.",
            targets(
                (
                    "sum by (conveyor, action) (increase(linectl_conveyor_reconciled_total"
                    f"[{RATE}]))",
                    "{{conveyor}} {{action}}",
                )
            ),
        ),
        series(
            "Webhook deliveries",
            "Delivery attempts per second by outcome (delivered, retry, dead); dead deliveries "
            "were given up.",
            targets(
                (
                    f"sum by (outcome) (rate(linectl_webhook_deliveries_total[{RATE}]))",
                    "{{outcome}}",
                ),
            ),
            "ops",
        ),
        series(
            "Operator commands",
            "Calls to operator routes per interval (hold, resume, jog, robot and conveyor "
            "commands, counts, verifications), by result: refused calls (no token, wrong "
            "scope, a state that does not allow it) show who tried what in GET /v1/audit.",
            targets(
                (
                    f"sum by (action, result) (increase(linectl_audit_entries_total[{RATE}]))",
                    "{{action}} {{result}}",
                ),
                (f"increase(linectl_audit_write_failures_total[{RATE}])", "not audited"),
            ),
        ),
        series(
            "Stock",
            "Units in the inventory by state (on_hand, reserved, available).",
            targets(("sum by (state) (linectl_stock_units)", "{{state}}")),
        ),
        series(
            "Stock movements",
            "Ledger rows written per interval by kind of event.",
            targets(
                (f"sum by (kind) (increase(linectl_stock_movements_total[{RATE}]))", "{{kind}}")
            ),
        ),
    ]
    return dashboard(
        "linectl-devices",
        "linectl / Devices and links",
        "Device links (MQTT, OPC UA), robots online, webhooks, stock.",
        stats,
        rest,
    )


DASHBOARDS = {
    "line.json": line,
    "orders.json": orders,
    "sorter.json": sorter,
    "robots.json": robots,
    "asrs.json": asrs,
    "devices.json": devices,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: json.dumps(make(), indent=2) + "\n" for name, make in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [n for n, text in files.items() if (OUT / n).read_text() != text]
        for name in stale:
            print(f"{OUT / name} differs from scripts/gen-dashboards.py; run it", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The KPI report's headline figures, shown alike wherever they are shown: the table at the top of
the HTML report (:mod:`controller.app.report.html`) and the summary ``linectl demo`` prints.

:func:`summary` takes the figures from the KPIs in the units and precision they are shown in
(orders per hour of line time, cycle times in line minutes, shares) and is written into the JSON
report as ``summary``; :func:`table` turns that into the text of the table's cells. Both the page
and the demo format the same rounded numbers, so they print the same text, also from a JSON
report read back.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from controller.app.report.model import Distribution, Kpis, OnTime

ALL = "all"  # the row of every order type together
HEAD = (
    "Order type",
    "Completed",
    "Orders / h",
    "Cycle p50 (min)",
    "Cycle p95 (min)",
    "Cycle max (min)",
    "On time",
)
KIND_NAMES = {"store": "single store", "retrieve": "single retrieve", "dual": "dual"}


def summary(k: Kpis) -> dict[str, Any]:
    """The headline figures of ``k``: per order type and for all orders, completed orders, orders
    per hour of the window (line time), cycle time p50, p95 and longest in minutes, and the
    on-time share; then the robots' mean utilisation, the sorter's outcomes and the crane cycles
    by aisle and kind."""
    hours = k.window.seconds / 3600
    rows = []
    every: list[float] = []
    on_time = OnTime(0, 0, 0)
    for t, counts in k.throughput.counts.items():
        cycle, punctual = k.cycle_times[t], k.on_time[t]
        rows.append(_row(t, sum(counts), hours, cycle, punctual))
        every += cycle.values
        on_time = OnTime(
            on_time.on_time + punctual.on_time,
            on_time.late + punctual.late,
            on_time.overdue + punctual.overdue,
        )
    done = sum(sum(c) for c in k.throughput.counts.values())
    rows.append(_row(ALL, done, hours, Distribution.of(every), on_time))
    shares = [u.share for u in k.robots.values()]
    return {
        "window_hours": round(hours, 2),
        "orders": rows,
        "robots": {
            "with_trips": len(shares),
            "mean_utilisation": round(statistics.fmean(shares), 4) if shares else None,
        },
        "sorter": {
            "diverted": k.sorter.diverted,
            "recirculated": sum(k.sorter.recirculated.values()),
            "rejected": sum(k.sorter.rejected.values()),
        },
        "asrs": {
            "done": sum(d.count for d in k.asrs.values()),
            "failed": k.asrs_failed,
            "cycles": [
                {
                    "aisle": aisle,
                    "kind": kind,
                    "count": d.count,
                    "p50_seconds": _round(d.p50, 1),
                    "max_seconds": _round(d.max, 1),
                }
                for (aisle, kind), d in k.asrs.items()
            ],
        },
    }


def _row(
    order_type: str, done: int, hours: float, cycle: Distribution, on_time: OnTime
) -> dict[str, Any]:
    minutes = {
        q: _round(None if v is None else v / 60, 1)
        for q, v in (("p50", cycle.p50), ("p95", cycle.p95), ("max", cycle.max))
    }
    return {
        "type": order_type,
        "completed": done,
        "orders_per_hour": round(done / hours, 1) if hours else None,
        "cycle_minutes": minutes,
        "on_time_share": _round(on_time.share, 4),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def table(s: Mapping[str, Any]) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """The text of the table: a row of cells (as :data:`HEAD`) per order type and for all
    orders, then the notes (robots, sorter, AS/RS) as (name, text)."""
    rows = []
    for r in s["orders"]:
        cycle = r["cycle_minutes"]
        rows.append(
            [
                "All" if r["type"] == ALL else str(r["type"]).upper(),
                str(r["completed"]),
                _number(r["orders_per_hour"]),
                _number(cycle["p50"]),
                _number(cycle["p95"]),
                _number(cycle["max"]),
                "-" if r["on_time_share"] is None else f"{r['on_time_share']:.1%}",
            ]
        )
    notes = []
    robots = s["robots"]
    if robots["with_trips"]:
        notes.append(
            (
                "Robots",
                f"{robots['with_trips']} robots made trips, mean utilisation "
                f"{robots['mean_utilisation']:.1%}",
            )
        )
    sorter, asrs = s["sorter"], s["asrs"]
    notes.append(
        (
            "Sorter",
            f"{sorter['diverted']} diverted, {sorter['recirculated']} recirculated, "
            f"{sorter['rejected']} rejected",
        )
    )
    cycles = "; ".join(
        f"{c['aisle']} {KIND_NAMES.get(c['kind'], c['kind'])} {c['count']} "
        f"(p50 {c['p50_seconds']:.1f} s)"
        for c in asrs["cycles"]
    )
    notes.append(
        (
            "AS/RS",
            f"{asrs['done']} crane cycles done, {asrs['failed']} failed"
            + (f": {cycles}" if cycles else ""),
        )
    )
    return rows, notes


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"

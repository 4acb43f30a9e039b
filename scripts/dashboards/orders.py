"""The orders dashboard: B2C vs B2B completions, cycle time and the on-time share against the
cut-off or delivery window, exceptions, stock-outs and short picks.
"""

from __future__ import annotations

from typing import Any

from dashboards.layout import dashboard
from dashboards.panels import (
    RATE,
    heatmap,
    if_any,
    series,
    share,
    share_of_some,
    stat,
    targets,
)


def orders() -> dict[str, Any]:
    on_time = "linectl_orders_on_time_total"

    def on_time_share(kind: str, window: str) -> str:
        sel = f'type="{kind}"'
        return share_of_some(
            f'sum(increase({on_time}{{{sel},on_time="true"}}[{window}]))',
            f"sum(increase({on_time}{{{sel}}}[{window}]))",
        )

    def quantile(q: str, kind: str, window: str) -> str:
        """The cycle time percentile of the orders completed in ``window`` (none: no value)."""
        return if_any(
            f"histogram_quantile({q}, sum by (le) (rate(linectl_order_cycle_seconds_bucket"
            f'{{type="{kind}"}}[{window}])))',
            f'sum(increase(linectl_order_cycle_seconds_count{{type="{kind}"}}[{window}]))',
        )

    share_steps: list[tuple[float | None, str]] = [(None, "red"), (0.9, "orange"), (0.98, "green")]
    stats = [
        stat(
            "B2C completed",
            "B2C orders completed in the selected range.",
            'sum(increase(linectl_orders_finished_total{type="b2c",outcome="completed"}'
            "[$__range]))",
            decimals=0,
            zero=True,
        ),
        stat(
            "B2B completed",
            "B2B orders completed in the selected range.",
            'sum(increase(linectl_orders_finished_total{type="b2b",outcome="completed"}'
            "[$__range]))",
            decimals=0,
            zero=True,
        ),
        stat(
            "B2C on time",
            "Share of B2C orders completed by their carrier cut-off (due_at), in the range.",
            on_time_share("b2c", "$__range"),
            "percentunit",
            thresholds=share_steps,
            no_value="no orders",
        ),
        stat(
            "B2B on time",
            "Share of B2B orders completed by the end of their delivery window (deliver_until, "
            "else due_at), in the range.",
            on_time_share("b2b", "$__range"),
            "percentunit",
            thresholds=share_steps,
            no_value="no orders",
        ),
        stat(
            "B2C cycle p95",
            "95th percentile of B2C cycle time (acceptance to completion, line time) in the range.",
            quantile("0.95", "b2c", "$__range"),
            "s",
            no_value="no orders",
        ),
        stat(
            "Exceptions",
            "Orders that ended in the exception state in the range (verification mismatch, "
            "lost tote, stock-out): look them up in the API (status=exception).",
            'sum(increase(linectl_orders_finished_total{outcome="exception"}[$__range]))',
            thresholds=[(None, "green"), (1, "red")],
            decimals=0,
            zero=True,
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

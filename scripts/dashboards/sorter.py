"""The sorter dashboard: sort decisions by outcome, scan-to-divert latency, B2B chutes and tote
returns.
"""

from __future__ import annotations

from typing import Any

from dashboards.layout import dashboard
from dashboards.panels import (
    RANGE_MINUTES,
    RATE,
    heatmap,
    if_any,
    series,
    share,
    share_of_some,
    stat,
    targets,
)


def sorter() -> dict[str, Any]:
    decisions = "linectl_sort_decisions_total"

    def outcome_share(outcome: str, window: str) -> str:
        return share_of_some(
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
            zero=True,
        ),
        stat(
            "Diverted",
            "Share of decisions that sent the tote to its own chute.",
            outcome_share("diverted", "$__range"),
            "percentunit",
            thresholds=[(None, "red"), (0.8, "orange"), (0.9, "green")],
            no_value="no scans",
        ),
        stat(
            "Rejected",
            "Share of decisions that sent the tote to the reject chute.",
            outcome_share("rejected", "$__range"),
            "percentunit",
            thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")],
            no_value="no scans",
        ),
        stat(
            "No-read",
            "Share of scans with no code read (the tote recirculates): a high share points at "
            "the scanner or the labels.",
            outcome_share("no_read", "$__range"),
            "percentunit",
            thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")],
            no_value="no scans",
        ),
        stat(
            "Scan-to-divert p99",
            "99th percentile of wall time from the scan event to the Divert method returning.",
            if_any(
                latency("0.99", "$__range"),
                "sum(increase(linectl_scan_to_divert_seconds_count[$__range]))",
            ),
            "s",
            thresholds=[(None, "green"), (0.02, "orange"), (0.05, "red")],
            no_value="no diverts",
        ),
        stat(
            "B2B chutes held",
            "Chutes currently held by an open B2B order (dynamic allocation).",
            "max(linectl_b2b_chutes_allocated)",
            no_value="unknown",
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

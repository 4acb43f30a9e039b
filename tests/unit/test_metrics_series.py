"""Series that exist from the start, so shares on the dashboards read 0 rather than no data."""

from __future__ import annotations

from controller.metrics import SORT_OUTCOMES, Metrics


def test_on_time_and_sort_outcomes_start_at_zero() -> None:
    get = Metrics().registry.get_sample_value
    for kind in ("b2c", "b2b"):
        for on_time in ("true", "false"):
            labels = {"type": kind, "on_time": on_time}
            assert get("linectl_orders_on_time_total", labels) == 0.0
    assert {"diverted", "no_read", "multi_read", "chute_full", "rejected"} <= set(SORT_OUTCOMES)
    for outcome in SORT_OUTCOMES:
        assert get("linectl_sort_decisions_total", {"outcome": outcome}) == 0.0

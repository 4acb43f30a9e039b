"""Series that exist from the start, so shares on the dashboards read 0 rather than no data."""

from __future__ import annotations

from controller.orders.model import OrderType
from controller.orders.waiting import Stage
from kernel.metrics import DEADLINE_STAGES, ORDER_TYPES, SORT_OUTCOMES, Metrics
from routing.sortation import Outcome


def test_on_time_and_sort_outcomes_start_at_zero() -> None:
    get = Metrics().registry.get_sample_value
    for kind in ("b2c", "b2b"):
        for on_time in ("true", "false"):
            labels = {"type": kind, "on_time": on_time}
            assert get("linectl_orders_on_time_total", labels) == 0.0
    assert {"diverted", "no_read", "multi_read", "chute_full", "rejected"} <= set(SORT_OUTCOMES)
    for outcome in SORT_OUTCOMES:
        assert get("linectl_sort_decisions_total", {"outcome": outcome}) == 0.0


def test_preset_label_values_are_the_domain_enums() -> None:
    """The kernel's metrics know no domain types; their preset labels must not drift from them."""
    assert set(ORDER_TYPES) == {t.value for t in OrderType}
    assert set(DEADLINE_STAGES) == {s.value for s in Stage}
    assert set(SORT_OUTCOMES) == {o.value for o in Outcome} | {"divert_failed", "divert_refused"}

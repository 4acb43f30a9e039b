"""Series that exist from the start, so shares on the dashboards read 0 rather than no data and
an alert on ``increase()`` sees the first event; what else the registry carries."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.orders.model import TERMINAL, OrderStatus, OrderType
from controller.orders.waiting import Stage
from devices.errors import Refusal
from kernel.config.asrs import Asrs
from kernel.config.model import LineConfig
from kernel.metrics import (
    DEADLINE_STAGES,
    ORDER_OUTCOMES,
    ORDER_TYPES,
    ROBOT_ORDER_REFUSALS,
    SORT_OUTCOMES,
    Metrics,
    SafeStateReason,
    WebhookOutcome,
    package_version,
)
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
    assert set(ORDER_OUTCOMES) == {s.value for s in TERMINAL | {OrderStatus.EXCEPTION}}
    assert set(DEADLINE_STAGES) == {s.value for s in Stage}
    assert set(SORT_OUTCOMES) == {o.value for o in Outcome} | {"divert_failed", "divert_refused"}
    assert set(ROBOT_ORDER_REFUSALS) == {r.value for r in Refusal}


def test_the_line_s_conveyor_safe_state_series_start_at_zero(reference_line: LineConfig) -> None:
    metrics = Metrics(line=reference_line)
    get = metrics.registry.get_sample_value
    conveyor = reference_line.conveyor.id
    for reason in ("comms_lost", "controller_silent", "jam"):
        assert (
            get("linectl_conveyor_safe_state_total", {"conveyor": conveyor, "reason": reason}) == 0
        )
    assert {r.value for r in SafeStateReason} == {"comms_lost", "controller_silent", "jam"}
    for outcome in ("delivered", "retry", "dead"):
        assert get("linectl_webhook_deliveries_total", {"outcome": outcome}) == 0
    assert {o.value for o in WebhookOutcome} == {"delivered", "retry", "dead"}
    for reason in ROBOT_ORDER_REFUSALS:
        assert get("linectl_robot_orders_refused_total", {"reason": reason}) == 0
    for kind in ORDER_TYPES:
        for outcome in ORDER_OUTCOMES:
            assert get("linectl_orders_finished_total", {"type": kind, "outcome": outcome}) == 0
        assert get("linectl_order_cycle_seconds_count", {"type": kind}) == 0
        assert get("linectl_order_cycle_seconds_bucket", {"type": kind, "le": "+Inf"}) == 0
    # a counter moves from the series created at the start, the others stay
    metrics.conveyor_safe_state.labels(conveyor, SafeStateReason.JAM).inc()
    assert get("linectl_conveyor_safe_state_total", {"conveyor": conveyor, "reason": "jam"}) == 1
    assert (
        get("linectl_conveyor_safe_state_total", {"conveyor": conveyor, "reason": "comms_lost"})
        == 0
    )


def test_knowing_the_line_again_changes_nothing_and_another_line_is_refused(
    reference_line: LineConfig,
) -> None:
    metrics = Metrics(line=reference_line)
    metrics.conveyor_safe_state.labels(reference_line.conveyor.id, SafeStateReason.JAM).inc()
    metrics.know_line(reference_line)
    get = metrics.registry.get_sample_value
    labels = {"conveyor": reference_line.conveyor.id, "reason": "jam"}
    assert get("linectl_conveyor_safe_state_total", labels) == 1
    other = reference_line.model_copy(
        update={"line": reference_line.line.model_copy(update={"id": "other-line"})}
    )
    with pytest.raises(ValueError, match="other-line"):
        metrics.know_line(other)


def test_a_line_without_cranes_exports_no_asrs_link(reference_line: LineConfig) -> None:
    """A link the line does not have would read as a link down (and raise LinectlAsrsLinkDown)."""
    with_cranes = Metrics(line=reference_line).registry
    assert with_cranes.get_sample_value("linectl_asrs_opcua_connected") == 0
    no_asrs = reference_line.with_overrides(asrs=Asrs())
    assert no_asrs.asrs.aisles == []
    assert Metrics(line=no_asrs).registry.get_sample_value("linectl_asrs_opcua_connected") is None


def test_build_info_process_metrics_and_no_created_series() -> None:
    text = generate_latest(Metrics().registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [build] = families["linectl_build_info"].samples
    assert build.value == 1 and build.labels["version"] == package_version()
    assert set(build.labels) == {"version", "python_version", "os", "arch"}
    [python] = families["python_info"].samples
    assert build.labels["python_version"] == python.labels["version"]
    for name in (
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ):
        assert families[name].samples, name
    assert "_created" not in text

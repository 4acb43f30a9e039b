"""The demo report's AS/RS section, from the crane cycle metrics."""

from __future__ import annotations

from controller.app.demo import _asrs_cycles
from kernel.metrics import Metrics


def test_crane_cycles_per_aisle_and_kind() -> None:
    metrics = Metrics()
    assert _asrs_cycles(metrics.registry) == {}
    for seconds in (30.0, 32.0):
        metrics.asrs_cycle_seconds.labels(aisle="A1", kind="dual").observe(seconds)
    metrics.asrs_cycle_seconds.labels(aisle="A2", kind="single_store").observe(18.5)
    assert _asrs_cycles(metrics.registry) == {
        "A1": {"dual": {"cycles": 2.0, "mean_seconds": 31.0}},
        "A2": {"single_store": {"cycles": 1.0, "mean_seconds": 18.5}},
    }

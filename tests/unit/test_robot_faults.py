"""Robot faults: only the model's shortage report is a stock shortage; a robot that keeps failing
is held out of dispatch for a while and comes back on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controller.robots.faults import PickFailure, RobotFaults, classify
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.robots.script import FailAction, parse_script

CODES = frozenset({"stockShortage", "locationEmpty"})


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stockShortage", PickFailure.SHORTAGE),
        (" locationEmpty ", PickFailure.SHORTAGE),
        ("locationEmpty: no tote at the shelf", PickFailure.SHORTAGE),  # errorType: description
        ("load already picked", PickFailure.FAULT),
        ("pickFailed: stockShortage", PickFailure.FAULT),  # the error type decides, not the text
        ("injected failure", PickFailure.FAULT),
        ("FAILED", PickFailure.FAULT),
        ("", PickFailure.FAULT),
        ("stockshortage", PickFailure.FAULT),  # codes are exact
    ],
)
def test_classify(reason: str, expected: PickFailure) -> None:
    assert classify(reason, CODES) is expected


def failed(serial: str, action_type: str, reason: str) -> dev.RobotActionFailed:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return dev.RobotActionFailed(serial, "job-1", "a-1", action_type, "N1", reason, at)


def test_the_models_shortage_results_decide(reference_line: LineConfig) -> None:
    faults = RobotFaults(reference_line, ManualClock(), Metrics())
    code = reference_line.robot_model("R01").pick.shortage_results[0]
    assert faults.pick_failure(failed("R01", "pick", code)) is PickFailure.SHORTAGE
    assert faults.pick_failure(failed("R01", "pick", "gripper fault")) is PickFailure.FAULT
    assert faults.pick_failure(failed("R01", "drop", code)) is PickFailure.FAULT  # not a pick


async def test_repeated_faults_hold_the_robot_then_it_comes_back(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    metrics = Metrics()
    faults = RobotFaults(reference_line, manual_clock, metrics)
    limit, hold = reference_line.robots.fault_limit, reference_line.robots.fault_hold
    for _ in range(limit - 1):
        faults.fault("R01", "pick", "gripper fault")
    faults.succeeded("R01")  # a finished action ends the run
    for _ in range(limit - 1):
        faults.fault("R01", "pick", "gripper fault")
    assert faults.accepts_trips("R01") and faults.held() == {}
    faults.fault("R01", "drop", "conveyor refused the tote")
    assert not faults.accepts_trips("R01") and faults.accepts_trips("R02")
    assert faults.held() == {"R01": hold}
    assert metrics.registry.get_sample_value("linectl_robots_fault_held") == 1
    sample = metrics.registry.get_sample_value
    assert sample("linectl_robot_faults_total", {"robot": "R01", "kind": "pick"}) == 2 * (limit - 1)
    assert sample("linectl_robot_faults_total", {"robot": "R01", "kind": "drop"}) == 1
    faults.succeeded("R01")  # a stray report while held does not end the hold
    await manual_clock.advance(hold - 1)
    assert not faults.accepts_trips("R01")
    await manual_clock.advance(1)
    faults.expire()
    assert faults.accepts_trips("R01") and faults.held() == {}
    assert metrics.registry.get_sample_value("linectl_robots_fault_held") == 0
    faults.fault("R01", "pick", "gripper fault")  # counting starts again
    assert faults.accepts_trips("R01")


def test_a_fault_script_can_report_a_shortage() -> None:
    [fault] = parse_script(
        "- {at: 5, robot: R01, fault: fail_action, action_type: pick, result: stockShortage}",
        "f.yaml",
        ["R01"],
    )
    assert isinstance(fault, FailAction) and fault.result == "stockShortage"
    [plain] = parse_script(
        "- {at: 5, robot: R01, fault: fail_action, action_type: pick}", "f.yaml", ["R01"]
    )
    assert isinstance(plain, FailAction) and plain.result == "injected failure"


def test_an_overdue_trip_counts_against_the_robot_but_never_holds_it(
    reference_line: LineConfig,
) -> None:
    metrics = Metrics()
    faults = RobotFaults(reference_line, ManualClock(), metrics)
    for _ in range(reference_line.robots.fault_limit * 2):
        faults.overdue("R01", "trip_overdue")
    assert faults.accepts_trips("R01")
    sample = metrics.registry.get_sample_value
    count = sample("linectl_robot_faults_total", {"robot": "R01", "kind": "trip_overdue"})
    assert count == reference_line.robots.fault_limit * 2

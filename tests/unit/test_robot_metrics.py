"""The robot state and battery gauges, from fleet snapshots."""

from __future__ import annotations

import dataclasses

import pytest

from controller.robots.activity import ROBOT_STATES, RobotGauges, robot_activity
from devices.base import RobotSnapshot
from kernel.metrics import Metrics

IDLE = RobotSnapshot(
    serial="R1",
    manufacturer="acme",
    version="2.0.0",
    connection="ONLINE",
    operating_mode="AUTOMATIC",
    last_node_id="N1",
    x=0.0,
    y=0.0,
    driving=False,
    order_id=None,
    battery=80.0,
    errors=(),
    state_age=0.5,
    available=True,
    charging=False,
)


@pytest.mark.parametrize(
    ("changes", "on_trip", "expected"),
    [
        ({}, False, "idle"),
        ({}, True, "working"),
        ({"driving": True}, True, "driving"),
        ({"charging": True}, False, "charging"),
        ({"paused": True, "driving": True}, True, "paused"),
        ({"available": False, "errors": ("e (FATAL): x",)}, True, "fault"),
        ({"connection": "CONNECTIONBROKEN", "available": False}, False, "offline"),
        ({"state_age": None, "available": False}, False, "offline"),
    ],
)
def test_activity_is_the_first_state_that_applies(
    changes: dict[str, object], on_trip: bool, expected: str
) -> None:
    robot = dataclasses.replace(IDLE, **changes)  # type: ignore[arg-type]
    assert robot_activity(robot, on_trip) == expected
    assert expected in ROBOT_STATES


def test_one_state_is_set_per_robot_and_battery_is_a_ratio() -> None:
    m = Metrics()
    driving = dataclasses.replace(IDLE, serial="R2", driving=True, battery=None)
    gauges = RobotGauges(m)
    gauges.publish([IDLE, driving], on_trip={"R2"})
    get = m.registry.get_sample_value
    for serial, current in (("R1", "idle"), ("R2", "driving")):
        values = {
            s: get("linectl_robot_state", {"robot": serial, "state": s}) for s in ROBOT_STATES
        }
        assert values == {s: (1.0 if s == current else 0.0) for s in ROBOT_STATES}
    assert get("linectl_robot_battery_ratio", {"robot": "R1"}) == pytest.approx(0.8)
    # no state message with a battery yet: no battery sample rather than a made-up 0
    assert get("linectl_robot_battery_ratio", {"robot": "R2"}) is None

    # only what changed is set again
    gauges.publish([dataclasses.replace(IDLE, charging=True, battery=35.0)], on_trip=())
    assert get("linectl_robot_state", {"robot": "R1", "state": "charging"}) == 1.0
    assert get("linectl_robot_state", {"robot": "R1", "state": "idle"}) == 0.0
    assert get("linectl_robot_battery_ratio", {"robot": "R1"}) == pytest.approx(0.35)

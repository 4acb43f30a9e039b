"""What each robot is doing, as the ``linectl_robot_state`` and battery gauges show it."""

from __future__ import annotations

from collections.abc import Collection

from devices.base import RobotSnapshot
from kernel.metrics import Metrics

# What a robot is doing, as the linectl_robot_state gauge shows it (first that applies):
# offline (not ONLINE, or no state yet), fault (online but not available: FATAL error, manual
# mode, stale state, factsheet), paused, charging, driving, working (on a trip, standing: picking,
# dropping, waiting for a node), idle. Busy states, for utilisation: driving and working.
ROBOT_STATES = ("offline", "fault", "paused", "charging", "driving", "working", "idle")


def robot_activity(robot: RobotSnapshot, on_trip: bool) -> str:
    """The one of ``ROBOT_STATES`` that ``robot`` is in."""
    if robot.connection != "ONLINE" or robot.state_age is None:
        return "offline"
    if not robot.available:
        return "fault"
    if robot.paused:
        return "paused"
    if robot.charging:
        return "charging"
    if robot.driving:
        return "driving"
    return "working" if on_trip else "idle"


def publish_robots(
    metrics: Metrics, robots: Collection[RobotSnapshot], on_trip: Collection[str]
) -> None:
    """Refresh each robot's state and battery gauges from the fleet snapshot."""
    for robot in robots:
        current = robot_activity(robot, robot.serial in on_trip)
        for state in ROBOT_STATES:
            metrics.robot_state.labels(robot.serial, state).set(1 if state == current else 0)
        if robot.battery is not None:
            metrics.robot_battery.labels(robot.serial).set(robot.battery / 100.0)

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


class RobotGauges:
    """Each robot's state and battery gauges, refreshed from fleet snapshots. Only what changed
    since the last refresh is set: with a thousand robots, setting every label of every robot
    each time held the event loop for tens of milliseconds."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._shown: dict[str, tuple[str, float | None]] = {}  # robot -> (state, battery)

    def publish(self, robots: Collection[RobotSnapshot], on_trip: Collection[str]) -> None:
        for robot in robots:
            current = robot_activity(robot, robot.serial in on_trip)
            shown = self._shown.get(robot.serial)
            if shown is None:
                for state in ROBOT_STATES:
                    self.metrics.robot_state.labels(robot.serial, state).set(
                        1 if state == current else 0
                    )
            elif shown[0] != current:
                self.metrics.robot_state.labels(robot.serial, shown[0]).set(0)
                self.metrics.robot_state.labels(robot.serial, current).set(1)
            if robot.battery is not None and (shown is None or shown[1] != robot.battery):
                self.metrics.robot_battery.labels(robot.serial).set(robot.battery / 100.0)
            self._shown[robot.serial] = (current, robot.battery)

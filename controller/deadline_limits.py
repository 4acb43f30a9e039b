"""The deadline of each stage, from the line file's ``deadlines`` section or derived from the line.

A deadline left out of the line file is derived from what the line is made of, with room for
the ordinary waits of a working line (a busy induction, traffic control, a recirculation):

- ``scan``: two laps of the conveyor loop (its zones' length at belt speed), plus a margin;
- ``sort``: one lap per pass the sorter allows (``sorter.max_passes``) and one more, plus a
  margin;
- ``robot_step`` (a robot standing on one node without finishing a pick): the slowest robot
  driving twice the longest way across the roadmap and doing its longest action, plus the waits
  traffic control and the robot watch allow before they act themselves (``traffic.stall_after``,
  ``traffic.deadlock_after``, ``robots.failure_grace``), plus a margin;
- ``crane_command``: three of the slowest dual-command cycle of any aisle (to its farthest
  locations and back), plus a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.config.model import LineConfig
from routing.crane import Kinematics, dual_cycle
from routing.roadmap import Roadmap

MARGIN = 60.0  # line seconds added to every derived deadline
NO_AISLE = 600.0  # a line without an AS/RS has no crane command to wait for


@dataclass(frozen=True)
class Limits:
    """Line seconds each stage may take (see the module)."""

    scan: float
    sort: float
    robot_step: float
    crane_command: float
    station: float

    def document(self) -> dict[str, float]:
        return {
            "scan": round(self.scan, 1),
            "sort": round(self.sort, 1),
            "robot_step": round(self.robot_step, 1),
            "crane_command": round(self.crane_command, 1),
            "station": round(self.station, 1),
        }


def conveyor_lap(config: LineConfig) -> float:
    """Line seconds a tote takes once round the conveyor loop."""
    conveyor = config.conveyor
    return sum(z.length for z in conveyor.zones) / conveyor.belt_speed


def robot_step(config: LineConfig, roadmap: Roadmap) -> float:
    robots = config.robots
    distances = roadmap.matrix
    finite = distances[np.isfinite(distances)]
    across = float(finite.max()) if finite.size else 0.0
    slowest = min(m.speed for m in robots.models.values())
    action = max(max(m.pick.duration, m.drop.duration) for m in robots.models.values())
    waits = robots.traffic.stall_after + robots.traffic.deadlock_after + robots.failure_grace
    return 2.0 * across / slowest + action + waits + MARGIN


def crane_command(config: LineConfig) -> float:
    cycles = []
    for aisle in config.asrs.aisles:
        c = aisle.crane
        k = Kinematics(c.speed_x, c.speed_y, c.accel_x, c.accel_y, c.pd_time)
        far = (aisle.bays * aisle.bay_width, aisle.levels * aisle.level_height)
        cycles.append(dual_cycle(k, far, far))
    return 3.0 * max(cycles) + MARGIN if cycles else NO_AISLE


def limits(config: LineConfig, roadmap: Roadmap) -> Limits:
    """The deadlines in force on ``config``'s line."""
    given = config.deadlines
    lap = conveyor_lap(config)
    return Limits(
        scan=given.scan if given.scan is not None else 2.0 * lap + MARGIN,
        sort=given.sort
        if given.sort is not None
        else (config.conveyor.sorter.max_passes + 1) * lap + MARGIN,
        robot_step=given.robot_step
        if given.robot_step is not None
        else robot_step(config, roadmap),
        crane_command=given.crane_command
        if given.crane_command is not None
        else crane_command(config),
        station=given.station,
    )

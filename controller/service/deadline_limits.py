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

With a clock faster than the wall clock (``clock.time_scale``), every deadline is at least
:data:`WALL_FLOOR` wall seconds long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernel.config.model import LineConfig
from routing.crane import Kinematics, dual_cycle
from routing.roadmap import Roadmap

MARGIN = 60.0  # line seconds added to every derived deadline
# no deadline is shorter than this in wall seconds: with a clock faster than the wall (the demo,
# tests) a controller or simulator starved of CPU for a few seconds is not a lost tote
WALL_FLOOR = 30.0
NO_AISLE = 600.0  # a line without an AS/RS has no crane command to wait for


@dataclass(frozen=True)
class Limits:
    """Line seconds each stage may take (see the module)."""

    scan: float
    sort: float
    robot_step: float
    crane_command: float
    station: float

    def at_least(self, seconds: float) -> Limits:
        """Every deadline at least ``seconds`` long."""
        return Limits(
            scan=max(self.scan, seconds),
            sort=max(self.sort, seconds),
            robot_step=max(self.robot_step, seconds),
            crane_command=max(self.crane_command, seconds),
            station=max(self.station, seconds),
        )

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


def limits(config: LineConfig, roadmap: Roadmap, time_scale: float = 1.0) -> Limits:
    """The deadlines in force on ``config``'s line, on a clock running ``time_scale`` line
    seconds per wall second."""
    given = config.deadlines
    lap = conveyor_lap(config)
    floor = WALL_FLOOR * time_scale
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
    ).at_least(floor)

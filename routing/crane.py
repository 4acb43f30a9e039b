"""Stacker crane kinematics: travel times and positions with trapezoidal speed profiles. Pure.

Both axes (x along the aisle, y the hoist) start together and move independently, each with its
own top speed and acceleration (0 means the top speed is reached at once); a move ends when the
slower axis arrives. The crane simulator moves by these functions and the sizing tool
(``linectl asrs estimate``) samples them, so the two can never disagree.

Cycles start and end at the P&D point (0, 0):
- single command: pick up at the P&D point, travel out, deposit (a store; a retrieve is the
  mirror image with the same time), travel back: ``2 * pd_time + 2 * travel``;
- dual command: pick up the store load, travel to its location, deposit, travel to the retrieve
  location, pick up, travel back, deposit at the P&D point: ``4 * pd_time + three travels``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Point = tuple[float, float]
PD_POINT: Point = (0.0, 0.0)


@dataclass(frozen=True)
class Kinematics:
    speed_x: float  # m/s
    speed_y: float
    accel_x: float = 0.0  # m/s², 0: no acceleration phase
    accel_y: float = 0.0
    pd_time: float = 0.0  # s per pick-up or deposit

    def __post_init__(self) -> None:
        if not (self.speed_x > 0 and self.speed_y > 0):
            raise ValueError("crane speeds must be positive")
        if self.accel_x < 0 or self.accel_y < 0 or self.pd_time < 0:
            raise ValueError("accelerations and pd_time must not be negative")


def axis_time(distance: float, speed: float, accel: float) -> float:
    """Time to move ``distance`` from standstill to standstill on one axis."""
    d = abs(distance)
    if d == 0.0:
        return 0.0
    if accel <= 0.0:
        return d / speed
    if d >= speed * speed / accel:  # reaches top speed: accelerate, cruise, brake
        return d / speed + speed / accel
    return 2.0 * math.sqrt(d / accel)  # triangular profile


def axis_offset(distance: float, speed: float, accel: float, t: float) -> float:
    """How far along a move of ``distance`` (signed) the axis is ``t`` seconds after it began."""
    total = axis_time(distance, speed, accel)
    sign = 1.0 if distance >= 0 else -1.0
    d = abs(distance)
    if t <= 0.0 or d == 0.0:
        return 0.0
    if t >= total:
        return distance
    if accel <= 0.0:
        return sign * speed * t
    peak = min(speed, math.sqrt(d * accel))  # top speed of this move
    ramp = peak / accel  # time to reach it (and to brake from it)
    if t <= ramp:
        covered = 0.5 * accel * t * t
    elif t <= total - ramp:
        covered = 0.5 * accel * ramp * ramp + peak * (t - ramp)
    else:
        left = total - t
        covered = d - 0.5 * accel * left * left
    return sign * covered


def travel_time(k: Kinematics, a: Point, b: Point) -> float:
    """Time from ``a`` to ``b``: both axes at once, the slower one decides."""
    return max(
        axis_time(b[0] - a[0], k.speed_x, k.accel_x),
        axis_time(b[1] - a[1], k.speed_y, k.accel_y),
    )


def position_at(k: Kinematics, a: Point, b: Point, t: float) -> Point:
    """Where the crane is ``t`` seconds into a move from ``a`` to ``b``."""
    return (
        a[0] + axis_offset(b[0] - a[0], k.speed_x, k.accel_x, t),
        a[1] + axis_offset(b[1] - a[1], k.speed_y, k.accel_y, t),
    )


def single_cycle(k: Kinematics, location: Point) -> float:
    """A store or a retrieve on its own, from and back to the P&D point."""
    return 2.0 * k.pd_time + 2.0 * travel_time(k, PD_POINT, location)


def dual_cycle(k: Kinematics, store_at: Point, retrieve_from: Point) -> float:
    """A store and a retrieve in one cycle."""
    return (
        4.0 * k.pd_time
        + travel_time(k, PD_POINT, store_at)
        + travel_time(k, store_at, retrieve_from)
        + travel_time(k, retrieve_from, PD_POINT)
    )

"""Expected AS/RS crane cycle times: the Bozer-White model and the rack grid. Pure.

Three estimates of the mean single- and dual-command cycle under random storage (every location
equally likely, the store and retrieve of a dual cycle independent of each other):

- ``bozer_white``: Bozer & White (1984), a continuous rack face of length L and height H with the
  P&D point at its lower-left corner and constant crane speeds (no acceleration). With
  T = max(L/vx, H/vy) and the shape factor b = min(L/vx, H/vy) / T:
  E[SC] = T (1 + b²/3) + 2 pd and E[DC] = (T/30)(40 + 15b² - b³) + 4 pd.
- ``grid_expectation``: the exact mean over the rack's discrete locations (``routing.rack``)
  with the crane's own kinematics (``routing.crane``, accelerations included). The grid's
  locations sit at cell centres, so without acceleration it approaches the continuous model as
  the grid gets finer.
- ``monte_carlo``: seeded samples of locations, each cycle timed by ``routing.crane``, with a
  95% confidence interval of the mean.

A dual cycle moves two loads (one in, one out): loads per hour are twice its cycles per hour.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from routing.crane import Kinematics, axis_time, dual_cycle, single_cycle
from routing.rack import Rack

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class Cycles:
    """Mean cycle times (s) and what they give per hour."""

    single: float
    dual: float

    @property
    def single_per_hour(self) -> float:
        return 3600.0 / self.single if self.single > 0 else math.inf

    @property
    def dual_per_hour(self) -> float:
        return 3600.0 / self.dual if self.dual > 0 else math.inf

    @property
    def dual_loads_per_hour(self) -> float:
        """A dual cycle stores one load and retrieves another."""
        return 2.0 * self.dual_per_hour


@dataclass(frozen=True)
class BozerWhite:
    t_scale: float  # T (s): time to the farthest corner along the slower axis
    shape: float  # b in (0, 1]: 1 for a square-in-time rack
    cycles: Cycles


def bozer_white(
    length: float, height: float, speed_x: float, speed_y: float, pd_time: float = 0.0
) -> BozerWhite:
    """Bozer & White's expected cycle times for a continuous rack; raises ValueError on
    a non-positive size or speed or a negative ``pd_time``."""
    for name, value in (("length", length), ("height", height)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number of metres, not {value!r}")
    for name, value in (("speed_x", speed_x), ("speed_y", speed_y)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive speed (m/s), not {value!r}")
    if not (pd_time >= 0 and math.isfinite(pd_time)):
        raise ValueError(f"pd_time must not be negative, not {pd_time!r}")
    tx, ty = length / speed_x, height / speed_y
    t = max(tx, ty)
    b = min(tx, ty) / t
    sc = t * (1.0 + b * b / 3.0) + 2.0 * pd_time
    dc = (t / 30.0) * (40.0 + 15.0 * b * b - b**3) + 4.0 * pd_time
    return BozerWhite(t, b, Cycles(sc, dc))


def bozer_white_for(rack: Rack, k: Kinematics) -> BozerWhite:
    """The continuous model of ``rack``'s face (its length and height) at ``k``'s top speeds;
    accelerations are not part of the model."""
    return bozer_white(rack.length, rack.height, k.speed_x, k.speed_y, k.pd_time)


def _axis_times(distances: NDArray[np.float64], speed: float, accel: float) -> NDArray[np.float64]:
    return np.array([axis_time(float(d), speed, accel) for d in distances], dtype=np.float64)


def _difference_weights(n: int) -> NDArray[np.float64]:
    """P(|i - j| = d) for i, j independent and uniform on 1..n, d = 0..n-1."""
    d = np.arange(n, dtype=np.float64)
    w = 2.0 * (n - d) / (n * n)
    w[0] = 1.0 / n
    return w


def grid_expectation(rack: Rack, k: Kinematics) -> Cycles:
    """Exact mean single- and dual-command cycle over the rack's locations, store and retrieve
    uniform and independent, each move timed as ``routing.crane.travel_time`` times it.

    Both sides of the aisle share positions, and bays and levels are independent under uniform
    storage, so the means reduce to sums over bays x levels (to and from the P&D point) and
    over bay distance x level distance (between the two locations of a dual cycle).
    """
    bays = np.arange(1, rack.bays + 1, dtype=np.float64)
    levels = np.arange(1, rack.levels + 1, dtype=np.float64)
    # out from the P&D point: each axis at once, the slower one decides
    out_x = _axis_times((bays - 0.5) * rack.bay_width, k.speed_x, k.accel_x)
    out_y = _axis_times((levels - 0.5) * rack.level_height, k.speed_y, k.accel_y)
    to_location = float(np.maximum.outer(out_x, out_y).mean())
    # between two locations: by the bay and level distances, weighted by how often they occur
    between_x = _axis_times(
        np.arange(rack.bays, dtype=np.float64) * rack.bay_width, k.speed_x, k.accel_x
    )
    between_y = _axis_times(
        np.arange(rack.levels, dtype=np.float64) * rack.level_height, k.speed_y, k.accel_y
    )
    weights = np.outer(_difference_weights(rack.bays), _difference_weights(rack.levels))
    between = float((np.maximum.outer(between_x, between_y) * weights).sum())
    single = 2.0 * k.pd_time + 2.0 * to_location
    dual = 4.0 * k.pd_time + 2.0 * to_location + between
    return Cycles(single, dual)


@dataclass(frozen=True)
class Sampled:
    """A sample mean with the half width of its 95% confidence interval."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def _sampled(values: list[float]) -> Sampled:
    a = np.asarray(values, dtype=np.float64)
    n = len(a)
    sd = float(a.std(ddof=1)) if n > 1 else 0.0
    return Sampled(float(a.mean()), Z95 * sd / math.sqrt(n), n)


@dataclass(frozen=True)
class MonteCarlo:
    single: Sampled
    dual: Sampled
    seed: int

    @property
    def cycles(self) -> Cycles:
        return Cycles(self.single.mean, self.dual.mean)


def monte_carlo(rack: Rack, k: Kinematics, samples: int, seed: int) -> MonteCarlo:
    """``samples`` single and ``samples`` dual cycles over locations drawn uniformly from the
    rack (``Rack.locations``), each timed by ``routing.crane``; the same seed gives the same
    result."""
    if samples < 2:
        raise ValueError(f"samples must be at least 2, not {samples}")
    rng = random.Random(seed)
    positions = [rack.position(loc) for loc in rack.locations()]
    n = len(positions)
    singles = [single_cycle(k, positions[rng.randrange(n)]) for _ in range(samples)]
    duals = [
        dual_cycle(k, positions[rng.randrange(n)], positions[rng.randrange(n)])
        for _ in range(samples)
    ]
    return MonteCarlo(_sampled(singles), _sampled(duals), seed)


def rack_of_size(
    length: float,
    height: float,
    bays: int | None = None,
    levels: int | None = None,
    *,
    bay_width: float = 0.7,
    level_height: float = 0.5,
    sides: int = 2,
    aisle: str = "A1",
) -> Rack:
    """A rack whose face is exactly ``length`` x ``height``: ``bays`` and ``levels`` as given, or
    as many cells of about ``bay_width`` x ``level_height`` as fit (at least one); the cells are
    then stretched to fill the face. Raises ValueError on a non-positive size or count."""
    for name, value in (("length", length), ("height", height)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number of metres, not {value!r}")
    if bays is None:
        bays = max(1, round(length / bay_width))
    if levels is None:
        levels = max(1, round(height / level_height))
    if bays < 1 or levels < 1:
        raise ValueError(f"bays and levels must be at least 1, not {bays} and {levels}")
    return Rack(aisle, bays, levels, sides, length / bays, height / levels)

"""Expected crane cycle times: Bozer-White against the rack grid and Monte Carlo sampling."""

from __future__ import annotations

import itertools
import statistics

import pytest

from routing.asrs_model import (
    bozer_white,
    bozer_white_for,
    grid_expectation,
    monte_carlo,
    rack_of_size,
)
from routing.crane import Kinematics, dual_cycle, single_cycle
from routing.rack import Rack

# bays, levels, bay width, level height, speed x, speed y: shape factor b from 0.25 to 1,
# the aisle the slower axis in some and the hoist in others
SHAPES = [
    pytest.param(40, 10, 0.7, 0.5, 4.0, 1.0, id="reference-b0.71"),
    pytest.param(40, 10, 0.7, 0.5, 1.4, 1.0, id="long-b0.25"),
    pytest.param(60, 8, 0.7, 0.5, 4.0, 1.0, id="low-b0.38"),
    pytest.param(100, 20, 0.5, 0.5, 4.0, 1.0, id="big-b0.80"),
    pytest.param(20, 30, 0.7, 0.5, 3.0, 1.0, id="tall-b0.31"),
    pytest.param(30, 12, 0.7, 0.5, 2.0, 0.5, id="slow-b0.88"),
    pytest.param(16, 16, 1.0, 1.0, 1.0, 1.0, id="square-b1"),
]


def test_bozer_white_closed_forms() -> None:
    # square in time (b = 1): E[SC] = 4T/3, E[DC] = 54T/30
    sq = bozer_white(30.0, 7.5, 3.0, 0.75)
    assert sq.t_scale == pytest.approx(10.0) and sq.shape == pytest.approx(1.0)
    assert sq.cycles.single == pytest.approx(40.0 / 3.0)
    assert sq.cycles.dual == pytest.approx(18.0)
    # the P&D time counts twice in a single cycle and four times in a dual one
    with_pd = bozer_white(30.0, 7.5, 3.0, 0.75, pd_time=5.0)
    assert with_pd.cycles.single == pytest.approx(40.0 / 3.0 + 10.0)
    assert with_pd.cycles.dual == pytest.approx(38.0)
    # b is symmetric in the axes
    a, b = bozer_white(28.0, 5.0, 4.0, 1.0), bozer_white(5.0, 28.0, 1.0, 4.0)
    assert a.shape == pytest.approx(5.0 / 7.0) and a.cycles == b.cycles


def test_per_hour() -> None:
    c = bozer_white(30.0, 7.5, 3.0, 0.75, pd_time=4.5).cycles  # a dual cycle of 36 s
    assert c.single_per_hour == pytest.approx(3600.0 / c.single)
    assert c.dual_per_hour == pytest.approx(100.0)
    assert c.dual_loads_per_hour == pytest.approx(200.0)


@pytest.mark.parametrize(
    "args",
    [(0.0, 5.0, 4.0, 1.0), (28.0, -1.0, 4.0, 1.0), (28.0, 5.0, 0.0, 1.0), (28.0, 5.0, 4.0, -2.0)],
)
def test_bozer_white_refuses_bad_input(args: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError, match="must be a positive"):
        bozer_white(*args)
    with pytest.raises(ValueError, match="pd_time"):
        bozer_white(28.0, 5.0, 4.0, 1.0, pd_time=-1.0)


@pytest.mark.parametrize(("bays", "levels", "w", "h", "vx", "vy"), SHAPES)
def test_grid_matches_bozer_white_without_acceleration(
    bays: int, levels: int, w: float, h: float, vx: float, vy: float
) -> None:
    rack = Rack("A1", bays, levels, 2, w, h)
    k = Kinematics(vx, vy)  # no P&D time: the travel alone is compared
    model = bozer_white_for(rack, k).cycles
    grid = grid_expectation(rack, k)
    assert grid.single == pytest.approx(model.single, rel=0.02)
    assert grid.dual == pytest.approx(model.dual, rel=0.02)


@pytest.mark.parametrize(("bays", "levels", "w", "h", "vx", "vy"), SHAPES[:4])
def test_monte_carlo_matches_bozer_white_without_acceleration(
    bays: int, levels: int, w: float, h: float, vx: float, vy: float
) -> None:
    rack = Rack("A1", bays, levels, 2, w, h)
    k = Kinematics(vx, vy, pd_time=5.0)
    model = bozer_white_for(rack, k).cycles
    mc = monte_carlo(rack, k, samples=20_000, seed=11)
    assert mc.single.mean == pytest.approx(model.single, rel=0.02)
    assert mc.dual.mean == pytest.approx(model.dual, rel=0.02)
    # and it is consistent with the exact grid mean: within four half widths of its interval
    grid = grid_expectation(rack, k)
    assert abs(mc.single.mean - grid.single) < 4 * mc.single.half_width
    assert abs(mc.dual.mean - grid.dual) < 4 * mc.dual.half_width


@pytest.mark.parametrize(
    "k",
    [
        Kinematics(2.0, 0.8, pd_time=3.0),
        Kinematics(2.0, 0.8, accel_x=0.5, accel_y=0.3, pd_time=3.0),
        Kinematics(0.5, 2.0, accel_x=5.0, accel_y=0.2),
    ],
    ids=["constant", "accelerating", "hoist-bound"],
)
def test_grid_expectation_is_the_mean_over_every_location_and_pair(k: Kinematics) -> None:
    rack = Rack("A1", 7, 4, 2, 0.9, 0.6)
    points = [rack.position(loc) for loc in rack.locations()]
    single = statistics.fmean(single_cycle(k, p) for p in points)
    dual = statistics.fmean(dual_cycle(k, s, r) for s, r in itertools.product(points, points))
    grid = grid_expectation(rack, k)
    assert grid.single == pytest.approx(single, rel=1e-12)
    assert grid.dual == pytest.approx(dual, rel=1e-12)


def test_acceleration_lengthens_the_cycles_beyond_the_model() -> None:
    rack = Rack("A1", 40, 10)
    flat = grid_expectation(rack, Kinematics(4.0, 1.0, pd_time=5.0))
    ramp = grid_expectation(rack, Kinematics(4.0, 1.0, 0.5, 0.5, pd_time=5.0))
    assert ramp.single > flat.single and ramp.dual > flat.dual
    mc = monte_carlo(rack, Kinematics(4.0, 1.0, 0.5, 0.5, pd_time=5.0), 5_000, seed=3)
    assert mc.single.low < ramp.single + 3 * mc.single.half_width
    assert mc.single.mean == pytest.approx(ramp.single, rel=0.02)


def test_monte_carlo_is_seeded() -> None:
    rack, k = Rack("A1", 12, 6), Kinematics(3.0, 1.0, 0.6, 0.4, pd_time=4.0)
    assert monte_carlo(rack, k, 500, seed=5) == monte_carlo(rack, k, 500, seed=5)
    assert monte_carlo(rack, k, 500, seed=5) != monte_carlo(rack, k, 500, seed=6)
    with pytest.raises(ValueError, match="samples"):
        monte_carlo(rack, k, 1, seed=5)


def test_rack_of_size() -> None:
    r = rack_of_size(28.0, 5.0)
    assert (r.bays, r.levels) == (40, 10) and r.length == pytest.approx(28.0)
    r = rack_of_size(10.0, 3.0, bays=8, levels=4)
    assert (r.bay_width, r.level_height) == (1.25, 0.75)
    assert rack_of_size(0.2, 0.1).bays == 1
    with pytest.raises(ValueError, match="length"):
        rack_of_size(0.0, 3.0)
    with pytest.raises(ValueError, match="at least 1"):
        rack_of_size(10.0, 3.0, bays=0)

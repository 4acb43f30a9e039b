"""Crane kinematics: trapezoidal and triangular profiles, both axes at once."""

from __future__ import annotations

import itertools

import pytest

from routing.crane import (
    PD_POINT,
    Kinematics,
    axis_offset,
    axis_time,
    dual_cycle,
    position_at,
    single_cycle,
    travel_time,
)


def test_without_acceleration_time_is_distance_over_speed() -> None:
    assert axis_time(10.0, 4.0, 0.0) == pytest.approx(2.5)
    assert axis_time(-10.0, 4.0, 0.0) == pytest.approx(2.5)
    assert axis_time(0.0, 4.0, 1.0) == 0.0


def test_trapezoid_and_triangle() -> None:
    # 4 m/s at 1 m/s²: 16 m to reach top speed and brake again
    assert axis_time(20.0, 4.0, 1.0) == pytest.approx(20.0 / 4.0 + 4.0)
    assert axis_time(16.0, 4.0, 1.0) == pytest.approx(8.0)  # just reaches top speed
    assert axis_time(4.0, 4.0, 1.0) == pytest.approx(4.0)  # triangle: 2 * sqrt(4 / 1)


@pytest.mark.parametrize(("distance", "accel"), [(20.0, 1.0), (4.0, 1.0), (-7.5, 0.5), (9.0, 0.0)])
def test_offsets_follow_the_profile(distance: float, accel: float) -> None:
    total = axis_time(distance, 4.0, accel)
    assert axis_offset(distance, 4.0, accel, 0.0) == 0.0
    assert axis_offset(distance, 4.0, accel, total) == pytest.approx(distance)
    assert axis_offset(distance, 4.0, accel, total / 2) == pytest.approx(distance / 2)
    samples = [abs(axis_offset(distance, 4.0, accel, total * i / 50)) for i in range(51)]
    assert samples == sorted(samples)  # never moves backwards
    speeds = [b - a for a, b in itertools.pairwise(samples)]
    assert max(speeds) <= 4.0 * total / 50 + 1e-9  # never above top speed


def test_the_slower_axis_decides() -> None:
    k = Kinematics(speed_x=4.0, speed_y=1.0)
    assert travel_time(k, PD_POINT, (8.0, 1.0)) == pytest.approx(2.0)  # x: 2 s, y: 1 s
    assert travel_time(k, PD_POINT, (2.0, 3.0)) == pytest.approx(3.0)  # y decides
    assert position_at(k, PD_POINT, (8.0, 1.0), 1.0) == pytest.approx((4.0, 1.0))


def test_cycles_add_handling_and_travel() -> None:
    k = Kinematics(speed_x=4.0, speed_y=1.0, pd_time=5.0)
    assert single_cycle(k, (8.0, 1.0)) == pytest.approx(10.0 + 4.0)
    # out to (8, 1): 2 s; across to (4, 3): max(1, 2) = 2 s; back: max(1, 3) = 3 s
    assert dual_cycle(k, (8.0, 1.0), (4.0, 3.0)) == pytest.approx(20.0 + 7.0)


def test_bad_kinematics_are_refused() -> None:
    with pytest.raises(ValueError, match="speeds"):
        Kinematics(speed_x=0.0, speed_y=1.0)
    with pytest.raises(ValueError, match="negative"):
        Kinematics(speed_x=1.0, speed_y=1.0, accel_x=-1.0)

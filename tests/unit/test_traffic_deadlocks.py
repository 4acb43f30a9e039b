"""Robots stuck on each other give way group by group (``controller.robots.traffic.deadlocks``).

The traffic state and the deadlock handling are the real ones on the reference map; the waits are
set as the planner would report them, the fleet is the recording fake of ``test_traffic_fleet``,
and the give-ways are recorded instead of cancelling trips.
"""

from __future__ import annotations

import pytest

from controller.robots.traffic.deadlocks import Deadlocks
from controller.robots.traffic.state import Job, TrafficFleetState, WaitInfo
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import traffic
from tests.unit.test_traffic_fleet import FakeFleet

DEADLOCK_AFTER = 30.0  # the reference line's traffic.deadlock_after


# two robots head-on in aisle G1x and two in aisle G4x, each pair waiting on the other
PLACES = {"A1": "G11", "A2": "G12", "B1": "G41", "B2": "G42"}


@pytest.fixture
def stuck(
    reference_line: LineConfig, manual_clock: ManualClock
) -> tuple[TrafficFleetState, Deadlocks, list[str]]:
    fleet = FakeFleet(dict(PLACES))  # every robot available
    shared = TrafficFleetState.for_line(reference_line, manual_clock, Metrics(), fleet)
    for serial, node in PLACES.items():
        placed = traffic.place(shared.planner, serial, node)
        assert isinstance(placed, traffic.TrafficState)
        shared.planner = placed
        shared.jobs[serial] = Job(f"job-{serial}", [], 1, ())
    gave_way: list[str] = []

    async def on_deadlock(serial: str, why: str) -> None:
        gave_way.append(serial)

    return shared, Deadlocks(shared, on_deadlock), gave_way


def wait_in_cycles(shared: TrafficFleetState, since: float) -> None:
    pairs = [("A1", "A2"), ("A2", "A1"), ("B1", "B2"), ("B2", "B1")]
    shared.waits = {a: WaitInfo(PLACES[b], b, PLACES[a], since) for a, b in pairs}


async def test_robots_stuck_in_separate_places_give_way_at_once(
    stuck: tuple[TrafficFleetState, Deadlocks, list[str]], manual_clock: ManualClock
) -> None:
    shared, deadlocks, gave_way = stuck
    wait_in_cycles(shared, manual_clock.now())
    await manual_clock.advance(DEADLOCK_AFTER - 1)
    await deadlocks.end_deadlock()
    assert gave_way == []  # not stuck long enough yet
    await manual_clock.advance(1)
    await deadlocks.end_deadlock()
    # one robot of each jam, not one jam after the other deadlock_after apart
    assert sorted(gave_way) == ["A2", "B2"]


async def test_a_jam_whose_robots_gave_way_lately_is_left_to_that_give_way(
    stuck: tuple[TrafficFleetState, Deadlocks, list[str]], manual_clock: ManualClock
) -> None:
    shared, deadlocks, gave_way = stuck
    wait_in_cycles(shared, manual_clock.now())
    await manual_clock.advance(DEADLOCK_AFTER)
    await deadlocks.end_deadlock()
    assert sorted(gave_way) == ["A2", "B2"]
    # half a deadlock_after later A2's trip has ended, B2's has not: both jams are left alone
    await manual_clock.advance(DEADLOCK_AFTER / 2)
    deadlocks.trip_ended("A2")
    await deadlocks.end_deadlock()
    assert sorted(gave_way) == ["A2", "B2"]
    # deadlock_after after the give-ways the A jam is judged again: A2 gave way lately, so A1
    # yields now; B2's give-way is still under way, so the B jam is still left to it
    await manual_clock.advance(DEADLOCK_AFTER / 2)
    await deadlocks.end_deadlock()
    assert sorted(gave_way) == ["A1", "A2", "B2"]

"""Collision detection over robot places: same node, head-on on an edge, and what is not a
collision."""

from __future__ import annotations

from devices.vda5050.messages import ErrorEntry
from kernel.clock import ManualClock
from simulators.robots.collisions import CollisionMonitor, Place, conflict


def test_conflicts() -> None:
    assert conflict(Place.node("A"), Place.node("A")) == Place.node("A")
    assert conflict(Place.node("A"), Place.node("B")) is None
    assert conflict(Place.edge("A", "B"), Place.edge("B", "A")) == Place.edge("A", "B")
    assert conflict(Place.edge("A", "B"), Place.edge("A", "B")) is None  # following
    assert conflict(Place.edge("A", "B"), Place.node("B")) is None  # not there yet


async def test_an_incident_is_recorded_once_and_reported_to_both_robots(
    manual_clock: ManualClock,
) -> None:
    reported: dict[str, list[ErrorEntry]] = {}
    monitor = CollisionMonitor(
        manual_clock, lambda s: reported.__setitem__(s, monitor.warnings(s)), linger=5
    )
    monitor.move("R1", Place.node("A"))
    monitor.move("R2", Place.node("B"))
    assert monitor.incidents == [] and reported == {}
    monitor.move("R2", Place.edge("B", "A"))
    monitor.move("R2", Place.node("A"))
    monitor.move("R2", Place.node("A"))  # no move: nothing new
    assert [(c.serials, c.place) for c in monitor.incidents] == [(("R1", "R2"), Place.node("A"))]
    assert [e.description for e in reported["R1"]] == ["collision with R2 on node A"]
    assert [(e.error_type, e.level) for e in reported["R2"]] == [("collision", "WARNING")]
    # they part: the warnings linger a little, the incident stays on record
    monitor.move("R2", Place.edge("A", "B"))
    assert monitor.active() == [] and len(monitor.incidents) == 1
    assert len(reported["R1"]) == 1
    await manual_clock.advance(5)
    assert monitor.warnings("R1") == monitor.warnings("R2") == []
    # meeting again is a new incident
    monitor.move("R2", Place.node("A"))
    assert len(monitor.incidents) == 2


def test_head_on_and_three_robots(manual_clock: ManualClock) -> None:
    monitor = CollisionMonitor(manual_clock)
    monitor.move("R1", Place.edge("A", "B"))
    monitor.move("R2", Place.edge("B", "A"))
    monitor.move("R3", Place.edge("B", "A"))  # following R2, head-on with R1
    assert sorted(c.serials for c in monitor.active()) == [("R1", "R2"), ("R1", "R3")]
    warnings = monitor.warnings("R1")
    assert {dict(w.references)["serialNumber"] for w in warnings} == {"R2", "R3"}
    for w in warnings:
        refs = dict(w.references)
        assert {refs["startNodeId"], refs["endNodeId"]} == {"A", "B"}

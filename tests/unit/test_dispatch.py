from datetime import UTC, datetime, timedelta

import pytest

from controller.line import topology
from kernel.config.model import LineConfig
from routing.dispatch import (
    LineDemand,
    PendingOrder,
    Shortage,
    allocate,
    nearest,
    order_stops,
    release_order,
)
from routing.roadmap import Edge, Node, NoRoute, Roadmap

T0 = datetime(2026, 1, 1, 8, tzinfo=UTC)


def line_map() -> Roadmap:
    # A - B - C in a row, 1 m apart; D isolated
    return Roadmap(
        nodes=(
            Node("A", 0, 0, "m"),
            Node("B", 1, 0, "m"),
            Node("C", 2, 0, "m"),
            Node("D", 9, 9, "m"),
        ),
        edges=(Edge("A", "B"), Edge("B", "C")),
    )


def test_route_and_distance() -> None:
    rm = line_map()
    assert rm.route("A", "C") == ["A", "B", "C"]
    assert rm.route("C", "A") == ["C", "B", "A"]
    assert rm.distance("A", "C") == pytest.approx(2.0)
    assert rm.route("B", "B") == ["B"]
    with pytest.raises(NoRoute):
        rm.route("A", "D")


def test_one_way_edge() -> None:
    rm = Roadmap(nodes=(Node("A", 0, 0, "m"), Node("B", 1, 0, "m")), edges=(Edge("A", "B", False),))
    assert rm.route("A", "B") == ["A", "B"]
    with pytest.raises(NoRoute):
        rm.route("B", "A")


def test_tour_visits_stops_in_order() -> None:
    assert line_map().tour("A", ["C", "B"]) == ["A", "B", "C", "B"]


def test_release_earliest_due_then_priority_then_arrival() -> None:
    orders = [
        PendingOrder("late", T0 + timedelta(hours=2), 9, 1),
        PendingOrder("early-low", T0 + timedelta(hours=1), 1, 2),
        PendingOrder("early-high", T0 + timedelta(hours=1), 8, 3),
        PendingOrder("window-later", T0, 5, 4, deliver_from=T0 + timedelta(hours=1)),
    ]
    released = [p.order_id for p in release_order(orders, T0)]
    assert released == ["early-high", "early-low", "late"]


def test_allocate_splits_across_locations_and_reports_shortage() -> None:
    stock = {"S1": {"L1": 3, "L2": 5}}
    nodes = {"L1": "A", "L2": "B"}
    picks = allocate([LineDemand("1", "S1", 7)], stock, nodes)
    assert not isinstance(picks, Shortage)
    assert [(p.location, p.quantity) for p in picks] == [("L2", 5), ("L1", 2)]
    assert allocate([LineDemand("1", "S1", 9)], stock, nodes) == Shortage("S1", 1)
    # two lines of the same SKU share what is there
    assert allocate([LineDemand("1", "S1", 5), LineDemand("2", "S1", 4)], stock, nodes) == Shortage(
        "S1", 1
    )


def test_stop_order_and_nearest() -> None:
    rm = line_map()
    assert order_stops(rm, "A", ["C", "B", "C"]) == ["B", "C"]
    assert nearest(rm, "A", ["C", "B"]) == "B"


def test_reference_line_is_connected(reference_line: LineConfig) -> None:
    rm = topology.roadmap(reference_line)
    for loc in reference_line.robots.storage_locations:
        for ind in reference_line.robots.inductions:
            assert rm.distance(loc.node, ind.node) < float("inf")
    for r in reference_line.robots.fleet:
        assert rm.distance(r.home, reference_line.robots.inductions[0].node) < float("inf")

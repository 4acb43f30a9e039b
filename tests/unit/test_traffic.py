"""Rules of the traffic planner (routing/traffic.py), one by one, on the reference map."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from controller.line import topology
from kernel.config.model import LineConfig
from routing import traffic as t
from routing.roadmap import Edge, Node, Roadmap
from routing.traffic_graph import route_length, shortest_tree

PARKING = ("P1", "P2", "P3", "P4", "P5", "P6")
POLICY = t.TrafficPolicy(parking=PARKING)


@pytest.fixture
def roadmap(reference_line: LineConfig) -> Roadmap:
    return topology.roadmap(reference_line)


def fleet(roadmap: Roadmap, *robots: tuple[str, str, str]) -> t.TrafficState:
    """Robots as (serial, start, goal); a robot whose goal is its start is idle."""
    state = t.TrafficState()
    for serial, start, _ in robots:
        placed = t.place(state, serial, start)
        assert isinstance(placed, t.TrafficState)
        state = placed
    for serial, start, goal in robots:
        if goal != start:
            state = t.start_trip(state, serial, roadmap.route(start, goal))
    return state


def small_map(xy: Mapping[str, tuple[float, float]], pairs: list[tuple[str, str]]) -> Roadmap:
    """A roadmap of its own: nodes at ``xy``, two-way edges between ``pairs``."""
    return Roadmap(
        tuple(Node(n, x, y, "m") for n, (x, y) in xy.items()),
        tuple(Edge(a, b) for a, b in pairs),
    )


def step(roadmap: Roadmap, state: t.TrafficState) -> tuple[t.TrafficPlan, t.TrafficState]:
    """Plan, then move every robot one node along its base."""
    plan = t.plan(roadmap, state, POLICY)
    assert t.violations(plan.state) == ()
    moves = {r.serial: r.route[1] for r in plan.state.robots if r.released > 1}
    return plan, t.advance(plan.state, moves)


def run(roadmap: Roadmap, state: t.TrafficState, steps: int = 80) -> t.TrafficState:
    for _ in range(steps):
        _, state = step(roadmap, state)
        if all(r.idle for r in state.robots):
            return state
    raise AssertionError(f"not done after {steps} steps: {state.positions()}")


# --- routes around blocked nodes -------------------------------------------------------------


def test_route_avoiding_blocked_nodes(roadmap: Roadmap) -> None:
    assert t.plan_route_avoiding(roadmap, "G00", "G02", ()) == ("G00", "G01", "G02")
    detour = t.plan_route_avoiding(roadmap, "G00", "G02", {"G01"})
    assert detour is not None and "G01" not in detour
    assert detour[0] == "G00" and detour[-1] == "G02"


def test_route_avoiding_none_when_goal_blocked_or_cut_off(roadmap: Roadmap) -> None:
    assert t.plan_route_avoiding(roadmap, "G00", "G02", {"G02"}) is None
    assert t.plan_route_avoiding(roadmap, "G01", "CHG1", {"G00"}) is None
    assert t.plan_route_avoiding(roadmap, "G01", "G01", {"G01"}) == ("G01",)


# --- reservations ---------------------------------------------------------------------------


def test_an_idle_robot_holds_its_node(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G11", "G11"))
    assert state.reservations.holder("G11") == "A"
    assert t.place(state, "B", "G11") == t.Conflict("B", "G11", "A")


def test_a_corridor_is_released_whole_up_to_the_next_junction(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G10", "G14"))
    plan = t.plan(roadmap, state, POLICY)
    assert plan.releases == (t.Release("A", ("G11", "G12", "G13", "G14")),)
    assert plan.state.reservations.nodes_of("A") == {"G10", "G11", "G12", "G13", "G14"}
    assert t.violations(plan.state) == ()


def test_a_robot_does_not_enter_a_corridor_another_robot_stands_in(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G10", "G14"), ("B", "G13", "G13"))
    plan = t.plan(roadmap, state, t.TrafficPolicy(parking=PARKING, detour_ratio=0.0))
    released = {r.serial: r.nodes for r in plan.releases}
    assert "G11" not in released.get("A", ())
    assert plan.state.reservations.holder("G13") == "B"


def test_junction_to_junction_release_keeps_the_lookahead(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "P1", "P5"))
    plan = t.plan(roadmap, state, POLICY)
    assert plan.state.robot("A").base == ("P1", "P2", "P3")  # two nodes ahead, both junctions


def test_no_node_is_released_to_two_robots(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G00", "G20"), ("B", "G20", "G00"), ("C", "P2", "G11"))
    plan = t.plan(roadmap, state, POLICY)
    owners: dict[str, str] = {}
    for r in plan.state.robots:
        for node in r.base:
            assert owners.setdefault(node, r.serial) == r.serial
            assert plan.state.reservations.holder(node) == r.serial


def test_advance_frees_what_the_robot_passed(roadmap: Roadmap) -> None:
    plan = t.plan(roadmap, fleet(roadmap, ("A", "G10", "G14")), POLICY)
    state = t.advance(plan.state, {"A": "G12"})
    assert state.robot("A").route == ("G12", "G13", "G14")
    assert state.reservations.nodes_of("A") == {"G12", "G13", "G14"}
    assert t.violations(state) == ()


def test_advance_refuses_a_node_off_the_base(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G10", "G14"))
    with pytest.raises(ValueError, match="not on its base"):
        t.advance(state, {"A": "G12"})  # nothing released yet


def test_start_trip_must_start_where_the_robot_stands(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G10", "G10"))
    with pytest.raises(ValueError, match="stands on G10"):
        t.start_trip(state, "A", ("G11", "G12"))


def test_violations_name_a_double_reservation() -> None:
    state = t.TrafficState.of(
        [t.RobotPlan("A", ("G00", "G01"), 2), t.RobotPlan("B", ("G01",))],
        {"G00": "A", "G01": "B"},
    )
    problems = t.violations(state)
    assert any("G01 is in the base of A and of B" in p for p in problems)


def test_no_edge_is_driven_by_two_robots_in_opposite_directions(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G20", "G23"), ("B", "G23", "G20"))
    for _ in range(60):
        before = state.positions()
        _, state = step(roadmap, state)
        after = state.positions()
        edges = {(before[s], after[s]) for s in before if before[s] != after[s]}
        assert not any((b, a) in edges for a, b in edges)
        if all(r.idle for r in state.robots):
            break
    assert state.positions() == {"A": "G23", "B": "G20"}


# --- blockers and deadlocks --------------------------------------------------------------


def test_an_idle_robot_on_the_goal_is_sent_to_parking(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "IND1", "IND1"), ("B", "G20", "IND1"))
    plan = t.plan(roadmap, state, POLICY)
    (evacuation,) = plan.evacuations
    assert evacuation.serial == "A" and evacuation.making_way_for == "B"
    assert evacuation.route[-1] in PARKING
    assert run(roadmap, plan.state).robot("B").node == "IND1"


def test_a_robot_still_working_at_the_end_of_its_route_is_waited_for_not_sent_away(
    roadmap: Roadmap,
) -> None:
    # A stands on the induction, still dropping (its order has not ended): B waits behind it
    state = fleet(roadmap, ("A", "IND1", "IND1"), ("B", "G20", "IND1"))
    plan = t.plan(roadmap, state, POLICY, staying={"A"})
    assert plan.evacuations == () and plan.reroutes == ()
    assert plan.state.robot("A").node == "IND1"
    # and once its order has ended, it is sent away as any idle robot
    assert [e.serial for e in t.plan(roadmap, plan.state, POLICY).evacuations] == ["A"]


def test_a_robot_still_working_in_the_way_is_driven_around_when_the_detour_is_short(
    roadmap: Roadmap,
) -> None:
    state = fleet(roadmap, ("A", "G10", "G10"), ("B", "G00", "G20"))
    plan = t.plan(roadmap, state, POLICY, staying={"A"})
    (reroute,) = plan.reroutes
    assert reroute.serial == "B" and "G10" not in reroute.route
    # a long way around is not taken: B waits for A to finish instead
    state = fleet(roadmap, ("A", "G21", "G21"), ("B", "G20", "G22"))
    plan = t.plan(roadmap, state, POLICY, staying={"A"})
    assert plan.reroutes == () and plan.evacuations == ()


def test_a_robot_waits_short_of_an_occupied_dead_end_so_as_not_to_shut_its_robot_in(
    roadmap: Roadmap,
) -> None:
    # CHG1 hangs off G00 alone. B, on its way into CHG1, is not released onto G00 while A
    # stands in CHG1: A's only way out is G00
    state = fleet(roadmap, ("A", "CHG1", "CHG1"), ("B", "G20", "CHG1"))
    plan = t.plan(roadmap, state, POLICY, staying={"A"})  # A still at work there
    assert "G00" not in plan.state.robot("B").base
    # once A is done, it is sent out through G00, which is still free
    plan = t.plan(roadmap, plan.state, POLICY)
    (evacuation,) = plan.evacuations
    assert evacuation.serial == "A" and evacuation.route[:2] == ("CHG1", "G00")
    assert run(roadmap, plan.state).robot("B").node == "CHG1"
    # a robot that only passes the dead end's way in is not held back
    state = fleet(roadmap, ("A", "CHG1", "CHG1"), ("B", "G20", "G02"))
    assert "G00" in t.plan(roadmap, state, POLICY, staying={"A"}).state.robot("B").base


def test_a_robot_queuing_for_an_occupied_dead_end_waits_away_from_its_way_in(
    roadmap: Roadmap,
) -> None:
    # A works in CHG1, whose way in is G00. B, going to CHG1, waits short of G10 (next to
    # G00): robots queuing on G00's other neighbours too would leave A no way out
    state = fleet(roadmap, ("A", "CHG1", "CHG1"), ("B", "G30", "CHG1"))
    plan = t.plan(roadmap, state, POLICY, staying={"A"})
    assert plan.state.robot("B").base == ("G30", "G20")
    plan = t.plan(roadmap, t.advance(plan.state, {"B": "G20"}), POLICY, staying={"A"})
    assert [(w.serial, w.node, w.holder) for w in plan.waits] == [("B", "CHG1", "A")]
    # once A is out of CHG1, B drives in
    state = fleet(roadmap, ("A", "G02", "G02"), ("B", "G30", "CHG1"))
    assert run(roadmap, state).robot("B").node == "CHG1"
    # a robot passing by is not held back
    state = fleet(roadmap, ("A", "CHG1", "CHG1"), ("B", "G30", "G10"))
    plan = t.plan(roadmap, state, POLICY, staying={"A"})
    assert plan.state.robot("B").base[-1] == "G10"


def test_a_robot_boxed_in_a_dead_end_by_robots_queuing_for_it_is_let_out() -> None:
    # D hangs off A; B, C and E wait for D at the ends of A's three other arms. X, done in
    # D, can reach only A and the arms, all on the queuing robots' ways and none a parking
    # spot: it is sent to the nearest node off the way of the robot it lets in (B)
    xy = {"D": (0, 0), "A": (0, 3), "N1": (-3, 3), "N2": (3, 3), "N3": (0, 6)}
    xy |= {"M1": (-6, 3), "M2": (6, 3), "M3": (0, 9)}
    pairs = [("D", "A"), ("A", "N1"), ("A", "N2"), ("A", "N3")]
    pairs += [("N1", "M1"), ("N2", "M2"), ("N3", "M3")]
    roadmap = small_map(xy, pairs)
    state = fleet(roadmap, ("X", "D", "D"), ("B", "M1", "D"), ("C", "M2", "D"), ("E", "M3", "D"))
    # the arms' ends are parking spurs (home nodes)
    plan = t.plan(roadmap, state, t.TrafficPolicy(parking=("M1", "M2", "M3")))
    assert [(e.serial, e.route, e.making_way_for) for e in plan.evacuations] == [
        ("X", ("D", "A", "N2"), "B")
    ]
    assert t.violations(plan.state) == ()


def test_an_idle_robot_is_never_moved_onto_an_induction_or_its_way_in() -> None:
    # X stands idle on B's way. The nearest free node off B's way is A, the only way into the
    # dead end D (an induction); X goes on to T instead
    xy = {"S": (0, 0), "X0": (3, 0), "A": (6, 0), "D": (6, -3), "T": (9, 0)}
    xy |= {"F": (3, 3), "G": (3, 6), "U": (9, 6)}
    pairs = [("S", "X0"), ("X0", "A"), ("A", "D"), ("A", "T"), ("X0", "F"), ("F", "G")]
    pairs += [("T", "U"), ("U", "G")]
    roadmap = small_map(xy, pairs)
    state = fleet(roadmap, ("X", "X0", "X0"), ("B", "S", "G"))
    plan = t.plan(roadmap, state, t.TrafficPolicy(detour_ratio=1.0, detour_slack=0.0))
    assert [(e.serial, e.route) for e in plan.evacuations] == [("X", ("X0", "A", "T"))]


def test_a_robot_detours_around_an_idle_robot_when_the_detour_is_short(
    roadmap: Roadmap,
) -> None:
    state = fleet(roadmap, ("A", "G10", "G10"), ("B", "G00", "G20"))
    plan = t.plan(roadmap, state, POLICY)
    (reroute,) = plan.reroutes
    assert reroute.serial == "B" and reroute.reason is t.RerouteReason.AROUND_IDLE
    assert "G10" not in reroute.route and reroute.route[-1] == "G20"
    assert plan.evacuations == ()


def test_a_long_detour_is_refused_first_the_waiting_robot_steps_aside(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G21", "G21"), ("B", "G20", "G22"))
    plan = t.plan(roadmap, state, POLICY)
    # around A from G20 is 26 m against 6 m direct: A is to leave, out through G20 where B is
    assert [(r.serial, r.reason) for r in plan.reroutes] == [("B", t.RerouteReason.SIDESTEP)]
    assert run(roadmap, plan.state).robot("B").node == "G22"


def test_a_blocker_in_a_dead_end_gets_out_after_the_waiting_robot_steps_aside(
    roadmap: Roadmap,
) -> None:
    state = fleet(roadmap, ("A", "CHG1", "CHG1"), ("B", "G00", "CHG1"))
    plan = t.plan(roadmap, state, POLICY)
    assert [(r.serial, r.reason) for r in plan.reroutes] == [("B", t.RerouteReason.SIDESTEP)]
    assert run(roadmap, plan.state).robot("B").node == "CHG1"


def test_two_robots_swapping_nodes_do_not_deadlock(roadmap: Roadmap) -> None:
    state = run(roadmap, fleet(roadmap, ("A", "G00", "G10"), ("B", "G10", "G00")))
    assert state.positions() == {"A": "G10", "B": "G00"}


def test_head_on_in_an_aisle_is_resolved_and_the_higher_priority_robot_keeps_its_way(
    roadmap: Roadmap,
) -> None:
    state = t.TrafficState()
    for serial, node, prio in (("A", "G31", 5), ("B", "G33", 1)):
        placed = t.place(state, serial, node, prio)
        assert isinstance(placed, t.TrafficState)
        state = placed
    state = t.start_trip(state, "A", roadmap.route("G31", "G34"))
    state = t.start_trip(state, "B", roadmap.route("G33", "G30"))
    reasons: list[tuple[str, t.RerouteReason]] = []
    for _ in range(80):
        plan, state = step(roadmap, state)
        reasons += [(r.serial, r.reason) for r in plan.reroutes]
        if all(r.idle for r in state.robots):
            break
    assert state.positions() == {"A": "G34", "B": "G30"}
    assert reasons and all(serial == "B" for serial, _ in reasons)


def test_stops_survive_a_reroute(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G10", "G10"))
    route = roadmap.tour("G00", ["G20", "G22"])
    placed = t.place(state, "B", "G00")
    assert isinstance(placed, t.TrafficState)
    state = t.start_trip(placed, "B", route, [route.index("G20")])
    plan = t.plan(roadmap, state, POLICY)
    b = plan.state.robot("B")
    assert b.route[b.stops[0]] == "G20" and "G10" not in b.route


def test_waits_name_the_holder(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G00", "G02"), ("B", "G02", "G00"))
    plan = t.plan(roadmap, state, POLICY)
    waits = {w.serial: (w.node, w.holder) for w in plan.waits}
    assert waits.get("A") == ("G02", "B") or waits.get("B") == ("G00", "A")


def test_plan_is_deterministic(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G00", "G24"), ("B", "G24", "G00"), ("C", "P3", "IND2"))
    assert t.plan(roadmap, state, POLICY) == t.plan(roadmap, state, POLICY)


# --- who gives way when robots are stuck (routing.traffic.yielding_robot) ------------------------


def waits(*edges: tuple[str, str]) -> dict[str, t.Wait]:
    return {a: t.Wait(a, f"node-of-{b}", b) for a, b in edges}


def test_in_a_wait_cycle_its_last_robot_by_priority_gives_way() -> None:
    w = waits(("R01", "R02"), ("R02", "R03"), ("R03", "R01"), ("R04", "R01"))
    everyone = {"R01", "R02", "R03", "R04"}
    # R04 waited longest but only waits on the cycle: one of the cycle yields
    assert t.yielding_robot(w, ["R04", "R01"], everyone, {}) == ("R03", ("R01", "R02", "R03"))
    # priority first, then serial
    choice = t.yielding_robot(w, ["R04"], everyone, {"R03": 2, "R02": 1})
    assert choice is not None and choice[0] == "R01"


def test_a_robot_that_gave_way_lately_is_passed_over_when_the_jam_comes_back() -> None:
    # R06 stands at the end of a dead end and R04 waits to come in: R06 yielding does not make
    # room, so when the two are stuck again R04 yields (it can be moved aside)
    w = waits(("R04", "R06"), ("R06", "R04"))
    both = {"R04", "R06"}
    assert t.yielding_robot(w, ["R06"], both, {}) == ("R06", ("R04", "R06"))
    assert t.yielding_robot(w, ["R06"], both, {}, gave_way={"R06"}) == ("R04", ("R04", "R06"))
    # when every robot of the cycle gave way lately, the order is the usual one again
    assert t.yielding_robot(w, ["R06"], both, {}, gave_way=both) == ("R06", ("R04", "R06"))
    # and a robot that cannot be cancelled is still never chosen
    assert t.yielding_robot(w, ["R06"], {"R06"}, {}, gave_way={"R06"}) == ("R06", ("R04", "R06"))


def test_a_robot_waiting_on_one_still_under_way_makes_nobody_give_way() -> None:
    # R04 waits on R05, which is busy (picking) or stepping aside and back: R05 yields only
    # once it counts as stalled itself
    w = waits(("R04", "R05"))
    assert t.yielding_robot(w, ["R04"], {"R04", "R05"}, {}) is None
    assert t.yielding_robot(w, ["R04", "R05"], {"R04", "R05"}, {}) == ("R05", ("R05",))


def test_only_robots_whose_trip_can_be_cancelled_give_way() -> None:
    w = waits(("R01", "R02"), ("R02", "R01"))
    assert t.yielding_robot(w, ["R01"], {"R01"}, {}) == ("R01", ("R01", "R02"))
    assert t.yielding_robot(w, ["R01"], set(), {}) is None
    assert t.yielding_robot(w, [], {"R01", "R02"}, {}) is None


def test_a_stalled_robot_that_waits_for_nobody_gives_way_itself() -> None:
    assert t.yielding_robot({}, ["R03"], {"R03"}, {}) == ("R03", ("R03",))


def test_an_idle_robot_boxed_in_by_idle_robots_is_freed_one_by_one(roadmap: Roadmap) -> None:
    # R00 must stop at G33, where idle R02 stands; R02's only ways out are through R00 (G34,
    # boxed in by idle robots on G44 and G24) and through idle R03 on G32: R03 moves first
    state = fleet(
        roadmap,
        ("R02", "G33", "G33"),
        ("R03", "G32", "G32"),
        ("R04", "G44", "G44"),
        ("R05", "G24", "G24"),
    )
    placed = t.place(state, "R00", "G34")
    assert isinstance(placed, t.TrafficState)
    state = t.start_trip(placed, "R00", ("G34", "G33", "G34", "G24", "G14"), stops=(1,))
    plan = t.plan(roadmap, state, POLICY)
    assert [(e.serial, e.making_way_for) for e in plan.evacuations] == [("R03", "R02")]
    assert t.violations(plan.state) == ()


# --- following and freeing a node early ---------------------------------------------------------


def test_a_robot_follows_another_into_an_aisle_it_leaves_the_same_way(roadmap: Roadmap) -> None:
    """B may enter aisle G1x behind A, which drives through it to G14 and on: B is released up
    to the node behind A instead of waiting at G10 for the whole aisle."""
    state = fleet(roadmap, ("A", "G11", "G11"), ("B", "G10", "G10"))
    state = t.start_trip(state, "A", ("G11", "G12", "G13", "G14", "G24"))
    state = t.start_trip(state, "B", ("G10", "G11", "G12", "G13", "G14", "G04"))
    plan = t.plan(roadmap, state, POLICY)
    a, b = plan.state.robot("A"), plan.state.robot("B")
    assert a.base == ("G11", "G12", "G13", "G14")
    assert b.base == ("G10",)  # G11 is where A stands
    state = t.advance(plan.state, {"A": "G12"})
    plan = t.plan(roadmap, state, POLICY)
    assert plan.state.robot("B").base == ("G10", "G11")  # up behind A, inside the aisle
    assert t.violations(plan.state) == ()


def test_no_following_a_robot_that_stops_at_the_aisles_end(roadmap: Roadmap) -> None:
    """A's trip ends at G14, the aisle's end (it does not drive on past it), so B does not
    enter the aisle behind it."""
    state = fleet(roadmap, ("A", "G12", "G12"), ("B", "G10", "G10"))
    state = t.start_trip(state, "A", ("G12", "G13", "G14"))
    state = t.start_trip(state, "B", ("G10", "G11", "G12", "G13", "G14", "G24"))
    plan = t.plan(roadmap, state, POLICY)
    assert plan.state.robot("B").base == ("G10",)


def test_a_node_driven_clear_of_is_free_for_the_next_robot(roadmap: Roadmap) -> None:
    state = fleet(roadmap, ("A", "G24", "G24"), ("B", "G34", "G34"))
    state = t.start_trip(state, "A", ("G24", "G14", "G04"))
    state = t.start_trip(state, "B", ("G34", "G24", "G14"))
    plan = t.plan(roadmap, state, POLICY)
    assert plan.state.robot("B").base == ("G34",)  # A stands on G24
    state = t.advance(plan.state, {}, left=["A"])
    a = state.robot("A")
    assert a.left and a.node == "G24" and state.reservations.holder("G24") is None
    plan = t.plan(roadmap, state, POLICY)
    assert plan.state.robot("B").base[:2] == ("G34", "G24")
    assert t.violations(plan.state) == ()
    # A reaches G14: it holds it as before, and G24 stays B's
    state = t.advance(plan.state, {"A": "G14"})
    assert not state.robot("A").left and state.reservations.holder("G24") == "B"


def test_a_base_that_comes_back_keeps_the_node_reserved(roadmap: Roadmap) -> None:
    """A's base runs G34, G24, G23 (a pick), back to G24: on its way to G23 it does not free
    G24, which it comes back to."""
    state = fleet(roadmap, ("A", "G34", "G34"))
    state = t.start_trip(state, "A", ("G34", "G24", "G23", "G24", "G14"), stops=[2])
    plan = t.plan(roadmap, state, t.TrafficPolicy(parking=PARKING, lookahead=3))
    assert plan.state.robot("A").base == ("G34", "G24", "G23", "G24")
    state = t.advance(plan.state, {"A": "G24"})
    assert state.robot("A").base == ("G24", "G23", "G24") and not state.robot("A").may_leave
    state = t.advance(state, {}, left=["A"])
    assert not state.robot("A").left and state.reservations.holder("G24") == "A"


def test_a_robot_whose_order_ends_on_an_edge_keeps_the_node_ahead(roadmap: Roadmap) -> None:
    """A drove clear of G24 and B was given it; A's order ends before A reaches G14: A is put on
    G14, which it still holds, not on G24 where B now is."""
    state = fleet(roadmap, ("A", "G24", "G24"), ("B", "G34", "G34"))
    state = t.start_trip(state, "A", ("G24", "G14", "G04"))
    state = t.start_trip(state, "B", ("G34", "G24", "G14"))
    state = t.advance(t.plan(roadmap, state, POLICY).state, {}, left=["A"])
    state = t.plan(roadmap, state, POLICY).state
    assert state.reservations.holder("G24") == "B"
    placed = t.place(state, "A", "G24")
    assert isinstance(placed, t.TrafficState)
    assert placed.robot("A").node == "G14" and placed.robot("A").idle
    assert placed.reservations.holder("G14") == "A" and placed.reservations.holder("G24") == "B"


def test_every_separate_jam_gets_its_own_give_way_and_a_busy_one_none() -> None:
    w = waits(("R01", "R02"), ("R02", "R01"), ("R03", "R04"), ("R04", "R03"), ("R05", "R01"))
    everyone = {f"R0{i}" for i in range(1, 6)}
    stuck = ["R05", "R01", "R03"]
    # R05 waits on the R01/R02 jam: that jam gives way once, the R03/R04 jam once too
    assert t.yielding_robots(w, stuck, everyone, {}) == [
        ("R02", ("R01", "R02")),
        ("R04", ("R03", "R04")),
    ]
    # a jam with a robot of a give-way still under way is left to it
    assert t.yielding_robots(w, stuck, everyone, {}, busy={"R04"}) == [("R02", ("R01", "R02"))]


def test_a_route_avoiding_nodes_is_a_shortest_one_or_none_when_there_is_none(
    roadmap: Roadmap,
) -> None:
    """The A* search (with its shortcut for goals walled into a small pocket) agrees with a
    plain Dijkstra over the same closed nodes: same length, or no route for both."""
    rng = random.Random(5)
    ids = [n.id for n in roadmap.nodes]
    for _ in range(400):
        start, goal = rng.sample(ids, 2)
        blocked = set(rng.sample(ids, rng.randint(0, 14))) - {goal}
        route = t.plan_route_avoiding(roadmap, start, goal, blocked)
        dist, _ = shortest_tree(roadmap, start, blocked)
        if goal not in dist:
            assert route is None, (start, goal, sorted(blocked))
            continue
        assert route is not None and route[0] == start and route[-1] == goal
        assert not blocked.intersection(route[1:])
        assert route_length(roadmap, route) == pytest.approx(dist[goal])

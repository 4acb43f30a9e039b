"""Property tests of the traffic planner: random task sets on the reference map, driven step by
step. At every step no node holds two robots and no node is reserved twice; within a bounded
number of steps every robot reaches its goal and the fleet comes to rest (no deadlock, no
livelock).

Some robots report driving clear of a node (its node is then freed for others) before they
reach the next one, the others only arrive: then no robot drives onto an edge another robot is
on, or onto the node another robot drives to."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.line import topology
from controller.linefile.loader import load_reference
from routing import traffic as t
from routing.roadmap import Roadmap

ROADMAP: Roadmap = topology.roadmap(load_reference(env={}))
NODES = tuple(n.id for n in ROADMAP.nodes)
POLICY = t.TrafficPolicy(parking=("P1", "P2", "P3", "P4", "P5", "P6"), lookahead=3)
MAX_STEPS = 250

settings.register_profile(
    "traffic",
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Task:
    serial: str
    start: str
    goal: str
    stops: tuple[str, ...]
    priority: int
    leaves: bool  # reports driving clear of a node before reaching the next one


@st.composite
def task_sets(draw: st.DrawFn, max_stops: int) -> tuple[Task, ...]:
    n = draw(st.integers(2, 6))
    starts = draw(st.lists(st.sampled_from(NODES), min_size=n, max_size=n, unique=True))
    goals = draw(st.lists(st.sampled_from(NODES), min_size=n, max_size=n, unique=True))
    return tuple(
        Task(
            f"R{i:02d}",
            start,
            goal,
            tuple(draw(st.lists(st.sampled_from(NODES), max_size=max_stops, unique=True))),
            draw(st.integers(0, 2)),
            draw(st.booleans()),
        )
        for i, (start, goal) in enumerate(zip(starts, goals, strict=True))
    )


def initial_state(tasks: tuple[Task, ...]) -> t.TrafficState:
    state = t.TrafficState()
    for task in tasks:
        placed = t.place(state, task.serial, task.start, task.priority)
        assert isinstance(placed, t.TrafficState)
        state = placed
    for task in tasks:
        route = ROADMAP.tour(task.start, [*task.stops, task.goal])
        if len(route) == 1:
            continue
        stops: set[int] = set()
        cursor = 0
        for node in task.stops:
            cursor = route.index(node, cursor)
            if cursor > 0:
                stops.add(cursor)
        state = t.start_trip(state, task.serial, route, sorted(stops))
    return state


def check_step(before: t.TrafficState, state: t.TrafficState, moves: dict[str, str]) -> None:
    assert t.violations(state) == ()
    on_nodes = [r.node for r in state.robots if not r.left]
    assert len(set(on_nodes)) == len(on_nodes), state.positions()
    # a robot that left its node is on the edge to the next: alone on it, and nobody on its end
    edges = [frozenset(r.route[:2]) for r in state.robots if r.left]
    assert len(set(edges)) == len(edges), f"two robots on one edge: {state.positions()}"
    ends = {r.route[1] for r in state.robots if r.left}
    assert not ends & set(on_nodes), f"a robot stands where another drives to: {ends}"
    old = before.positions()
    for a, node in moves.items():
        assert before.reservations.holder(node) == a  # only onto nodes reserved for it
        for b, other in moves.items():
            assert not (node == old[b] and other == old[a]), f"{a} and {b} swap on one edge"


def simulate(tasks: tuple[Task, ...]) -> int:
    """Steps until every robot has reached its goal and all are at rest."""
    state = initial_state(tasks)
    goals = {task.serial: task.goal for task in tasks}
    reached = {s for s, r in zip(goals, state.robots, strict=True) if r.idle}
    for n in range(MAX_STEPS):
        plan = t.plan(ROADMAP, state, POLICY)
        state = plan.state
        assert t.violations(state) == ()
        leaves = {task.serial for task in tasks if task.leaves}
        driving = [r for r in state.robots if r.released > 1]
        left = [r.serial for r in driving if r.serial in leaves and r.may_leave]
        moves = {r.serial: r.route[1] for r in driving if r.serial not in left}
        moved = t.advance(state, moves, left)
        check_step(state, moved, moves)
        state = moved
        reached |= {r.serial for r in state.robots if r.idle and r.node == goals[r.serial]}
        if len(reached) == len(tasks) and all(r.idle for r in state.robots):
            return n
    raise AssertionError(f"not at rest after {MAX_STEPS} steps: {state.positions()}")


@settings(settings.get_profile("traffic"))
@given(task_sets(max_stops=0))
def test_every_robot_reaches_its_goal_without_collision(tasks: tuple[Task, ...]) -> None:
    simulate(tasks)


@settings(settings.get_profile("traffic"), max_examples=100)
@given(task_sets(max_stops=2))
def test_trips_with_stops_on_the_way_finish_too(tasks: tuple[Task, ...]) -> None:
    simulate(tasks)

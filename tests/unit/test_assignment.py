import numpy as np

from routing.assignment import Robot, Task, assign, greedy_nearest_idle
from routing.roadmap import Edge, Node, Roadmap


def line_map(n: int) -> Roadmap:
    nodes = tuple(Node(f"N{i}", float(i), 0.0, "m") for i in range(n))
    return Roadmap(nodes, tuple(Edge(f"N{i}", f"N{i + 1}") for i in range(n - 1)))


def test_min_cost_beats_greedy_where_greedy_is_short_sighted() -> None:
    # robots at 0 and 10; the urgent task at 5 grabs the robot at 0 first under greedy,
    # leaving the robot at 10 to drive back to the task at 1.
    dist = line_map(11).matrix
    robots = [Robot("A", 0, 1.0), Robot("B", 10, 1.0)]
    tasks = [Task("urgent", 5, due=100.0), Task("later", 1, due=200.0)]
    greedy = greedy_nearest_idle(dist, robots, tasks)
    best = assign(dist, robots, tasks, now=0.0, slack_weight=0.0, priority_weight=0.0)
    assert sorted(greedy.pairs) == [("A", "urgent"), ("B", "later")]
    assert greedy.empty_travel == 14.0
    assert sorted(best.pairs) == [("A", "later"), ("B", "urgent")]
    assert best.empty_travel == 6.0


def test_urgent_tasks_are_served_first_when_robots_are_few() -> None:
    dist = line_map(11).matrix
    robots = [Robot("A", 0, 1.0)]
    tasks = [Task("near-but-late", 0, due=5 * 3600.0), Task("far-but-due", 10, due=600.0)]
    best = assign(dist, robots, tasks, now=0.0)
    assert best.pairs == (("A", "far-but-due"),)


def test_empty_and_unreachable() -> None:
    rm = Roadmap((Node("A", 0, 0, "m"), Node("B", 5, 5, "m")), ())
    dist = rm.matrix
    assert assign(dist, [], [Task("t", 0, 1.0)], 0.0).pairs == ()
    assert assign(dist, [Robot("R", 0, 1.0)], [], 0.0).pairs == ()
    assert assign(dist, [Robot("R", 0, 1.0)], [Task("t", 1, 1.0)], 0.0).pairs == ()
    assert greedy_nearest_idle(dist, [Robot("R", 0, 1.0)], [Task("t", 1, 1.0)]).pairs == ()


def test_deterministic() -> None:
    rng = np.random.default_rng(3)
    dist = line_map(50).matrix
    robots = [Robot(f"R{i}", int(rng.integers(50)), 1.5) for i in range(10)]
    tasks = [Task(f"T{j}", int(rng.integers(50)), float(rng.uniform(0, 9000))) for j in range(30)]
    assert assign(dist, robots, tasks, 0.0) == assign(dist, robots, tasks, 0.0)


def test_pruning_keeps_the_optimum() -> None:
    """The solver sees only tasks that can be in an optimal assignment; the total is the same
    as solving the full matrix."""
    from scipy.optimize import linear_sum_assignment

    from routing.assignment import travel_times

    rng = np.random.default_rng(11)
    dist = line_map(60).matrix
    robots = [Robot(f"R{i}", int(rng.integers(60)), 1.5) for i in range(8)]
    tasks = [
        Task(f"T{j}", int(rng.integers(60)), float(rng.uniform(0, 8 * 3600)), int(rng.integers(10)))
        for j in range(80)
    ]
    best = assign(dist, robots, tasks, now=0.0)
    slack = np.array([t.due / 3600 for t in tasks]) * 600.0
    prio = np.array([9 - t.priority for t in tasks]) * 30.0
    full = travel_times(dist, robots, tasks) + slack[None, :] + prio[None, :]
    rows, cols = linear_sum_assignment(full)
    chosen = {tasks[j].task_id for j in cols}
    index = {t.task_id: j for j, t in enumerate(tasks)}
    serial = {r.serial: i for i, r in enumerate(robots)}
    total = sum(full[serial[r], index[t]] for r, t in best.pairs)
    assert abs(total - full[rows, cols].sum()) < 1e-6
    assert len(best.pairs) == len(chosen) == 8

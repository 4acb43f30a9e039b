"""Which idle robot takes which open task: minimum total cost, not first come nearest robot.

Cost of robot *i* taking task *j* is the empty travel time from the robot to the task's first
stop, plus an urgency term that makes tasks with a lot of slack (time to their due time) cost
more, so urgent tasks are served first and the solver trades travel only between tasks of
similar urgency. Solved as a rectangular linear assignment (scipy's ``linear_sum_assignment``).
Pure and deterministic: distances and ``now`` are arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Robot:
    serial: str
    node: int  # index into the distance matrix
    speed: float  # m/s


@dataclass(frozen=True)
class Task:
    task_id: str
    node: int  # first stop, index into the distance matrix
    due: float  # seconds on the same time axis as ``now``
    priority: int = 5  # 0..9


@dataclass(frozen=True)
class Assignment:
    pairs: tuple[tuple[str, str], ...]  # (robot serial, task id)
    empty_travel: float  # metres, summed over the pairs


UNREACHABLE = 1e12


def travel_times(
    dist: NDArray[np.float64], robots: Sequence[Robot], tasks: Sequence[Task]
) -> NDArray[np.float64]:
    """Empty travel time (s) of every robot to every task's first stop."""
    rn = np.fromiter((r.node for r in robots), dtype=np.intp, count=len(robots))
    tn = np.fromiter((t.node for t in tasks), dtype=np.intp, count=len(tasks))
    speed = np.fromiter((r.speed for r in robots), dtype=np.float64, count=len(robots))
    metres = dist[np.ix_(rn, tn)]
    return np.asarray(metres / speed[:, None], dtype=np.float64)


def assign(
    dist: NDArray[np.float64],
    robots: Sequence[Robot],
    tasks: Sequence[Task],
    now: float,
    *,
    slack_weight: float = 600.0,
    priority_weight: float = 30.0,
) -> Assignment:
    """Minimum-cost assignment of tasks to robots (at most one task per robot).

    ``slack_weight``: seconds of travel one hour of slack is worth; ``priority_weight``: seconds
    of travel one priority step is worth. With both at zero the result minimises empty travel.
    """
    if not robots or not tasks:
        return Assignment((), 0.0)
    slack_h = np.fromiter((max(0.0, t.due - now) / 3600.0 for t in tasks), np.float64, len(tasks))
    prio = np.fromiter((9 - t.priority for t in tasks), np.float64, len(tasks))
    urgency = slack_weight * slack_h + priority_weight * prio
    times = travel_times(dist, robots, tasks)
    finite = times[np.isfinite(times)]
    if len(tasks) > len(robots) and finite.size:
        # Exact pruning: a task whose urgency cost exceeds the len(robots)-th smallest by more
        # than the longest travel time is never in an optimal assignment (swapping it for an
        # unassigned more urgent task lowers the total), so the solver need not see it.
        limit = np.partition(urgency, len(robots) - 1)[len(robots) - 1] + float(finite.max())
        keep = np.flatnonzero(urgency <= limit)
        tasks = [tasks[int(j)] for j in keep]
        times, urgency = times[:, keep], urgency[keep]
    cost = times + urgency[None, :]
    cost[~np.isfinite(cost)] = UNREACHABLE
    rows, cols = linear_sum_assignment(cost)
    return _result(dist, robots, tasks, rows, cols)


def greedy_nearest_idle(
    dist: NDArray[np.float64], robots: Sequence[Robot], tasks: Sequence[Task]
) -> Assignment:
    """The baseline: tasks in release order (due, then priority), each to the nearest free robot."""
    order = sorted(range(len(tasks)), key=lambda j: (tasks[j].due, -tasks[j].priority, j))
    times = travel_times(dist, robots, tasks)
    free = np.ones(len(robots), dtype=bool)
    rows: list[int] = []
    cols: list[int] = []
    for j in order:
        if not free.any():
            break
        column = np.where(free, times[:, j], np.inf)
        i = int(np.argmin(column))
        if not np.isfinite(column[i]):
            continue
        free[i] = False
        rows.append(i)
        cols.append(j)
    return _result(dist, robots, tasks, np.array(rows, np.intp), np.array(cols, np.intp))


def _result(
    dist: NDArray[np.float64],
    robots: Sequence[Robot],
    tasks: Sequence[Task],
    rows: NDArray[np.intp],
    cols: NDArray[np.intp],
) -> Assignment:
    pairs = []
    travel = 0.0
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        metres = float(dist[robots[i].node, tasks[j].node])
        if not np.isfinite(metres):
            continue
        pairs.append((robots[i].serial, tasks[j].task_id))
        travel += metres
    return Assignment(tuple(pairs), travel)

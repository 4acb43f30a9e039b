"""Robot assignment: minimum-cost (routing.assignment.assign) against greedy nearest-idle.

A seeded warehouse: a grid of aisle nodes, robots and open tasks at random nodes, due times
spread over four hours. Prints the solve time (median, p99) and the total empty travel of both
methods, on all open tasks and on exactly the tasks greedy serves (same tasks, less travel).

    python bench/assignment.py [--robots 500] [--tasks 2000] [--seed 7] [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from routing.assignment import Robot, Task, assign, greedy_nearest_idle
from routing.roadmap import Edge, Node, Roadmap


def grid(cols: int, rows: int, spacing: float) -> Roadmap:
    nodes = tuple(
        Node(f"N{c}-{r}", c * spacing, r * spacing, "floor")
        for c in range(cols)
        for r in range(rows)
    )
    edges = []
    for c in range(cols):
        for r in range(rows):
            if r + 1 < rows:
                edges.append(Edge(f"N{c}-{r}", f"N{c}-{r + 1}"))
            if c + 1 < cols and r in (0, rows // 2, rows - 1):  # cross aisles
                edges.append(Edge(f"N{c}-{r}", f"N{c + 1}-{r}"))
    return Roadmap(nodes, tuple(edges))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--robots", type=int, default=500)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    roadmap = grid(60, 40, 2.0)
    dist = roadmap.matrix
    n = len(roadmap.nodes)
    now = 0.0
    robots = [
        Robot(f"R{i:04d}", int(rng.integers(n)), float(rng.uniform(1.2, 2.0)))
        for i in range(args.robots)
    ]
    tasks = [
        Task(
            f"T{j:05d}",
            int(rng.integers(n)),
            float(rng.uniform(600, 4 * 3600)),
            int(rng.integers(0, 10)),
        )
        for j in range(args.tasks)
    ]

    timings = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        optimal = assign(dist, robots, tasks, now)
        timings.append(time.perf_counter() - t0)
    g0 = time.perf_counter()
    greedy = greedy_nearest_idle(dist, robots, tasks)
    greedy_s = time.perf_counter() - g0

    served = {t for _, t in greedy.pairs}
    same_tasks = [t for t in tasks if t.task_id in served]
    same = assign(dist, robots, same_tasks, now, slack_weight=0.0, priority_weight=0.0)

    def mean_slack_h(a: object, pool: list[Task]) -> float:
        due = {t.task_id: t.due for t in pool}
        return statistics.fmean(due[t] for _, t in a.pairs) / 3600  # type: ignore[attr-defined]

    timings.sort()
    p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
    print(
        f"instance: {args.robots} robots x {args.tasks} open tasks, {n} map nodes, seed {args.seed}"
    )
    print(
        f"assign (min cost)   : median {statistics.median(timings) * 1000:7.1f} ms   "
        f"p99 {p99 * 1000:7.1f} ms   ({args.runs} runs; target <= 200 ms)"
    )
    print(f"greedy nearest-idle : {greedy_s * 1000:7.1f} ms")
    print(
        f"empty travel, greedy               : {greedy.empty_travel:10.0f} m  "
        f"({len(greedy.pairs)} tasks, mean slack {mean_slack_h(greedy, tasks):.2f} h)"
    )
    print(
        f"empty travel, min cost (all tasks) : {optimal.empty_travel:10.0f} m  "
        f"({len(optimal.pairs)} tasks, mean slack {mean_slack_h(optimal, tasks):.2f} h)  "
        f"ratio {optimal.empty_travel / greedy.empty_travel:.3f}"
    )
    print(
        f"empty travel, min cost (same tasks): {same.empty_travel:10.0f} m  "
        f"({len(same.pairs)} tasks)  ratio {same.empty_travel / greedy.empty_travel:.3f}  "
        f"(target <= 0.900)"
    )


if __name__ == "__main__":
    main()

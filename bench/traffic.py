"""Traffic control on the reference map: how often random task sets come to rest.

Each run places robots on distinct random nodes, gives each a random goal and 0..``--stops``
random stops on the way, and drives the fleet step by step: each step plans one round
(``routing.traffic.plan``) and moves every robot with released nodes ahead one node with
probability ``--move`` (robots that pick, wait or drive slower lag behind). A run ends when every
robot is idle. A robot that has waited ``--patience`` steps makes one robot give way, chosen as
the controller does after ``robots.traffic.deadlock_after`` (``routing.traffic.yielding_robot``):
its trip is dropped and it stands idle where it is (at most one per ``--patience`` steps). So does
a robot whose route has not got shorter for 4 x ``--patience`` steps (``stall_after``).

Prints the share of runs that came to rest by the planner alone, with the controller's give-way,
and not at all (within ``--max-steps``), the number of give-ways, and the planning time per round
(median, p99). Every state is checked: no node reserved twice, no two robots on one node.

    python bench/traffic.py [--runs 300] [--robots 6] [--stops 3] [--lookahead 3] [--move 0.6]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from controller.line import topology
from controller.linefile.loader import load_reference
from routing import traffic as t
from routing.roadmap import Roadmap


def start(roadmap: Roadmap, rng: random.Random, robots: int, stops: int) -> t.TrafficState:
    nodes = [n.id for n in roadmap.nodes]
    starts, goals = rng.sample(nodes, robots), rng.sample(nodes, robots)
    state = t.TrafficState()
    for i, node in enumerate(starts):
        placed = t.place(state, f"R{i:02d}", node)
        assert isinstance(placed, t.TrafficState)
        state = placed
    for i, (node, goal) in enumerate(zip(starts, goals, strict=True)):
        visits = rng.sample(nodes, rng.randint(0, stops))
        route = roadmap.tour(node, [*visits, goal])
        if len(route) == 1:
            continue
        at: set[int] = set()
        cursor = 0
        for v in visits:
            cursor = route.index(v, cursor)
            if cursor:
                at.add(cursor)
        state = t.start_trip(state, f"R{i:02d}", route, sorted(at))
    return state


def run(
    roadmap: Roadmap, policy: t.TrafficPolicy, seed: int, args: argparse.Namespace
) -> tuple[str, int, list[float]]:
    """Outcome (``planner``, ``give_way`` or ``stuck``), give-ways and round times."""
    rng = random.Random(seed)
    state = start(roadmap, rng, args.robots, args.stops)
    gave_way, last_give_way, times = 0, -args.patience, []
    since: dict[str, tuple[str, int]] = {}  # serial -> (node it stands on, waiting since step)
    best: dict[str, tuple[int, int]] = {}  # serial -> (shortest route left, reached at step)
    for step in range(args.max_steps):
        t0 = time.perf_counter()
        plan = t.plan(roadmap, state, policy)
        times.append(time.perf_counter() - t0)
        state = plan.state
        if t.violations(state):
            raise AssertionError(f"seed {seed}: {t.violations(state)}")
        waits = {w.serial: w for w in plan.waits}
        at = state.positions()
        since = {  # waiting without moving, whatever node it waits for
            s: since[s] if s in since and since[s][0] == at[s] else (at[s], step) for s in waits
        }
        stuck = [s for s, (_, k) in sorted(since.items(), key=lambda i: i[1][1])]
        stuck = [s for s in stuck if step - since[s][1] >= args.patience]
        for r in state.robots:  # the way left has not got shorter: stepping aside and back
            if r.idle:
                best.pop(r.serial, None)
            elif r.serial not in best or len(r.route) < best[r.serial][0]:
                best[r.serial] = (len(r.route), step)
            elif step - best[r.serial][1] >= 4 * args.patience and r.serial not in stuck:
                stuck.append(r.serial)
        if stuck and step - last_give_way >= args.patience:
            busy = {r.serial for r in state.robots if not r.idle}
            priority = {r.serial: r.priority for r in state.robots}
            choice = t.yielding_robot(waits, stuck, busy, priority)
            if choice is not None:
                victim = choice[0]
                placed = t.place(state, victim, state.robot(victim).node)
                assert isinstance(placed, t.TrafficState)
                state, gave_way, last_give_way = placed, gave_way + 1, step
        moving = [r for r in state.robots if r.released > 1]
        moves = {r.serial: r.route[1] for r in moving if rng.random() < args.move}
        state = t.advance(state, moves)
        positions = list(state.positions().values())
        if len(set(positions)) != len(positions):
            raise AssertionError(f"seed {seed}: two robots on one node")
        if all(r.idle for r in state.robots):
            return ("give_way" if gave_way else "planner"), gave_way, times
    return "stuck", gave_way, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--robots", type=int, default=6)
    ap.add_argument("--stops", type=int, default=3)
    ap.add_argument("--lookahead", type=int, default=3)
    ap.add_argument("--move", type=float, default=0.6)
    ap.add_argument("--patience", type=int, default=30)
    ap.add_argument("--max-steps", type=int, default=1500)
    args = ap.parse_args()
    roadmap = topology.roadmap(load_reference(env={}))
    parking = tuple(r.home for r in load_reference(env={}).robots.fleet)
    policy = t.TrafficPolicy(parking=parking, lookahead=args.lookahead)
    outcomes: dict[str, list[int]] = {"planner": [], "give_way": [], "stuck": []}
    gave_way = 0
    times: list[float] = []
    for seed in range(args.runs):
        outcome, n, ts = run(roadmap, policy, seed, args)
        outcomes[outcome].append(seed)
        gave_way += n
        times += ts
    times.sort()
    print(" ".join(sys.argv))
    print(
        f"{args.runs} random task sets, {args.robots} robots, 0-{args.stops} stops, "
        f"lookahead {args.lookahead}, move probability {args.move}"
    )
    for name, seeds in outcomes.items():
        print(
            f"  {name:9s} {len(seeds):5d} ({100 * len(seeds) / args.runs:5.1f} %)"
            + (f"  seeds {seeds[:10]}" if name != "planner" and seeds else "")
        )
    print(f"  give-ways {gave_way}")
    print(
        f"  planning round: median {statistics.median(times) * 1e3:.2f} ms, "
        f"p99 {times[int(0.99 * (len(times) - 1))] * 1e3:.2f} ms over {len(times)} rounds"
    )


if __name__ == "__main__":
    main()

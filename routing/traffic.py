"""Traffic control for the robot fleet: node reservations, base extension, deadlock avoidance.

Pure functions on a snapshot (:class:`TrafficState`): every robot's remaining route, how much of
it is released (the VDA 5050 *base*; the rest is the *horizon*) and the reservation table.

Rules
-----
* A node is reserved by at most one robot. A robot is released only onto nodes reserved for it;
  releasing a node reserves it. The table always equals the union of the bases: a robot holds
  the node it stands on (idle robots too: they block it) and every released node ahead of it.
* As a robot reports reaching a node of its base (:func:`advance`), the nodes behind it are
  freed; the node it stands on stays reserved until it reports having driven clear of it on
  the next edge of its base (``left``), unless its base comes back to that node.
* No two robots drive one edge in opposite directions (or the same direction) at the same time:
  a robot drives an edge only when both end nodes are in its base, so both are reserved for it,
  and no other robot can hold either of them until it has passed them (or driven clear of the
  first, onto the edge: then the edge's far end is still its own).
* The base grows chunk by chunk (:func:`plan`). A chunk ends on a *stop-able* node: a junction
  (a node whose degree is not two) or one of the robot's stops. It is granted only when every
  node in it is free, so a robot enters a corridor (a chain of degree-two nodes, like an aisle)
  only when it can drive through to the junction at the other end, and two robots never meet
  head-on inside one. The exception is *following*: a robot may be released into a corridor up
  to the node behind a robot that drives through the rest of it the same way and on past its
  end (not back), since that robot leaves the corridor ahead of it. Chunks are added until
  the robot has ``lookahead`` released nodes ahead of it, so a robot moving freely is extended
  before it reaches its decision point.
* A robot bound for a dead end (a node with one neighbour, such as an induction on a spur)
  where another robot is waits away from the dead end's way in and, unless it stands there
  already, from the nodes next to the way in, so that the robot inside can come out.
* A chunk is also refused when, standing at its end, the robot would wait on a stopped robot
  that (directly or through a chain of stopped robots) waits for that very node, unless the
  robot already stands in their way: a robot that stepped aside does not step back into the
  cycle it left.

Deadlock policy, each round, highest priority first (ties by serial)
-------------------------------------------------------------------
1. *Parked blockers.* A robot that will stay where it is (idle, or finishing its route) and
   stands on another robot's route before that robot's next stop is avoided at once: the other
   robot's horizon is re-planned around it (:func:`plan_route_avoiding`) when such a detour
   exists and is at most ``detour_ratio`` x direct + ``detour_slack`` metres; otherwise an idle
   blocker is sent to the nearest free parking node that lies on no robot's route (an
   :class:`Evacuation`, a new trip the dispatcher sends), else to any free node off every
   route, else off the waiting robot's route; never into a dead end that is not a parking
   node (an induction, a charger) nor onto its way in. If the blocker's only way out runs
   through the waiting robot, that robot first steps aside to the nearest free node off the
   way out. A blocker still driving to its last node is waited for, then handled as idle.
2. *Release* the next chunks, as above.
3. *Cycles.* Robots standing on their decision point that cannot get their next chunk wait on
   the holder of the first node they cannot get. When these waits form a cycle of robots that
   all stand still (A needs B's node while B needs A's), the lowest-priority robot of the cycle
   is re-routed from its decision point to its next stop around every reserved node; when no
   such route exists it steps aside to the nearest free node that lies on none of the other
   robots' routes and continues from there. One robot per cycle per round; the rest then
   proceed in priority order, so the highest-priority robot is never the one that yields.

Only the horizon is ever changed; the base, once sent, is never taken back (VDA 5050 6.6.2).

Limits
------
* Designed and tested (``tests/unit/test_traffic_properties.py``) on the reference map: a
  ladder of aisles with junctions, parking and one dead end, up to six robots, distinct goals.
  A dense fleet in a map with long single-lane dead ends, or more robots than free stop-able
  nodes, can still leave robots waiting: the planner then reports :class:`Wait` values, never
  an inconsistent reservation.
* Known residual case: two robots that start head-on inside one aisle, with both aisle ends
  held by robots that want to enter it, need a robot outside the cycle to back off first;
  the planner does not push robots outside a cycle and reports the four as waiting. In random
  runs on the reference map (2-6 robots, random starts and goals) this happened in about
  0.1-0.3 % of the task sets; it never produced a double reservation.
* Cycle resolution moves one robot per cycle per round and uses shortest detours; it does not
  optimise fleet throughput, and a long detour may be chosen where waiting would be shorter.
* A robot whose report is not on its base (pushed by hand, relocalised) is a contract violation
  (:func:`advance` raises ``ValueError``); the controller must cancel its order and
  :func:`place` it again.
* Reservations are per node: the footprint of a robot on an edge near a third node, or two
  nodes closer than a robot's length, are not modelled; the map must space nodes accordingly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from routing.roadmap import Roadmap
from routing.traffic_graph import plan_route_avoiding
from routing.traffic_model import (
    Evacuation,
    Release,
    Reroute,
    RerouteReason,
    Reservations,
    RobotPlan,
    TrafficPlan,
    TrafficPolicy,
    TrafficState,
    Wait,
    violations,
)
from routing.traffic_resolve import Round, wait_cycles

__all__ = [
    "Conflict",
    "Evacuation",
    "Release",
    "Reroute",
    "RerouteReason",
    "Reservations",
    "RobotPlan",
    "TrafficPlan",
    "TrafficPolicy",
    "TrafficState",
    "Wait",
    "advance",
    "place",
    "plan",
    "plan_route_avoiding",
    "start_trip",
    "violations",
    "wait_cycles",
    "yielding_robot",
    "yielding_robots",
]


@dataclass(frozen=True)
class Conflict:
    """``serial`` reports standing on ``node``, which is reserved for ``holder``."""

    serial: str
    node: str
    holder: str


def place(
    state: TrafficState, serial: str, node: str, priority: int = 0
) -> TrafficState | Conflict:
    """Register ``serial`` as idle on ``node`` (it appears, or its order was cancelled).

    Its former reservations are freed. A node already reserved for another robot is a
    :class:`Conflict`, and the state is left as it was. A robot that had driven clear of
    ``node`` (whose order ended on the edge after it) and whose node was given to another robot
    is placed on the node it was driving to, which is still reserved for it.
    """
    former = next((r for r in state.robots if r.serial == serial), None)
    taken = state.reservations.holder(node) not in (None, serial)
    if former is not None and former.left and node == former.node and taken:
        node = former.route[1]
    holder = state.reservations.holder(node)
    if holder is not None and holder != serial:
        return Conflict(serial, node, holder)
    holders = {n: s for n, s in state.reservations.holders.items() if s != serial}
    holders[node] = serial
    robots = [r for r in state.robots if r.serial != serial]
    robots.append(RobotPlan(serial, (node,), 1, (), priority))
    return TrafficState.of(robots, holders)


def start_trip(
    state: TrafficState,
    serial: str,
    route: Sequence[str],
    stops: Sequence[int] = (),
    priority: int | None = None,
) -> TrafficState:
    """Give idle robot ``serial`` a new trip. ``route[0]`` must be the node it stands on;
    ``stops`` are route indices where it stops (picks); nothing is released yet."""
    current = state.robot(serial)
    if not current.idle:
        raise ValueError(f"{serial} still has a route; it is not idle")
    if not route or route[0] != current.node:
        raise ValueError(f"{serial} stands on {current.node}; a trip must start there")
    new = RobotPlan(
        serial,
        tuple(route),
        1,
        tuple(stops),
        current.priority if priority is None else priority,
    )
    robots = [new if r.serial == serial else r for r in state.robots]
    return TrafficState.of(robots, state.reservations.holders)


def plan(
    roadmap: Roadmap,
    state: TrafficState,
    policy: TrafficPolicy | None = None,
    staying: Collection[str] = (),
) -> TrafficPlan:
    """One planning round: releases, re-routes, evacuations and waits, and the next state.

    ``staying``: robots that stand at the end of their route but may not be sent away now (an
    action there is still running, such as a drop): they are driven around or waited for like a
    robot finishing its route, never evacuated.
    """
    rd = Round(roadmap, state, policy or TrafficPolicy(), staying)
    rd.clear_parked_blockers()
    rd.release_all()
    rd.break_deadlocks()
    return rd.result()


def advance(
    state: TrafficState, positions: Mapping[str, str], left: Collection[str] = ()
) -> TrafficState:
    """Robots reached the given nodes of their base: trim their routes and free what they passed.

    ``positions`` maps serial -> node (VDA 5050 ``lastNodeId``); robots not in it have not
    moved. A node reached is looked up in the base from the robot's current index onwards, so
    routes that pass a node twice are handled in order.

    ``left``: robots that have driven clear of the node they last reached, on the next edge of
    their base; that node is freed now rather than when they reach the next one. A robot with
    nothing released ahead (it is not driving on) is not taken as having left, nor one whose
    base comes back to that node.
    """
    holders = dict(state.reservations.holders)
    robots: list[RobotPlan] = []
    for r in state.robots:
        node = positions.get(r.serial, r.node)
        if node == r.node:
            if r.serial in left and r.may_leave:
                if holders.get(r.node) == r.serial:
                    del holders[r.node]
                r = replace(r, left=True)
            robots.append(r)
            continue
        try:
            k = r.route.index(node, 1, r.released)
        except ValueError:
            raise ValueError(f"{r.serial} reported {node}, which is not on its base") from None
        moved = replace(
            r,
            route=r.route[k:],
            released=r.released - k,
            stops=tuple(s - k for s in r.stops if s > k),
            left=False,
        )
        for passed in set(r.base) - set(moved.base):
            if holders.get(passed) == r.serial:
                del holders[passed]
        robots.append(moved)
    return TrafficState.of(robots, holders)


def yielding_robot(
    waits: Mapping[str, Wait],
    stuck: Sequence[str],
    candidates: Collection[str],
    priority: Mapping[str, int],
    gave_way: Collection[str] = (),
) -> tuple[str, tuple[str, ...]] | None:
    """The robot whose trip to cancel when robots are stuck, and the robots involved: the
    first of :func:`yielding_robots`, or None when nothing is to be done."""
    choices = yielding_robots(waits, stuck, candidates, priority, gave_way)
    return choices[0] if choices else None


def yielding_robots(
    waits: Mapping[str, Wait],
    stuck: Sequence[str],
    candidates: Collection[str],
    priority: Mapping[str, int],
    gave_way: Collection[str] = (),
    busy: Collection[str] = (),
) -> list[tuple[str, tuple[str, ...]]]:
    """The robots whose trip to cancel when robots are stuck, one per group of robots stuck on
    each other, with the robots of each group; groups share no robot.

    ``waits`` are the current waits by serial; ``stuck`` the robots that have waited too long
    without moving, and the robots whose way has not got shorter for too long (stalled, most
    urgent first); ``candidates`` the robots whose trip can be cancelled. A stuck robot whose
    chain of waits ends in a cycle makes the cycle's last robot by priority (then serial)
    yield; a stalled robot that waits for nobody (it keeps stepping aside and back) yields
    itself. A robot that waits on a robot still on its way is left alone: that one is either
    busy or will stall. ``gave_way`` are robots that gave way lately: when the same robots are
    stuck again, another robot of the cycle yields first if one can (a robot at the end of a
    dead end cannot make room by standing still; the one facing it can, by being moved aside).
    ``busy``: robots of a give-way still under way (or too recent to judge); a group with one
    of them is left alone. Groups come in the order of ``stuck``.
    """
    waits_on = {s: w.holder for s, w in waits.items()}
    in_cycle = {s: tuple(c) for c in wait_cycles(waits_on) for s in c}
    taken = set(busy)
    out: list[tuple[str, tuple[str, ...]]] = []
    for serial in stuck:
        chain = [serial]
        holder = waits_on.get(serial)
        while holder is not None and holder not in chain:
            chain.append(holder)
            holder = waits_on.get(holder)
        if holder is not None:
            group = in_cycle[holder]
        elif len(chain) == 1:
            group = (serial,)
        else:
            continue
        if taken.intersection(group):
            continue
        able = [s for s in group if s in candidates]
        fresh = [s for s in able if s not in gave_way]
        if fresh or able:
            victim = max(fresh or able, key=lambda s: (-priority.get(s, 0), s))
            out.append((victim, group))
            taken.update(group)
    return out

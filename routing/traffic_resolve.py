"""One planning round of :func:`routing.traffic.plan`: releases, idle blockers, deadlocks.

:class:`Round` is a mutable working copy of the state that lives only inside one call of
``plan``; the caller gets frozen values back. The policy itself is described in
:mod:`routing.traffic`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import replace
from functools import lru_cache

from routing.roadmap import Roadmap
from routing.traffic_graph import (
    path_to,
    plan_route_avoiding,
    route_length,
    shortest_tree,
    topology,
)
from routing.traffic_model import (
    Evacuation,
    Release,
    Reroute,
    RerouteReason,
    RobotPlan,
    TrafficPlan,
    TrafficPolicy,
    TrafficState,
    Wait,
)


class _Plans(dict[str, RobotPlan]):
    """The round's robot plans by serial, counting the changes made to them, with the indexes
    the round reads kept up to date plan by plan (a large fleet changes a few plans a round):

    * ``parked``: node -> serial of the robots that will stay where their route ends (idle or
      finishing);
    * ``busy``: node -> how many routes of robots that are not idle run through it;
    * ``idle``: node -> serial of the idle robots that may be sent away (not ``staying``).
    """

    def __init__(self, plans: Iterable[RobotPlan], staying: frozenset[str]) -> None:
        super().__init__((p.serial, p) for p in plans)
        self.version = 0
        self.staying = staying
        self.parked: dict[str, str] = {}
        self.busy: dict[str, int] = {}
        self.idle: dict[str, str] = {}
        for p in self.values():
            self._index(p)

    def __setitem__(self, serial: str, plan: RobotPlan) -> None:
        old = self.get(serial)
        if old is not None:
            self._unindex(old)
        super().__setitem__(serial, plan)
        self._index(plan)
        self.version += 1

    def _index(self, p: RobotPlan) -> None:
        if p.finishing:
            self.parked[p.route[-1]] = p.serial
        if len(p.route) > 1:
            busy = self.busy
            for n in p.route:
                busy[n] = busy.get(n, 0) + 1
        elif p.serial not in self.staying:
            self.idle[p.route[0]] = p.serial

    def _unindex(self, p: RobotPlan) -> None:
        if p.finishing and self.parked.get(p.route[-1]) == p.serial:
            del self.parked[p.route[-1]]
        if len(p.route) > 1:
            busy = self.busy
            for n in p.route:
                left = busy[n] - 1
                if left:
                    busy[n] = left
                else:
                    del busy[n]
        elif self.idle.get(p.route[0]) == p.serial:
            del self.idle[p.route[0]]


class Round:
    def __init__(
        self,
        roadmap: Roadmap,
        state: TrafficState,
        policy: TrafficPolicy,
        staying: Collection[str] = (),
    ) -> None:
        self.roadmap = roadmap
        self.staying = frozenset(staying)
        self.policy = policy
        self.junctions = topology(roadmap).junctions
        self.dead_ends = topology(roadmap).dead_ends
        self.plans: _Plans = _Plans(state.robots, self.staying)
        # evacuations found impossible, valid while no plan changes: (version, keys)
        self._no_way: tuple[int, set[tuple[str, str, int]]] = (-1, set())
        self.holders: dict[str, str] = dict(state.reservations.holders)
        self.order = [r.serial for r in sorted(state.robots, key=lambda r: (-r.priority, r.serial))]
        self._parking_nodes = frozenset(policy.parking)
        self._no_parking = _no_parking(roadmap, policy.parking)
        self.released: dict[str, list[str]] = {}
        self.reroutes: dict[str, Reroute] = {}
        self.evacuations: dict[str, Evacuation] = {}
        self.waits: list[Wait] = []

    # --- views -----------------------------------------------------------------------------

    def parked(self) -> dict[str, str]:
        """Node -> serial of robots that will stay where their route ends (idle or finishing).
        Kept up to date as plans change; not to be changed by the caller."""
        return self.plans.parked

    def idle_at(self) -> dict[str, str]:
        """Node -> serial of the idle robots that may be sent away (not ``staying``). Kept up
        to date as plans change; not to be changed by the caller."""
        return self.plans.idle

    def obstacles(self, serial: str, *exempt: str) -> _Obstacles:
        """Nodes ``serial`` must route around: others' reservations and parked robots' nodes
        (a view over the round's tables, valid until the next change)."""
        return _Obstacles(self.holders, self.parked(), frozenset((serial, *exempt)))

    # --- releasing -------------------------------------------------------------------------

    def scan(self, p: RobotPlan) -> tuple[tuple[str, ...], str | None]:
        """Horizon nodes ``p`` may be released onto now, and the first node it cannot get.

        The base grows chunk by chunk, each chunk ending on a stop-able node (a junction or one
        of the robot's stops) and granted only when every node in it is free, until the robot
        has ``lookahead`` released nodes ahead of it.
        """
        ahead = p.released - 1
        if p.finishing or ahead >= self.policy.lookahead:
            return (), None
        taken: list[str] = []
        granted = 0
        behind = set(p.base)
        for i in range(p.released, len(p.route)):
            node = p.route[i]
            if node in behind:  # the route comes back here: the robot must leave it first
                break
            holder = self.holders.get(node)
            if holder is not None and holder != p.serial:
                if granted < len(taken) and self.follows(p, i, holder):
                    # up behind a robot driving the same way out of this corridor
                    granted = max(granted, min(len(taken), self.policy.lookahead - ahead))
                return tuple(taken[:granted]), node
            taken.append(node)
            if p.is_stop(i) or node in self.junctions:
                shut = self._shuts_in(p, i)
                if shut is not None:
                    return tuple(taken[:granted]), shut
                lock = self._lock(p, i, taken)
                if lock is not None:
                    return tuple(taken[:granted]), lock
                granted = len(taken)
                if ahead + granted >= self.policy.lookahead:
                    break
        return tuple(taken[:granted]), None

    def follows(self, p: RobotPlan, index: int, leader: str) -> bool:
        """``p`` may drive up behind ``leader`` inside the corridor ahead of it: ``leader``
        holds ``route[index]``, its way from there runs along ``p``'s way to the junction that
        ends the corridor, in the same order, and goes on past that junction (not back the
        way ``p`` comes). ``p`` then stops
        inside the corridor only behind a robot that is leaving it the way ``p`` goes."""
        route = p.route
        end = next((k for k in range(index, len(route)) if route[k] in self.junctions), None)
        if end is None:
            return False
        stretch = route[index : end + 1]
        q = self.plans[leader]
        try:
            k = q.route.index(route[index], 0, q.released)
        except ValueError:
            return False
        after = k + len(stretch)
        # the leader drives on past the junction, not back the way ``p`` comes
        return (
            q.route[k:after] == stretch
            and after < len(q.route)
            and q.route[after] != route[end - 1]
        )

    def _shuts_in(self, p: RobotPlan, end: int) -> str | None:
        """The dead end ``p`` would shut a robot in by standing at ``route[end]``, or None.

        A dead end's only way in and out is its neighbour (the *way in*). A robot bound for
        a dead end where another robot is (parked, or driving in) waits for it away from the
        way in and, unless it stands there already, from every node next to the way in:
        robots queuing there for one induction from several sides would otherwise take every
        way out of it.
        """
        route = p.route
        for k in (end + 1, end + 2):
            if k >= len(route) or route[k] not in self.dead_ends:
                continue
            if k == end + 2 and self._near(route[0], route[end + 1]):
                continue  # already there (stepping aside, say): not drawing nearer
            inside, me = route[k], p.serial
            if self.holders.get(inside, me) != me or self.parked().get(inside, me) != me:
                return inside
        return None

    def _near(self, node: str, way_in: str) -> bool:
        """Whether ``node`` is ``way_in`` or next to it."""
        return node == way_in or any(
            n == node for n, _ in topology(self.roadmap).successors[way_in]
        )

    def _lock(self, p: RobotPlan, end: int, chunk: list[str]) -> str | None:
        """The node ``p`` would wait for, in a cycle, if it were granted ``chunk``; else None.

        Granting ``chunk`` (ending at ``route[end]``) is refused when, once ``p`` stands at its
        end, ``p`` would wait on a stopped robot that (directly or through a chain of stopped
        robots) waits for the node ``p`` then stands on, while none of them needs the node ``p``
        stands on now: ``p`` is out of their way now and would step back into it (typically
        right after stepping aside). Entering a cycle that ``p`` is already part of is allowed.
        """
        me, at = p.serial, p.route[end]

        def holder_of(n: str) -> str | None:
            """Who holds ``n`` once ``p`` stands at the chunk's end, with nothing else
            reserved (looked up, not copied: the table holds every robot's nodes)."""
            if n == at:
                return me
            s = self.holders.get(n)
            return None if s == me else s

        resume = next((s for s in p.stops if s > end), len(p.route) - 1)
        node = _first_held(p.route[end + 1 : resume + 1], holder_of, me)
        first = node
        needed: set[str] = set()
        seen: set[str] = set()
        while node is not None:
            holder = holder_of(node)
            if holder is None:  # not reached: _first_held gives held nodes only
                return None
            if holder == p.serial:
                return first if p.node not in needed else None
            q = self.plans[holder]
            if holder in seen or q.finishing or not q.stopped or q.node != node:
                return None
            seen.add(holder)
            window = q.route[1 : q.next_stop() + 1]
            needed.update(window)
            node = _first_held(window, holder_of, holder)
        return None

    def release(self, serial: str) -> None:
        p = self.plans[serial]
        nodes, _ = self.scan(p)
        if not nodes:
            return
        for node in nodes:
            self.holders[node] = serial
        self.plans[serial] = replace(p, released=p.released + len(nodes))
        self.released.setdefault(serial, []).extend(nodes)

    # --- changing routes -------------------------------------------------------------------

    def reroute(
        self,
        serial: str,
        head: tuple[str, ...],
        resume: int,
        reason: RerouteReason,
        extra_stops: Iterable[int] = (),
    ) -> None:
        """Replace ``route[released-1 .. resume]`` by ``head`` (which runs from the decision
        point to ``route[resume]``); the base and the route after ``resume`` stay."""
        p = self.plans[serial]
        route = p.route[: p.released] + head[1:] + p.route[resume + 1 :]
        shift = p.released + len(head) - 2 - resume
        stops = [s for s in p.stops if s < p.released]
        stops += [s + shift for s in p.stops if s >= p.released]
        stops += list(extra_stops)
        new = replace(p, route=route, stops=tuple(sorted(set(stops))))
        self.plans[serial] = new
        self.reroutes[serial] = Reroute(serial, new.route, new.stops, reason)

    def detour_ok(self, p: RobotPlan, resume: int, detour: tuple[str, ...]) -> bool:
        direct = route_length(self.roadmap, p.route[p.released - 1 : resume + 1])
        longer = route_length(self.roadmap, detour)
        return longer <= self.policy.detour_ratio * direct + self.policy.detour_slack

    def sidestep(self, serial: str, keep_clear: Collection[str], come_back: bool = False) -> bool:
        """Send stopped robot ``serial`` to the nearest free node off ``keep_clear``, then on.

        ``come_back``: return the same way and resume the old route (used to let an idle robot
        out, so that the next round still sees that robot on the route and moves it away);
        otherwise continue by the shortest route from the spot.
        """
        p = self.plans[serial]
        if not p.stopped or p.finishing:
            return False
        resume = p.next_stop()
        dist, pred = shortest_tree(self.roadmap, p.node, self.obstacles(serial))
        spots = [n for n in dist if n != p.node and n not in keep_clear]
        if not spots:
            return False
        spot = min(spots, key=lambda n: (dist[n], n not in self.junctions, n))
        there = path_to(pred, p.node, spot)
        back: tuple[str, ...] | None = tuple(reversed(there)) + p.route[1 : resume + 1]
        if not come_back or not self._drivable(tuple(reversed(there))):
            back = plan_route_avoiding(self.roadmap, spot, p.route[resume], ())
        if back is None:
            return False
        self.reroute(serial, there + back[1:], resume, RerouteReason.SIDESTEP, [len(there) - 1])
        self.release(serial)
        return True

    def _drivable(self, route: tuple[str, ...]) -> bool:
        succ = topology(self.roadmap).successors
        return all(any(n == b for n, _ in succ[a]) for a, b in itertools.pairwise(route))

    def evacuate(self, idle: str, for_serial: str, depth: int = 0) -> bool:
        """Send idle robot ``idle`` to a free parking node off ``for_serial``'s way.

        When its only way out runs through ``for_serial`` (stopped), that robot steps aside
        first. False when nothing can be done this round; that answer is kept until a plan
        changes (many robots may wait behind one idle robot).
        """
        version, no_way = self._no_way
        if version != self.plans.version:
            no_way = set()
            self._no_way = (self.plans.version, no_way)
        if (idle, for_serial, depth) in no_way:
            return False  # tried this round, and nothing has changed since
        if self._evacuate(idle, for_serial, depth):
            return True
        if self.plans.version == version:
            no_way.add((idle, for_serial, depth))
        return False

    def _evacuate(self, idle: str, for_serial: str, depth: int) -> bool:
        i, r = self.plans[idle], self.plans[for_serial]
        dist, pred = shortest_tree(self.roadmap, i.node, self.obstacles(idle, for_serial))
        target = self._parking_spot(i, r, dist)
        if target is None:
            return self._evacuate_boxed_in(idle, for_serial, depth)
        path = path_to(pred, i.node, target)
        if any(self.holders.get(n) == for_serial for n in path):
            return self.sidestep(for_serial, set(path), come_back=True)
        self.plans[idle] = RobotPlan(idle, path, 1, (), i.priority)
        self.evacuations[idle] = Evacuation(idle, path, for_serial)
        self.release(idle)
        return True

    def _evacuate_boxed_in(self, idle: str, for_serial: str, depth: int) -> bool:
        """``idle`` has no way out because other idle robots stand in it: the nearest of those
        on its way to a free spot is moved first (one per round, a few levels deep)."""
        if depth >= 3:
            return False
        i, r = self.plans[idle], self.plans[for_serial]
        # the idle robots' nodes count as free (``idle``'s own is where the search starts)
        others_idle = self.idle_at()
        blocked = self.obstacles(idle, for_serial).but(others_idle)
        dist, pred = shortest_tree(self.roadmap, i.node, blocked)
        target = self._parking_spot(i, r, dist)
        if target is None:
            return False
        path = path_to(pred, i.node, target)
        first = next((others_idle[n] for n in path[1:] if n in others_idle), None)
        return first is not None and self.evacuate(first, idle, depth + 1)

    def _parking_spot(self, i: RobotPlan, r: RobotPlan, dist: dict[str, float]) -> str | None:
        """Nearest reachable free node: parking off every route, any node off every route,
        then the same off the route of the robot being let through (a robot boxed in at an
        induction by robots queuing for it may have no other way to let the first through).
        Never an induction or a charger on a spur, nor its way in: a robot left there would
        shut the next robot out, or the robot inside in."""
        busy, holders, parked = self.plans.busy, self.holders, self.plans.parked
        no_parking = self._no_parking
        parking = self._parking_nodes
        route = set(r.route)
        tiers = ((parking, busy), (None, busy), (parking, route), (None, route))
        for candidates, avoid in tiers:
            # ``dist`` lists the nodes nearest first (ties by id): the first that fits is it;
            # a node reserved or parked on is taken
            spot = next(
                (
                    n
                    for n in dist
                    if (candidates is None or n in candidates)
                    and n not in holders
                    and n not in parked
                    and n not in avoid
                    and n not in no_parking
                ),
                None,
            )
            if spot is not None:
                return spot
        return None

    # --- the round -------------------------------------------------------------------------

    def clear_parked_blockers(self) -> None:
        """Route around, or move away, robots that stand for good on a route before its next
        stop. Proactive: it happens as soon as the blocker is on the route, not when a robot
        bumps into it."""
        for serial in self.order:
            p = self.plans[serial]
            if p.finishing:
                continue
            parked = self.parked()
            resume = p.next_stop()
            window = p.route[p.released : resume + 1]
            hit = next((n for n in window if parked.get(n, serial) != serial), None)
            if hit is None:
                continue
            blocker = self.plans[parked[hit]]
            target = p.route[resume]
            detour = None
            if parked.get(target, serial) == serial:
                avoid = {n for n, s in parked.items() if s != serial}
                detour = plan_route_avoiding(self.roadmap, p.decision_point, target, avoid)
                if detour is not None and (self.detour_ok(p, resume, detour) or not blocker.idle):
                    self.reroute(serial, detour, resume, RerouteReason.AROUND_IDLE)
                    continue
            if blocker.serial in self.staying:
                continue  # it leaves once its action ends: driven around above, or waited for
            if blocker.idle and self.evacuate(blocker.serial, serial):
                continue
            if detour is not None:
                self.reroute(serial, detour, resume, RerouteReason.AROUND_IDLE)

    def release_all(self) -> None:
        for serial in self.order:
            self.release(serial)

    def break_deadlocks(self) -> None:
        """Find stopped robots that wait on each other's node in a cycle; per cycle, re-route
        its lowest-priority member around the reserved nodes, or make it step aside."""
        waits_on: dict[str, str] = {}
        for serial in self.order:
            p = self.plans[serial]
            if p.finishing or not p.stopped:
                continue
            nodes, blocked = self.scan(p)
            if nodes or blocked is None:
                continue
            holder = self.holders[blocked]
            self.waits.append(Wait(serial, blocked, holder))
            if self.plans[holder].stopped and self.plans[holder].node == blocked:
                waits_on[serial] = holder
        rank = {s: i for i, s in enumerate(self.order)}
        for cycle in wait_cycles(waits_on):
            for serial in sorted(cycle, key=lambda s: -rank[s]):
                if self._unlock(serial, [s for s in cycle if s != serial]):
                    break

    def _unlock(self, serial: str, others: list[str]) -> bool:
        p = self.plans[serial]
        resume = p.next_stop()
        detour = plan_route_avoiding(self.roadmap, p.node, p.route[resume], self.obstacles(serial))
        if detour is not None:
            self.reroute(serial, detour, resume, RerouteReason.DEADLOCK)
            self.release(serial)
            if serial in self.released:
                return True
        keep_clear = {n for o in others for n in self.plans[o].route}
        return self.sidestep(serial, keep_clear) and serial in self.released

    def result(self) -> TrafficPlan:
        state = TrafficState.of(self.plans.values(), self.holders)
        return TrafficPlan(
            state,
            tuple(Release(s, tuple(n)) for s, n in sorted(self.released.items())),
            tuple(self.reroutes[s] for s in sorted(self.reroutes)),
            tuple(self.evacuations[s] for s in sorted(self.evacuations)),
            tuple(self.waits),
        )


class _Obstacles:
    """The nodes held or parked on by a robot not in ``skip``, less ``passable``: a view over
    the round's tables, so that a route search does not copy the reservation table."""

    __slots__ = ("holders", "parked", "passable", "skip")

    def __init__(
        self,
        holders: Mapping[str, str],
        parked: Mapping[str, str],
        skip: frozenset[str],
        passable: Collection[str] = (),
    ) -> None:
        self.holders = holders
        self.parked = parked
        self.skip = skip
        self.passable = passable

    def __contains__(self, node: object) -> bool:
        if not isinstance(node, str) or node in self.passable:
            return False
        skip = self.skip
        held = self.holders.get(node)
        if held is not None and held not in skip:
            return True
        parked = self.parked.get(node)
        return parked is not None and parked not in skip

    def but(self, passable: Collection[str]) -> _Obstacles:
        """The same, with the nodes of ``passable`` taken as free."""
        return _Obstacles(self.holders, self.parked, self.skip, passable)


@lru_cache(maxsize=8)
def _no_parking(roadmap: Roadmap, parking: tuple[str, ...]) -> frozenset[str]:
    """Dead ends robots drive into to work (inductions, chargers: not ``parking`` spurs) and
    their ways in: never a spot to leave an idle robot on (the same for every round)."""
    succ = topology(roadmap).successors
    work_ends = topology(roadmap).dead_ends - frozenset(parking)
    return frozenset(work_ends | {n for d in work_ends for n, _ in succ[d]})


def _first_held(
    nodes: Iterable[str], holder_of: Callable[[str], str | None], serial: str
) -> str | None:
    """The first of ``nodes`` held by a robot other than ``serial``."""
    return next((n for n in nodes if holder_of(n) not in (None, serial)), None)


def wait_cycles(waits_on: dict[str, str]) -> list[list[str]]:
    """Cycles of a graph where every robot waits on at most one other."""
    out: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(waits_on):
        walk: list[str] = []
        node: str | None = start
        while node is not None and node not in seen and node not in walk:
            walk.append(node)
            node = waits_on.get(node)
        if node is not None and node in walk:
            out.append(walk[walk.index(node) :])
        seen.update(walk)
    return out

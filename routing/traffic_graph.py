"""The roadmap as the traffic planner sees it: adjacency, stop-able nodes, constrained routes.

A *junction* is a node where a robot may wait without sealing a corridor: a node whose undirected
degree is not two (crossings, T-junctions, dead ends). Chains of degree-two nodes between
junctions are *corridors*; the planner never lets a robot stop inside one unless one of its stops
is there (see :mod:`routing.traffic`). Pure; everything is derived from the roadmap.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Container, Mapping
from dataclasses import dataclass
from functools import lru_cache

from routing.roadmap import Roadmap


@dataclass(frozen=True)
class Topology:
    """Directed adjacency with edge lengths, and the junction nodes."""

    successors: Mapping[str, tuple[tuple[str, float], ...]]
    junctions: frozenset[str]
    dead_ends: frozenset[str]  # nodes with one neighbour (an induction on a spur, a charger)
    predecessors: Mapping[str, tuple[str, ...]]  # the nodes with an edge to each node


@lru_cache(maxsize=8)
def topology(roadmap: Roadmap) -> Topology:
    """Adjacency and junctions of ``roadmap`` (cached per roadmap)."""
    succ: dict[str, list[tuple[str, float]]] = {n.id: [] for n in roadmap.nodes}
    neighbours: dict[str, set[str]] = {n.id: set() for n in roadmap.nodes}
    for e in roadmap.edges:
        length = max(roadmap.length(e.start, e.end), 1e-6)
        succ[e.start].append((e.end, length))
        if e.bidirectional:
            succ[e.end].append((e.start, length))
        neighbours[e.start].add(e.end)
        neighbours[e.end].add(e.start)
    junctions = frozenset(n for n, near in neighbours.items() if len(near) != 2)
    pred: dict[str, list[str]] = {n: [] for n in succ}
    for n, out in succ.items():
        for m, _ in out:
            pred[m].append(n)
    return Topology(
        {n: tuple(sorted(s)) for n, s in succ.items()},
        junctions,
        frozenset(n for n, near in neighbours.items() if len(near) == 1),
        {n: tuple(sorted(p)) for n, p in pred.items()},
    )


def shortest_tree(
    roadmap: Roadmap, start: str, blocked: Container[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    """Dijkstra from ``start`` over nodes not in ``blocked`` (``start`` itself is never blocked).

    Returns the distance to every reachable node, nearest first (ties by node id), and each
    one's predecessor. Ties are broken by node id, so the result is deterministic.
    """
    succ = topology(roadmap).successors
    dist: dict[str, float] = {start: 0.0}
    pred: dict[str, str] = {}
    heap: list[tuple[float, str]] = [(0.0, start)]
    done: dict[str, float] = {}  # in the order settled: nearest first, ties by node id
    while heap:
        d, node = heapq.heappop(heap)
        if node in done:
            continue
        done[node] = d
        for nxt, length in succ[node]:
            if nxt in blocked or nxt in done:
                continue
            nd = d + length
            if nd < dist.get(nxt, float("inf")) - 1e-9:
                dist[nxt] = nd
                pred[nxt] = node
                heapq.heappush(heap, (nd, nxt))
    return done, pred


def path_to(pred: Mapping[str, str], start: str, goal: str) -> tuple[str, ...]:
    """The path from ``start`` to ``goal`` in a predecessor map from :func:`shortest_tree`."""
    out = [goal]
    while out[-1] != start:
        out.append(pred[out[-1]])
    return tuple(reversed(out))


def plan_route_avoiding(
    roadmap: Roadmap, start: str, goal: str, blocked_nodes: Container[str]
) -> tuple[str, ...] | None:
    """A shortest route from ``start`` to ``goal`` through no node of ``blocked_nodes``.

    ``start`` may itself be blocked (it is where the robot stands); a blocked ``goal`` has no
    route. ``None`` when no such route exists.

    A* search, guided by the roadmap's shortest distances with nothing blocked (never longer
    than the way around what is blocked, so the route found is a shortest one): on a large map
    it looks at the nodes near the way rather than at the whole map. Ties are broken by node
    id, so the result is deterministic.
    """
    if start == goal:
        return (start,)
    if goal in blocked_nodes:
        return None
    topo = topology(roadmap)
    if _walled_in(topo, goal, start, blocked_nodes):
        return None
    succ = topo.successors
    to_goal = _distances_to(roadmap, goal)
    index = roadmap.index
    best: dict[str, float] = {start: 0.0}
    pred: dict[str, str] = {}
    heap: list[tuple[float, float, str]] = [(to_goal[index(start)], 0.0, start)]
    done: set[str] = set()
    while heap:
        _, d, node = heapq.heappop(heap)
        if node == goal:
            return path_to(pred, start, goal)
        if node in done:
            continue
        done.add(node)
        for nxt, length in succ[node]:
            if nxt in done or nxt in blocked_nodes:
                continue
            nd = d + length
            if nd < best.get(nxt, float("inf")) - 1e-9:
                best[nxt] = nd
                pred[nxt] = node
                heapq.heappush(heap, (nd + to_goal[index(nxt)], nd, nxt))
    return None


POCKET = 64  # nodes: a goal reachable from no more than this many nodes is searched backwards


def _walled_in(topo: Topology, goal: str, start: str, blocked: Container[str]) -> bool:
    """``goal`` lies in a small pocket of the map (at most :data:`POCKET` nodes lead to it,
    with ``blocked`` nodes closed) that ``start`` is not in: no route, found without searching
    the rest of the map (a search that fails looks at every node it can reach, thousands on a
    large map). False when the pocket is larger: the search then decides."""
    pred = topo.predecessors
    seen = {goal}
    frontier = [goal]
    while frontier:
        node = frontier.pop()
        for prev in pred[node]:
            if prev == start:
                return False
            if prev in seen or prev in blocked:
                continue
            seen.add(prev)
            if len(seen) > POCKET:
                return False
            frontier.append(prev)
    return True


@lru_cache(maxsize=64)
def _distances_to(roadmap: Roadmap, goal: str) -> list[float]:
    """Shortest distance from every node (by roadmap index) to ``goal`` with nothing blocked;
    the column of the roadmap's distance table, as a list (read node by node)."""
    column: list[float] = roadmap.matrix[:, roadmap.index(goal)].tolist()
    return column


def route_length(roadmap: Roadmap, route: tuple[str, ...]) -> float:
    """Length in metres of a route along its nodes."""
    return sum(roadmap.length(a, b) for a, b in itertools.pairwise(route))

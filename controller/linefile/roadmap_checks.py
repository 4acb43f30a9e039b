"""The robot map as the controller will use it: small enough for its route tables, and every
place a robot is sent to reachable from where robots start and connected back to the line.

``run`` builds dense all-pairs route tables (:class:`routing.roadmap.Roadmap`), so a map over
:data:`routing.roadmap.MAX_NODES` nodes would fail there allocating gigabytes; it is refused
here with the limit stated. Edges are directed (``bidirectional: false`` is one way), and a
place robots are sent to (a storage location, a charger, an induction, a parking node) or start
from (a home node) must lie in one strongly connected part with the robots' home nodes: reached
from the first robot's home and able to drive back to it. Then every robot can reach every
such place, and get from there to every other, an induction included.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

from kernel.config.model import LineConfig
from routing.roadmap import MAX_NODES, table_bytes

Path = tuple[str | int, ...]


def _reach(start: str, links: dict[str, list[str]]) -> set[str]:
    seen = {start}
    todo = deque([start])
    while todo:
        for nxt in links[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _places(cfg: LineConfig) -> Iterable[tuple[Path, str, str]]:
    """(path in the document, node, what stands there) for every place robots use."""
    ra = cfg.robots
    for i, r in enumerate(ra.fleet):
        yield ("robots", "fleet", i, "home"), r.home, f"home node of robot {r.serial!r}"
    for i, loc in enumerate(ra.storage_locations):
        yield ("robots", "storage_locations", i, "node"), loc.node, f"storage location {loc.id!r}"
    for i, ind in enumerate(ra.inductions):
        yield ("robots", "inductions", i, "node"), ind.node, f"induction {ind.id!r}"
    for i, ch in enumerate(ra.chargers):
        yield ("robots", "chargers", i, "node"), ch.node, f"charger {ch.id!r}"
    for i, node in enumerate(ra.traffic.parking):
        yield ("robots", "traffic", "parking", i), node, "parking node"


def check_roadmap(cfg: LineConfig) -> list[tuple[Path, str]]:
    """Problems with the map's size and connections, as (path, message)."""
    ra = cfg.robots
    n = len(ra.nodes)
    if n > MAX_NODES:
        return [
            (
                ("robots", "nodes"),
                f"{n} nodes is more than the {MAX_NODES} a map may have: the controller keeps "
                f"a route table for every pair of nodes, {table_bytes(n) / 2**30:.1f} GiB for "
                "this map",
            )
        ]
    node_ids = {node.id for node in ra.nodes}
    if not ra.fleet or ra.fleet[0].home not in node_ids:
        return []  # no anchor; the missing fleet or home node is reported on its own
    forward: dict[str, list[str]] = defaultdict(list)
    backward: dict[str, list[str]] = defaultdict(list)
    for e in ra.edges:
        if e.start not in node_ids or e.end not in node_ids:
            continue  # a dangling edge is reported on its own
        forward[e.start].append(e.end)
        backward[e.end].append(e.start)
        if e.bidirectional:
            forward[e.end].append(e.start)
            backward[e.start].append(e.end)
    anchor = ra.fleet[0]
    reached = _reach(anchor.home, forward)
    returns = _reach(anchor.home, backward)
    where = f"home node {anchor.home!r} of robot {anchor.serial!r}"
    problems: list[tuple[Path, str]] = []
    for path, node, what in _places(cfg):
        if node not in node_ids:
            continue
        if node not in reached:
            problems.append(
                (path, f"{what} is on node {node!r}, which no route leads to from {where}")
            )
        elif node not in returns:
            problems.append(
                (path, f"{what} is on node {node!r}, from which no route leads back to {where}")
            )
    return problems

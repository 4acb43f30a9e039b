"""The robot area as a weighted graph: shortest routes and travel distances.

Built once from the map's nodes and edges; all-pairs distances come from scipy's shortest-path
routine over a sparse matrix, so a query is an array lookup. The tables are dense (N x N), so a
map may have at most :data:`MAX_NODES` nodes; the line file's checks refuse a larger one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path


@dataclass(frozen=True)
class Node:
    id: str
    x: float
    y: float
    map_id: str


@dataclass(frozen=True)
class Edge:
    start: str
    end: str
    bidirectional: bool = True
    max_speed: float | None = None


# Distances (float64) and predecessors (int32) for every pair of nodes: 12 bytes a pair, about
# 190 MB at the limit, plus scipy's working copy while they are computed.
MAX_NODES = 4000
BYTES_PER_PAIR = 12


def table_bytes(nodes: int) -> int:
    """Memory the all-pairs tables of a map with ``nodes`` nodes take."""
    return nodes * nodes * BYTES_PER_PAIR


class NoRoute(Exception):
    """Two nodes are not connected."""


class MapTooLarge(ValueError):
    """A map with more nodes than the all-pairs tables are sized for."""


@dataclass(frozen=True)
class Roadmap:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _dist: NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _pred: NDArray[np.int32] = field(init=False, repr=False, compare=False)
    _edge: dict[tuple[str, str], Edge] = field(init=False, repr=False, compare=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        # computed once: a roadmap keys caches that are looked up on every planning step
        return self._hash

    def __post_init__(self) -> None:
        index = {n.id: i for i, n in enumerate(self.nodes)}
        n = len(self.nodes)
        if n > MAX_NODES:
            raise MapTooLarge(
                f"{n} nodes; at most {MAX_NODES} (the route tables would take "
                f"{table_bytes(n) / 2**30:.1f} GiB)"
            )
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        edge_of: dict[tuple[str, str], Edge] = {}
        for e in self.edges:
            a, b = index[e.start], index[e.end]
            length = max(self.length(e.start, e.end, index), 1e-6)
            rows.append(a)
            cols.append(b)
            weights.append(length)
            edge_of[(e.start, e.end)] = e
            if e.bidirectional:
                rows.append(b)
                cols.append(a)
                weights.append(length)
                edge_of[(e.end, e.start)] = e
        graph = csr_matrix((weights, (rows, cols)), shape=(n, n))
        dist, pred = shortest_path(graph, method="D", directed=True, return_predecessors=True)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_dist", dist)
        object.__setattr__(self, "_pred", pred)
        object.__setattr__(self, "_edge", edge_of)
        object.__setattr__(self, "_hash", hash((self.nodes, self.edges)))

    def length(self, a: str, b: str, index: dict[str, int] | None = None) -> float:
        """Straight-line length between two nodes, in metres."""
        idx = index if index is not None else self._index
        na, nb = self.nodes[idx[a]], self.nodes[idx[b]]
        return math.hypot(na.x - nb.x, na.y - nb.y)

    def index(self, node_id: str) -> int:
        """Row/column of ``node_id`` in :attr:`matrix`."""
        return self._index[node_id]

    @property
    def matrix(self) -> NDArray[np.float64]:
        """All-pairs shortest travel distances in metres (``inf`` when not connected)."""
        return self._dist

    def node(self, node_id: str) -> Node:
        return self.nodes[self._index[node_id]]

    def has(self, node_id: str) -> bool:
        return node_id in self._index

    def edge(self, a: str, b: str) -> Edge:
        return self._edge[(a, b)]

    def distance(self, a: str, b: str) -> float:
        """Shortest travel distance in metres (``inf`` when not connected)."""
        return float(self._dist[self._index[a], self._index[b]])

    def distances_from(self, a: str, targets: Sequence[str]) -> NDArray[np.float64]:
        row: NDArray[np.float64] = self._dist[self._index[a]]
        picked: NDArray[np.float64] = row[[self._index[t] for t in targets]]
        return picked

    def route(self, a: str, b: str) -> list[str]:
        """Node ids of a shortest route from ``a`` to ``b``, both included."""
        ia, ib = self._index[a], self._index[b]
        if ia == ib:
            return [a]
        if not math.isfinite(self._dist[ia, ib]):
            raise NoRoute(f"no route from {a} to {b}")
        path = [ib]
        while path[-1] != ia:
            path.append(int(self._pred[ia, path[-1]]))
        return [self.nodes[i].id for i in reversed(path)]

    def tour(self, start: str, stops: Iterable[str]) -> list[str]:
        """A route from ``start`` through ``stops`` in order (repeated nodes merged)."""
        out = [start]
        for stop in stops:
            out.extend(self.route(out[-1], stop)[1:])
        return out

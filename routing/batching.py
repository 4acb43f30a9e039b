"""B2C batching: several small orders on one robot trip, one tote each, up to the robot's totes.

Greedy seed-and-grow, deterministic: the most urgent unbatched order seeds a batch; orders whose
due time is within ``due_window`` of the seed's join it, cheapest first by the extra travel they
add to the batch's pick tour (nearest-neighbour tour length on the roadmap), until the batch
holds ``capacity`` totes or no candidate adds less than ``max_detour`` metres. B2B orders and
orders that need more than one tote are never batched. Pure: distances and orders in, batches out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Candidate:
    order_id: str
    due: float  # seconds, same axis for all candidates
    priority: int
    nodes: tuple[int, ...]  # pick nodes, indexes into the distance matrix
    batchable: bool = True  # B2C and fits one tote


@dataclass(frozen=True)
class Batch:
    order_ids: tuple[str, ...]
    tour_length: float  # metres of the nearest-neighbour tour through all pick nodes


def tour_length(dist: NDArray[np.float64], nodes: Sequence[int]) -> float:
    """Nearest-neighbour tour from the first node through all others (deterministic)."""
    if not nodes:
        return 0.0
    left = sorted(set(nodes[1:]) - {nodes[0]})
    here, total = nodes[0], 0.0
    while left:
        nxt = min(left, key=lambda n: (float(dist[here, n]), n))
        total += float(dist[here, nxt])
        left.remove(nxt)
        here = nxt
    return total


def make_batches(
    dist: NDArray[np.float64],
    candidates: Sequence[Candidate],
    capacity: int,
    *,
    due_window: float = 3600.0,
    max_detour: float = 40.0,
) -> list[Batch]:
    """Partition the candidates into batches (most urgent first); every candidate appears once."""
    order = sorted(candidates, key=lambda c: (c.due, -c.priority, c.order_id))
    taken: set[str] = set()
    batches: list[Batch] = []
    for seed in order:
        if seed.order_id in taken:
            continue
        taken.add(seed.order_id)
        members = [seed]
        nodes = list(seed.nodes)
        length = tour_length(dist, nodes)
        if seed.batchable:
            while len(members) < capacity:
                best: tuple[float, str, Candidate] | None = None
                for c in order:
                    if c.order_id in taken or not c.batchable or c.due - seed.due > due_window:
                        continue
                    extra = tour_length(dist, nodes + list(c.nodes)) - length
                    if extra <= max_detour and (best is None or (extra, c.order_id) < best[:2]):
                        best = (extra, c.order_id, c)
                if best is None:
                    break
                joined = best[2]
                taken.add(joined.order_id)
                members.append(joined)
                nodes += list(joined.nodes)
                length = tour_length(dist, nodes)
        batches.append(Batch(tuple(m.order_id for m in members), length))
    return batches

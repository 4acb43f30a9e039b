"""Which order goes next, from which shelves, on which robot, along which nodes. Pure.

Release policy: an order is releasable when inside its delivery window (B2B); releasable orders
go earliest due time first, then higher priority, then first come. Which robot takes which order
is decided in ``routing.assignment``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from routing.roadmap import Roadmap


@dataclass(frozen=True)
class PendingOrder:
    order_id: str
    due_at: datetime
    priority: int  # 0..9, higher first
    seq: int  # arrival order
    deliver_from: datetime | None = None


@dataclass(frozen=True)
class LineDemand:
    line_id: str
    sku: str
    quantity: int  # in units (cases already multiplied out)


@dataclass(frozen=True)
class Pick:
    line_id: str
    sku: str
    location: str
    node: str
    quantity: int


@dataclass(frozen=True)
class Shortage:
    sku: str
    missing: int


@dataclass(frozen=True)
class IdleRobot:
    serial: str
    node: str


ReleaseKey = tuple[datetime, int, int]


def release_key(p: PendingOrder) -> ReleaseKey:
    """Where an order stands in the release order: earliest due first, then the highest
    priority, then the first received. Keys compare without looking at other orders, so a
    queue can be kept sorted as orders come and go."""
    return (p.due_at, -p.priority, p.seq)


def releasable(p: PendingOrder, now: datetime) -> bool:
    """Inside its delivery window (or without one)."""
    return p.deliver_from is None or p.deliver_from <= now


def release_order(pending: Iterable[PendingOrder], now: datetime) -> list[PendingOrder]:
    """Orders that may be released now, in the order they should go."""
    return sorted((p for p in pending if releasable(p, now)), key=release_key)


def allocate(
    lines: Sequence[LineDemand],
    stock: Mapping[str, Mapping[str, int]],
    location_node: Mapping[str, str],
) -> list[Pick] | Shortage:
    """Take each line from as few locations as possible (largest quantity first).

    ``stock`` is sku -> location -> available units. Returns the picks, or the first shortage.
    """
    taken: dict[tuple[str, str], int] = {}
    picks: list[Pick] = []
    for line in lines:
        need = line.quantity
        places = sorted(stock.get(line.sku, {}).items(), key=lambda kv: (-kv[1], kv[0]))
        for location, qty in places:
            free = qty - taken.get((line.sku, location), 0)
            if free <= 0:
                continue
            n = min(free, need)
            taken[(line.sku, location)] = taken.get((line.sku, location), 0) + n
            picks.append(Pick(line.line_id, line.sku, location, location_node[location], n))
            need -= n
            if need == 0:
                break
        if need > 0:
            return Shortage(line.sku, need)
    return picks


def order_stops(roadmap: Roadmap, start: str, nodes: Iterable[str]) -> list[str]:
    """Visit order for pick nodes: nearest neighbour from ``start`` (deterministic)."""
    left = sorted(set(nodes))
    here = start
    out: list[str] = []
    while left:
        nxt = min(left, key=lambda n: (roadmap.distance(here, n), n))
        out.append(nxt)
        left.remove(nxt)
        here = nxt
    return out


def nearest(roadmap: Roadmap, start: str, candidates: Sequence[str]) -> str:
    """The candidate node closest to ``start`` by travel distance."""
    return min(candidates, key=lambda n: (roadmap.distance(start, n), n))

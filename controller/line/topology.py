"""Turn the line file into the immutable inputs the pure routing functions take."""

from __future__ import annotations

from collections.abc import Sequence

from kernel.config.model import ChuteKind, LineConfig
from routing.roadmap import Edge, Node, Roadmap
from routing.sortation import SortPlan


def roadmap(cfg: LineConfig) -> Roadmap:
    ra = cfg.robots
    return Roadmap(
        nodes=tuple(Node(n.id, n.x, n.y, n.map_id or ra.map_id) for n in ra.nodes),
        edges=tuple(Edge(e.start, e.end, e.bidirectional, e.max_speed) for e in ra.edges),
    )


REPLENISHMENT_DESTINATION = "@replenishment"  # not a valid destination id of the line file


def sort_plan(cfg: LineConfig) -> SortPlan:
    """The sorter's plan from the line file; AS/RS totes for replenishment go to the
    chutes of kind ``replenishment`` under :data:`REPLENISHMENT_DESTINATION`."""
    s = cfg.conveyor.sorter
    dynamic = s.b2b_allocation.mode == "dynamic"
    chutes: dict[str, str | Sequence[str]] = dict(s.sort_plan)
    replenishment = tuple(c.id for c in s.chutes if c.kind is ChuteKind.REPLENISHMENT)
    if replenishment:
        chutes[REPLENISHMENT_DESTINATION] = replenishment
    return SortPlan(
        chutes=chutes,
        reject_chute=s.reject_chute,
        b2b_chute=s.b2b_chute,
        max_passes=s.max_passes,
        b2b_pool=s.b2b_allocation.chutes if dynamic else (),
        b2b_overflow=s.b2b_allocation.overflow == "static",
    )


def location_nodes(cfg: LineConfig) -> dict[str, str]:
    return {loc.id: loc.node for loc in cfg.robots.storage_locations}


def case_quantities(cfg: LineConfig) -> dict[str, int]:
    return {s.sku: s.case_quantity for s in cfg.skus}

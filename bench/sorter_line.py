"""The sorter benchmark's line: the reference line's loop with the bench geometry, the totes fed
to it and where they go. Shared by the simulator process (:mod:`sorter_sim`) and the controller
side (:mod:`sorter_live`) of ``bench/sorter.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.line.topology import sort_plan
from controller.linefile.loader import load_reference
from kernel.config.model import LineConfig
from routing.sortation import SortPlan


def plan_of(line: LineConfig) -> SortPlan:
    return sort_plan(line)


@dataclass(frozen=True)
class Geometry:
    belt_speed: float  # m/s
    min_gap: float  # m between item fronts
    zone_length: float  # m, every zone


def bench_line(index: int, geo: Geometry, endpoint: str) -> LineConfig:
    """The reference line's loop with the bench geometry, its own id and endpoint."""
    line = load_reference(env={})
    c = line.conveyor
    zones = [z.model_copy(update={"length": geo.zone_length}) for z in c.zones]
    chutes = [
        ch.model_copy(update={"capacity": 1_000_000, "drain_seconds": 0.0})
        for ch in c.sorter.chutes
    ]
    conveyor = c.model_copy(
        update={
            "id": f"C{index + 1}",
            "opcua": c.opcua.model_copy(update={"endpoint": endpoint}),
            "belt_speed": geo.belt_speed,
            "min_gap": geo.min_gap,
            "zones": zones,
            "sorter": c.sorter.model_copy(update={"chutes": chutes}),
        }
    )
    return line.model_copy(update={"conveyor": conveyor})


def tote_id(sorter: int, phase: int, k: int) -> str:
    return f"T{sorter + 1}-{phase}-{k:07d}"


def destination(plan: SortPlan, k: int) -> str:
    keys = sorted(plan.chutes)
    return keys[(k * 7919) % len(keys)]


def last_divert_metres(line: LineConfig) -> float:
    """Distance from the start of the first zone to the end of the last divert zone."""
    ends, pos = {}, 0.0
    for z in line.conveyor.zones:
        pos += z.length
        ends[z.id] = pos
    return max(ends[d.zone] for d in line.conveyor.sorter.diverts)

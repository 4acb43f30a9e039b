"""``linectl asrs estimate``: expected crane cycle times and throughput for a rack and crane.

The figures come from ``routing.asrs_model``: the Bozer-White model (continuous rack, constant
speeds), the exact mean over the rack's locations and a seeded Monte Carlo run, both timed with
the crane kinematics the AS/RS simulator moves by (``routing.crane``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from kernel.config.model import LineConfig
from routing.asrs_model import (
    BozerWhite,
    Cycles,
    MonteCarlo,
    Sampled,
    bozer_white_for,
    grid_expectation,
    monte_carlo,
)
from routing.crane import Kinematics
from routing.rack import Rack


class EstimateInputError(ValueError):
    """Input the estimate cannot work with; the message says what is wrong."""


@dataclass(frozen=True)
class Estimate:
    rack: Rack
    crane: Kinematics
    model: BozerWhite
    grid: Cycles
    sampled: MonteCarlo

    @property
    def accelerates(self) -> bool:
        return self.crane.accel_x > 0 or self.crane.accel_y > 0


def kinematics(
    speed_x: float, speed_y: float, accel_x: float, accel_y: float, pd: float
) -> Kinematics:
    """The crane, or EstimateInputError naming the first bad value."""
    for name, value, positive in (
        ("--vx", speed_x, True),
        ("--vy", speed_y, True),
        ("--ax", accel_x, False),
        ("--ay", accel_y, False),
        ("--pd", pd, False),
    ):
        if not math.isfinite(value) or (value <= 0 if positive else value < 0):
            need = "a positive number" if positive else "zero or more"
            raise EstimateInputError(f"{name} must be {need}, not {value:g}")
    return Kinematics(speed_x, speed_y, accel_x, accel_y, pd)


def from_line(cfg: LineConfig, aisle_id: str | None) -> tuple[Rack, Kinematics]:
    """The rack and crane of an aisle of a line file (its first aisle when none is named)."""
    aisles = cfg.asrs.aisles
    if not aisles:
        raise EstimateInputError("the line file has no AS/RS aisles (asrs.aisles is empty)")
    if aisle_id is None:
        aisle = aisles[0]
    else:
        found = [a for a in aisles if a.id == aisle_id]
        if not found:
            known = ", ".join(a.id for a in aisles)
            raise EstimateInputError(
                f"aisle {aisle_id!r} is not in the line file (aisles: {known})"
            )
        aisle = found[0]
    rack = Rack(
        aisle.id, aisle.bays, aisle.levels, aisle.sides, aisle.bay_width, aisle.level_height
    )
    c = aisle.crane
    return rack, Kinematics(c.speed_x, c.speed_y, c.accel_x, c.accel_y, c.pd_time)


def estimate(rack: Rack, crane: Kinematics, samples: int, seed: int) -> Estimate:
    return Estimate(
        rack,
        crane,
        bozer_white_for(rack, crane),
        grid_expectation(rack, crane),
        monte_carlo(rack, crane, samples, seed),
    )


def _rel(value: float, reference: float) -> float:
    return value / reference - 1.0


def _cycles(c: Cycles) -> dict[str, Any]:
    return {
        "single": {"mean_s": c.single, "cycles_per_hour": c.single_per_hour},
        "dual": {
            "mean_s": c.dual,
            "cycles_per_hour": c.dual_per_hour,
            "loads_per_hour": c.dual_loads_per_hour,
        },
    }


def _sampled(s: Sampled) -> dict[str, Any]:
    return {"mean_s": s.mean, "ci95_s": [s.low, s.high], "cycles_per_hour": 3600.0 / s.mean}


def as_dict(e: Estimate) -> dict[str, Any]:
    r, k = e.rack, e.crane
    mc = e.sampled
    single, dual = _sampled(mc.single), _sampled(mc.dual)
    dual["loads_per_hour"] = 2.0 * dual["cycles_per_hour"]
    return {
        "rack": {
            "aisle": r.aisle,
            "bays": r.bays,
            "levels": r.levels,
            "sides": r.sides,
            "bay_width_m": r.bay_width,
            "level_height_m": r.level_height,
            "length_m": r.length,
            "height_m": r.height,
        },
        "crane": {
            "speed_x": k.speed_x,
            "speed_y": k.speed_y,
            "accel_x": k.accel_x,
            "accel_y": k.accel_y,
            "pd_time_s": k.pd_time,
        },
        "bozer_white": {"t_scale_s": e.model.t_scale, "shape_b": e.model.shape}
        | _cycles(e.model.cycles),
        "grid": _cycles(e.grid),
        "monte_carlo": {"samples": mc.single.n, "seed": mc.seed, "single": single, "dual": dual},
        "monte_carlo_vs_bozer_white": {
            "single": _rel(mc.single.mean, e.model.cycles.single),
            "dual": _rel(mc.dual.mean, e.model.cycles.dual),
        },
        "model_assumes_constant_speeds": e.accelerates,
    }


def table(e: Estimate) -> Table:
    r, k, mc = e.rack, e.crane, e.sampled
    accel = f"accel {k.accel_x:g}/{k.accel_y:g} m/s²" if e.accelerates else "no acceleration"
    t = Table(
        title=(
            f"AS/RS {r.aisle}: {r.bays} bays x {r.levels} levels ({r.length:.2f} m x "
            f"{r.height:.2f} m), crane {k.speed_x:g}/{k.speed_y:g} m/s, {accel}, "
            f"P&D {k.pd_time:g} s"
        ),
        title_justify="left",
        caption=(
            f"Bozer-White: continuous rack, T = {e.model.t_scale:.2f} s, b = {e.model.shape:.3f}. "
            "Rack grid: exact mean over the locations. "
            f"Monte Carlo: {mc.single.n} cycles of each kind, seed {mc.seed}, 95% interval. "
            + (
                "The Bozer-White model assumes constant speeds; the grid and Monte Carlo rows "
                "include the accelerations."
                if e.accelerates
                else "Random storage; a dual cycle moves two loads."
            )
        ),
        caption_justify="left",
    )
    for col in ("estimate", "single (s)", "single/h", "dual (s)", "dual/h", "loads/h (dual)"):
        t.add_column(col, justify="left" if col == "estimate" else "right")

    def row(name: str, c: Cycles, single: str, dual: str) -> None:
        t.add_row(
            name,
            single,
            f"{c.single_per_hour:.1f}",
            dual,
            f"{c.dual_per_hour:.1f}",
            f"{c.dual_loads_per_hour:.1f}",
        )

    m, g = e.model.cycles, e.grid
    row("Bozer-White", m, f"{m.single:.2f}", f"{m.dual:.2f}")
    row("rack grid", g, f"{g.single:.2f}", f"{g.dual:.2f}")
    row(
        "Monte Carlo",
        mc.cycles,
        f"{mc.single.mean:.2f} ± {mc.single.half_width:.2f}",
        f"{mc.dual.mean:.2f} ± {mc.dual.half_width:.2f}",
    )
    t.add_row(
        "MC vs model",
        f"{100 * _rel(mc.single.mean, m.single):+.2f} %",
        "",
        f"{100 * _rel(mc.dual.mean, m.dual):+.2f} %",
        "",
        "",
    )
    return t

"""AS/RS crane cycles: the Bozer-White model against the crane kinematics the simulator uses.

Section ``cycles``:
1. Several rack shapes (shape factor b from 0.25 to 1, the aisle the slower axis in some and the
   hoist in others), acceleration off, no P&D time (travel only, the strictest comparison): the
   Bozer-White expected single- and dual-command cycle, the exact mean over the rack's locations,
   and the mean of ``--samples`` Monte Carlo cycles of each kind over locations drawn uniformly
   from the rack, each timed by ``routing.crane`` (the simulator's own kinematics), with its 95%
   interval and its difference from the model. Target: within 2%.
2. The reference line's aisle A1 and its crane (``examples/reference-line.yaml``, P&D time
   included), without acceleration and with ``--accel-x``/``--accel-y`` (the model assumes
   constant speeds, so there the difference is the cost of accelerating, not an error).

    python bench/asrs.py [--sections cycles] [--samples 200000] [--seed 7]
                         [--accel-x 0.5] [--accel-y 0.5]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from controller.config.loader import load_reference
from routing.asrs_model import bozer_white_for, grid_expectation, monte_carlo
from routing.crane import Kinematics
from routing.rack import Rack

TARGET = 0.02  # Monte Carlo mean within 2% of the model without acceleration


@dataclass(frozen=True)
class Case:
    name: str
    rack: Rack
    crane: Kinematics


SHAPES = [
    Case("reference 40x10", Rack("S", 40, 10, 2, 0.7, 0.5), Kinematics(4.0, 1.0)),
    Case("long, slow aisle", Rack("S", 40, 10, 2, 0.7, 0.5), Kinematics(1.4, 1.0)),
    Case("low 60x8", Rack("S", 60, 8, 2, 0.7, 0.5), Kinematics(4.0, 1.0)),
    Case("big 100x20", Rack("S", 100, 20, 2, 0.5, 0.5), Kinematics(4.0, 1.0)),
    Case("tall 20x30", Rack("S", 20, 30, 2, 0.7, 0.5), Kinematics(3.0, 1.0)),
    Case("slow crane 30x12", Rack("S", 30, 12, 2, 0.7, 0.5), Kinematics(2.0, 0.5)),
    Case("square 16x16", Rack("S", 16, 16, 2, 1.0, 1.0), Kinematics(1.0, 1.0)),
]


def reference_cases(accel_x: float, accel_y: float) -> list[Case]:
    aisle = load_reference(env={}).asrs.aisles[0]
    c = aisle.crane
    rack = Rack(
        aisle.id, aisle.bays, aisle.levels, aisle.sides, aisle.bay_width, aisle.level_height
    )
    flat = Kinematics(c.speed_x, c.speed_y, 0.0, 0.0, c.pd_time)
    return [
        Case(f"reference {aisle.id}, no accel", rack, flat),
        Case(
            f"reference {aisle.id}, accel {accel_x:g}/{accel_y:g}",
            rack,
            replace(flat, accel_x=accel_x, accel_y=accel_y),
        ),
    ]


HEADER = (
    f"  {'case':30s} {'b':>5s}  {'cycle':6s} {'model s':>8s} {'grid s':>8s} "
    f"{'Monte Carlo s':>16s} {'vs model':>9s}  {'cycles/h':>8s}"
)


def compare(case: Case, samples: int, seed: int) -> tuple[float, float]:
    """Print the model, grid and Monte Carlo figures of one case; the relative differences."""
    model = bozer_white_for(case.rack, case.crane)
    grid = grid_expectation(case.rack, case.crane)
    mc = monte_carlo(case.rack, case.crane, samples, seed)
    diffs = []
    for label, m, g, s, per_hour in (
        ("single", model.cycles.single, grid.single, mc.single, 3600.0 / mc.single.mean),
        ("dual", model.cycles.dual, grid.dual, mc.dual, 3600.0 / mc.dual.mean),
    ):
        diff = s.mean / m - 1.0
        diffs.append(diff)
        name = case.name if label == "single" else ""
        shape = f"{model.shape:5.2f}" if label == "single" else ""
        print(
            f"  {name:30s} {shape:>5s}  {label:6s} {m:8.3f} {g:8.3f} "
            f"{s.mean:8.3f} ± {s.half_width:5.3f} {100 * diff:+8.2f}%  {per_hour:8.1f}"
        )
    return diffs[0], diffs[1]


def section_cycles(args: argparse.Namespace) -> None:
    print(
        f"cycles: {args.samples} Monte Carlo cycles of each kind per case, seed {args.seed}; "
        "dual cycles/h x 2 = loads/h"
    )
    print("rack shapes, acceleration off, travel only (no P&D time):")
    print(HEADER)
    t0 = time.perf_counter()
    worst = 0.0
    for case in SHAPES:
        worst = max(worst, *(abs(d) for d in compare(case, args.samples, args.seed)))
    flat, accel = reference_cases(args.accel_x, args.accel_y)
    print(
        f"reference line crane ({flat.crane.speed_x:g}/{flat.crane.speed_y:g} m/s, "
        f"P&D {flat.crane.pd_time:g} s) on a {flat.rack.bays}x{flat.rack.levels} rack:"
    )
    print(HEADER)
    worst = max(worst, *(abs(d) for d in compare(flat, args.samples, args.seed)))
    compare(accel, args.samples, args.seed)
    print(
        f"  largest |Monte Carlo - model| without acceleration: {100 * worst:.2f}% "
        f"(target {100 * TARGET:.0f}%: {'met' if worst <= TARGET else 'NOT MET'}); "
        f"with acceleration the model, which assumes constant speeds, is a lower bound"
    )
    print(f"  {time.perf_counter() - t0:.1f} s")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"cycles": section_cycles}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--sections",
        nargs="+",
        choices=sorted(SECTIONS),
        default=list(SECTIONS),
        help="which parts to run (default: all)",
    )
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--accel-x", type=float, default=0.5, help="m/s², reference crane with accel")
    ap.add_argument("--accel-y", type=float, default=0.5)
    args = ap.parse_args()
    if args.samples < 2 or args.accel_x <= 0 or args.accel_y <= 0:
        ap.error("--samples must be at least 2 and the accelerations positive")
    print(shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]))
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()

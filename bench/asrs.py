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

Section ``throughput``: throughput under the controller. The real AS/RS simulator (in-process,
time-scaled clock ``--time-scale``) with the OPC UA cranes adapter, the controller's AS/RS flows
and the inventory on a SQLite file in a temporary directory, on the reference line's two aisles.
A fixed seeded workload: ``--retrieves`` retrieves of random stored totes (``--concurrency``
open at a time), each tote set down at its aisle's P&D input ``--handling`` line seconds after it
came out, then stored where the storage policy says. Run once with dual commands and once
without, the same workload; prints loads/h and cycles/h, the mean cycle time per kind, and the
ratio.

    python bench/asrs.py [--sections cycles throughput] [--samples 200000] [--seed 7]
                         [--accel-x 0.5] [--accel-y 0.5]
                         [--retrieves 60] [--concurrency 12] [--handling 30] [--time-scale 60]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from controller.linefile.loader import load_reference
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


@dataclass(frozen=True)
class Throughput:
    dual: bool
    line_seconds: float
    loads: int
    cycles: dict[str, float]  # kind -> cycles
    mean_cycle: dict[str, float]  # kind -> mean line seconds


async def _throughput_run(args: argparse.Namespace, dual: bool, workdir: Path) -> Throughput:
    from controller.asrs.commands import journal_positions
    from controller.asrs.flows import AsrsFlows
    from controller.line.inventory import Inventory
    from controller.store.sqlite.store import SqliteOrderStore
    from devices.base import CranesAvailability, DeviceEvent
    from devices.opcua.cranes.adapter import OpcUaCranes
    from kernel.backoff import Backoff
    from kernel.clock import ScaledClock
    from kernel.metrics import Metrics
    from simulators.asrs import AsrsSimulator
    from simulators.broker import free_port

    base = load_reference(env={})
    config = base.model_copy(update={"asrs": base.asrs.model_copy(update={"dual_command": dual})})
    url = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    clock = ScaledClock(args.time_scale)
    metrics = Metrics()
    store = SqliteOrderStore(workdir / f"line-{'dual' if dual else 'single'}.db")
    await store.open()
    inventory = Inventory(config, store, clock, metrics)
    await inventory.open()
    cranes = OpcUaCranes(
        config, clock, metrics, url, last_sequences=await journal_positions(store, config),
        backoff=Backoff(0.05, 0.2),
    )  # fmt: skip
    rng = random.Random(args.seed)
    slots = asyncio.Semaphore(args.concurrency)
    up, finished = asyncio.Event(), asyncio.Event()
    back = 0
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with AsrsSimulator(config, clock, url) as sim, asyncio.TaskGroup() as tg:

        async def come_back(tote: str, aisle: str) -> None:
            nonlocal back
            await clock.sleep(args.handling)
            await sim.arrive_at_pd(tote, aisle)
            await flows.tote_at_pd(tote, aisle)
            back += 1

        def on_retrieved(tote: str, aisle: str, purpose: str, order_id: str | None) -> None:
            slots.release()
            tg.create_task(come_back(tote, aisle), name=f"bench.return[{tote}]")

        flows = AsrsFlows(
            config, cranes, inventory, store, clock, metrics, on_retrieved=on_retrieved,
            poll_seconds=1.0, seed=args.seed,
        )  # fmt: skip
        await flows.open()

        async def pump() -> None:
            while True:
                event = await events.get()
                await flows.handle(event)
                if isinstance(event, CranesAvailability) and event.available:
                    up.set()
                if back >= args.retrieves and not flows.open_requests():
                    finished.set()

        tasks = [
            tg.create_task(cranes.run(events), name="bench.cranes"),
            tg.create_task(pump(), name="bench.events"),
            tg.create_task(flows.run(), name="bench.plan"),
        ]
        await up.wait()
        t0 = clock.now()
        for _ in range(args.retrieves):
            await slots.acquire()
            rack = await flows.store.asrs_tote_locations()
            busy = {r.tote for r in flows.open_requests()}
            candidates = sorted(
                t for t, loc in rack.items() if not loc.startswith("PD:") and t not in busy
            )
            tote = rng.choice(candidates)
            await flows.request_retrieve(tote, "bench")
        await finished.wait()
        elapsed = clock.now() - t0
        for task in tasks:
            task.cancel()
    await store.close()

    def sample(name: str, kind: str) -> float:
        return sum(
            metrics.registry.get_sample_value(name, {"aisle": a.id, "kind": kind}) or 0.0
            for a in config.asrs.aisles
        )

    kinds = ("single_store", "single_retrieve", "dual")
    cycles = {k: sample("linectl_asrs_cycles_total", k) for k in kinds}
    mean = {
        k: sample("linectl_asrs_cycle_seconds_sum", k) / cycles[k] if cycles[k] else 0.0
        for k in kinds
    }
    return Throughput(dual, elapsed, 2 * args.retrieves, cycles, mean)


def section_throughput(args: argparse.Namespace) -> None:
    print(
        f"throughput under the controller: reference line (2 aisles), {args.retrieves} "
        f"retrieves of random stored totes ({args.concurrency} open at a time), each back at "
        f"its P&D input after {args.handling:g} line s and stored; seed {args.seed}, "
        f"time scale {args.time_scale:g}"
    )
    print(
        f"  {'mode':8s} {'line s':>8s} {'loads':>6s} {'loads/h':>8s} {'cycles':>7s} "
        f"{'cycles/h':>9s} {'dual':>5s}  {'mean s: store':>13s} {'retrieve':>9s} {'dual':>7s}"
    )
    results = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="linectl-bench-") as tmp:
        for dual in (False, True):
            r = asyncio.run(_throughput_run(args, dual, Path(tmp)))
            results[dual] = r
            cycles = sum(r.cycles.values())
            hours = r.line_seconds / 3600.0
            print(
                f"  {'dual' if dual else 'single':8s} {r.line_seconds:8.0f} {r.loads:6d} "
                f"{r.loads / hours:8.1f} {cycles:7.0f} {cycles / hours:9.1f} "
                f"{r.cycles['dual']:5.0f}  {r.mean_cycle['single_store']:13.1f} "
                f"{r.mean_cycle['single_retrieve']:9.1f} {r.mean_cycle['dual']:7.1f}"
            )
    single, dual_r = results[False], results[True]
    ratio = (dual_r.loads / dual_r.line_seconds) / (single.loads / single.line_seconds)
    print(f"  loads/h with dual commands / without: {ratio:.2f}")
    print(f"  {time.perf_counter() - t0:.1f} s")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "cycles": section_cycles,
    "throughput": section_throughput,
}


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
    # defaults keep the cranes saturated: enough totes out, back soon, so the cranes and not
    # the demand decide the rate (with few totes out, dual cycles wait for a store to pair)
    ap.add_argument("--retrieves", type=int, default=120, help="throughput: retrieves in all")
    ap.add_argument("--concurrency", type=int, default=40, help="throughput: retrieves open")
    ap.add_argument("--handling", type=float, default=5.0, help="throughput: line s out")
    ap.add_argument("--time-scale", type=float, default=60.0, help="throughput: line s per s")
    args = ap.parse_args()
    if args.retrieves < 1 or args.concurrency < 1 or args.handling < 0 or args.time_scale <= 0:
        ap.error("--retrieves/--concurrency at least 1, --handling >= 0, --time-scale > 0")
    if args.samples < 2 or args.accel_x <= 0 or args.accel_y <= 0:
        ap.error("--samples must be at least 2 and the accelerations positive")
    print(shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]))
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()

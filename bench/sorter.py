"""Sortation: the pure sort decision, scan-to-divert latency over OPC UA, sorter throughput.

1. ``routing.sortation.decide`` alone, on a seeded mix of reads like a live sorter's (mostly
   one known code; no-reads, multi-reads, unknown and cancelled totes, B2B totes that hold or
   are given a chute of their own, later passes, a full chute now and then, chute levels for
   balancing): p50/p99 per call.
2. ``--sorters`` conveyor simulators (real asyncua servers on free loopback ports, in a separate
   process so their CPU is not this process's) each fed ``--rate`` totes/h at its first zone, in
   real time (ScaledClock(1.0)). This process runs one ``OpcUaSorter`` adapter per simulator and,
   per sorter, the controller's sort path in order of arrival: on every ``ItemScanned`` the pure
   decision, then ``await divert()``. Measured from the event's ``received`` stamp to ``divert()``
   returning: p50/p99/max.
3. Items diverted per second against mechanical capacity (belt_speed / min_gap items/s), and the
   diverts the controller missed: an item with an accepted ``Divert`` that is scanned again
   before its divert completed rode past its divert point because the request came too late.
4. The same simulators and adapters, a second window at a ``--no-read`` rate (2 %): the
   recirculation share (scans that send the item round again) and the reject share.

The reference line's geometry (2.0 m/s, 0.8 m gap: 9,000 items/h) cannot take 30,000 items/h,
so the line is overridden (see the printed geometry): ``--belt-speed``, ``--zone-length`` and a
``min_gap`` that makes the capacity equal to ``--rate`` unless ``--min-gap`` says otherwise.
Chutes are emptied as fast as they fill, so a full chute never limits the sorter. The sort path
for each sorter handles its events one at a time, as the controller's event loop does.

    python bench/sorter.py [--sorters 4] [--rate 30000] [--duration 15] [--no-read 0.02]
                           [--calls 100000] [--belt-speed 3.0] [--zone-length 1.0]
                           [--min-gap M] [--tick-ms 2] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import statistics
import sys
import time

from sorter_line import Geometry, bench_line, plan_of
from sorter_live import live_runs
from sorter_report import percentile, report_latency, report_shares, report_throughput

from controller.linefile.loader import load_reference
from routing.sortation import ItemInfo, SortPlan, decide

# --- 1. the pure decision ---------------------------------------------------------------------

Call = tuple[
    tuple[str, ...], dict[str, ItemInfo], int, frozenset[str], dict[str, int], dict[str, str]
]


def decision_inputs(plan: SortPlan, calls: int, seed: int) -> list[Call]:
    """Scans as the controller hands them to ``decide``: codes, what it knows of them, pass."""
    rng = random.Random(seed)
    keys = sorted(plan.chutes)
    chutes = sorted({c for route in plan.routes.values() for c in route} | set(plan.b2b_pool))
    inputs: list[Call] = []
    for k in range(calls):
        code = f"TOTE-{k:07d}"
        info = ItemInfo(rng.choice(keys))
        r = rng.random()
        codes: tuple[str, ...] = (code,)
        known = {code: info}
        if r < 0.02:
            codes, known = (), {}  # no-read
        elif r < 0.025:
            codes = (code, f"GHOST-{k:06d}")  # multi-read, one of them known
        elif r < 0.03:
            known = {}  # a code the controller does not know
        elif r < 0.035:
            known = {code: ItemInfo(info.destination, cancelled=True)}
        elif r < 0.10:  # B2B without a plan entry: holds a chute, is given one, or waits
            known = {code: ItemInfo("CUST-NEW", is_b2b=True, order_id=f"O{k % 50}")}
        passes = 1 if rng.random() < 0.95 else rng.randint(2, plan.max_passes)
        unavailable = frozenset({rng.choice(chutes)}) if rng.random() < 0.05 else frozenset()
        counts = {c: rng.randrange(40) for c in chutes}
        held = {f"O{n}": c for n, c in enumerate(plan.b2b_pool) if rng.random() < 0.5}
        inputs.append((codes, known, passes, unavailable, counts, held))
    return inputs


def time_decisions(plan: SortPlan, inputs: list[Call]) -> tuple[list[float], float]:
    """Per-call wall time in microseconds, and the timer's own cost per reading."""
    clock = time.perf_counter_ns
    overhead = []
    for _ in range(10_000):
        t0 = clock()
        overhead.append(clock() - t0)
    timings = []
    for codes, known, passes, unavailable, counts, held in inputs:
        t0 = clock()
        decide(plan, codes, known, passes, unavailable, counts, held)
        timings.append((clock() - t0) / 1000)
    return sorted(timings), statistics.median(overhead) / 1000


async def live(args: argparse.Namespace) -> None:
    gap = args.min_gap or args.belt_speed * 3600 / args.rate
    geo = Geometry(args.belt_speed, gap, args.zone_length)
    line = bench_line(0, geo, "opc.tcp://127.0.0.1:4840/linectl/")
    c = line.conveyor
    capacity = c.belt_speed / c.min_gap
    loop = sum(z.length for z in c.zones)
    print(
        f"geometry: belt {c.belt_speed:g} m/s, min_gap {c.min_gap:.3f} m "
        f"(capacity {capacity:.3f} items/s = {capacity * 3600:,.0f} items/h), "
        f"{len(c.zones)} zones x {args.zone_length:g} m = {loop:g} m loop, scanner at "
        f"{c.scanner.zone}, diverts at {c.sorter.diverts[0].zone}..{c.sorter.diverts[-1].zone}; "
        f"chutes cleared at once (drain 0 s)"
    )
    print(
        f"load: {args.sorters} sorters x {args.rate:,.0f} totes/h inducted at "
        f"{c.zones[0].id}, real time (ScaledClock 1.0), simulator tick {args.tick_ms:g} ms, "
        f"{args.duration:g} s measured per run after a warm-up"
    )
    if capacity * 3600 >= args.rate:
        print(
            "note: fed at no more than capacity, a tote that reaches the induct zone after its "
            "gap went by loses that gap; a larger --min-gap keeps the sorter saturated"
        )
    for run in await live_runs(args, geo, [0.0, args.no_read]):
        no_read = run.no_read
        fed = sum(run.fed) / len(run.fed)
        print(
            f"no-read {no_read:.0%}: {fed:,.0f} totes fed per sorter; CPU busy: controller "
            f"process {run.cpu[0]:.2f} cores, simulator process {run.cpu[1]:.2f} cores "
            f"(of {os.cpu_count()}, load average {os.getloadavg()[0]:.2f})"
        )
        report_latency(run)
        report_throughput(run, capacity)
        if no_read:
            report_shares(run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--calls", type=int, default=100_000, help="pure decisions timed")
    ap.add_argument("--sorters", type=int, default=4)
    ap.add_argument("--rate", type=float, default=30_000.0, help="totes/h fed to each sorter")
    ap.add_argument("--duration", type=float, default=15.0, help="measured wall s per run")
    ap.add_argument("--no-read", type=float, default=0.02, help="no-read rate of the 2nd run")
    ap.add_argument("--belt-speed", type=float, default=3.0, help="m/s")
    ap.add_argument("--zone-length", type=float, default=1.0, help="m, each of the 24 zones")
    ap.add_argument("--min-gap", type=float, default=None, help="m; default: capacity = rate")
    ap.add_argument("--tick-ms", type=float, default=2.0, help="simulator motion tick, wall ms")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    plan = plan_of(load_reference(env={}))
    timings, overhead = time_decisions(plan, decision_inputs(plan, args.calls, args.seed))
    print(
        f"decide (pure)            p50 {percentile(timings, 0.5):6.2f} us   "
        f"p99 {percentile(timings, 0.99):6.2f} us   ({args.calls:,} calls, timer "
        f"{overhead:.2f} us included; target p99 <= 50 us)"
    )
    asyncio.run(live(args))
    print(f"reproduce: {shlex.join([sys.executable, *sys.argv])}")


if __name__ == "__main__":
    main()

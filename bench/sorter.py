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
import contextlib
import multiprocessing
import os
import random
import resource
import shlex
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import cast

from controller.clock import ScaledClock
from controller.config.loader import load_reference
from controller.config.model import LineConfig
from controller.metrics import Metrics
from controller.topology import sort_plan
from devices.base import ConveyorAvailability, DeviceEvent, ItemDiverted, ItemScanned
from devices.errors import DeviceError
from devices.opcua import OpcUaSorter
from routing.sortation import ItemInfo, Outcome, SortPlan, decide
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator

SETTLE = 2.0  # wall seconds of feeding beyond the trip to the last divert before measuring
CONNECT_TIMEOUT = 60.0  # wall seconds for the simulators to start and the adapters to connect


# --- the line ---------------------------------------------------------------------------------


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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- 2-4. the simulators (a process of their own) -----------------------------------------------


@dataclass(frozen=True)
class Feed:
    geometry: Geometry
    endpoints: list[str]  # one simulator each
    rate: float  # totes per wall second per sorter
    seconds: float  # how long to feed
    tick: float  # simulator motion tick, wall seconds
    seed: int


def serve(feed: Feed, conn: Connection) -> None:
    """The simulator process: start the conveyors, then feed them when told to."""
    asyncio.run(_serve(feed, conn))


async def _serve(feed: Feed, conn: Connection) -> None:
    clock = ScaledClock(1.0)
    lines = [bench_line(i, feed.geometry, e) for i, e in enumerate(feed.endpoints)]
    async with contextlib.AsyncExitStack() as stack:
        sims = [
            await stack.enter_async_context(
                ConveyorSimulator(line, clock, seed=feed.seed + i, tick_wall_seconds=feed.tick)
            )
            for i, line in enumerate(lines)
        ]
        conn.send("ready")
        phase = 0
        # each phase: the no-read rate to feed at, or None once the adapters have let go
        while (no_read := await asyncio.to_thread(conn.recv)) is not None:
            cpu0, wall0 = _cpu(), time.perf_counter()
            fed = [0] * len(sims)
            async with asyncio.TaskGroup() as tg:
                for i, sim in enumerate(sims):
                    sim.set_no_read_rate(no_read)
                    zone = lines[i].conveyor.zones[0].id
                    feeder = _feed(sim, i, phase, zone, feed, fed)
                    tg.create_task(feeder, name=f"bench.feed[{i}]")
            conn.send((fed, (_cpu() - cpu0) / (time.perf_counter() - wall0)))
            phase += 1


async def _feed(
    sim: ConveyorSimulator, index: int, phase: int, zone: str, feed: Feed, fed: list[int]
) -> None:
    """Induct totes at ``feed.rate`` on a fixed schedule (no drift when a call is late)."""
    start = time.perf_counter()
    k = 0
    while (due := k / feed.rate) < feed.seconds:
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await sim.induct(tote_id(index, phase, k), zone)
        k += 1
        fed[index] = k


# --- 2-4. the controller side (this process) ----------------------------------------------------


@dataclass
class Record:
    """What one sorter's sort path saw; stamps are time.perf_counter()."""

    latency: list[tuple[float, float]] = field(default_factory=list)  # received, seconds
    slack: list[tuple[float, float]] = field(default_factory=list)  # received, seconds
    decisions: list[tuple[float, Outcome]] = field(default_factory=list)
    diverted: list[tuple[float, bool, str]] = field(default_factory=list)  # ok, chute
    missed: list[float] = field(default_factory=list)
    refused_calls: list[float] = field(default_factory=list)


async def sort_path(
    sorter: OpcUaSorter,
    events: asyncio.Queue[DeviceEvent],
    plan: SortPlan,
    known: dict[str, ItemInfo],
    rec: Record,
) -> None:
    """The controller's path for one sorter: events in order, decide, ``await divert()``."""
    passes: Counter[str] = Counter()
    accepted: dict[str, tuple[float, datetime, float]] = {}  # item -> received, scan at, latency
    while True:
        ev = await events.get()
        if isinstance(ev, ItemScanned):
            if accepted.pop(ev.item_id, None) is not None:
                rec.missed.append(ev.received)  # came round with its divert still pending
            passes[ev.item_id] += 1
            infos = {c: info for c in ev.codes if (info := known.get(c)) is not None}
            unavailable = frozenset(
                c.chute_id for c in sorter.snapshot().chutes if c.full or not c.enabled
            )
            decision = decide(plan, ev.codes, infos, passes[ev.item_id], unavailable)
            if decision.chute is not None:
                try:
                    await sorter.divert(ev.item_id, decision.chute)
                except DeviceError:
                    rec.refused_calls.append(ev.received)
                    continue
                latency = time.perf_counter() - ev.received
                rec.latency.append((ev.received, latency))
                accepted[ev.item_id] = (ev.received, ev.at, latency)
            rec.decisions.append((ev.received, decision.outcome))
        elif isinstance(ev, ItemDiverted):
            now = time.perf_counter()
            rec.diverted.append((now, ev.ok, ev.chute_id))
            hit = accepted.pop(ev.item_id, None)
            if hit is not None:
                received, scan_at, latency = hit
                rec.slack.append((received, (ev.at - scan_at).total_seconds() - latency))
            passes.pop(ev.item_id, None)


async def available(events: asyncio.Queue[DeviceEvent]) -> None:
    while True:
        ev = await events.get()
        if isinstance(ev, ConveyorAvailability) and ev.available:
            return


@dataclass
class Run:
    no_read: float
    wall: float  # measured window, seconds
    fed: list[int]
    cpu: tuple[float, float]  # cores busy: this process in the window, the simulators feeding
    records: list[Record]
    window: tuple[float, float]

    def within(self, stamp: float) -> bool:
        return self.window[0] <= stamp < self.window[1]


async def receive(conn: Connection) -> object:
    """The simulator process's next report, waited for in a worker thread."""
    if not await asyncio.to_thread(conn.poll, CONNECT_TIMEOUT):
        raise TimeoutError("the simulator process did not report")
    return conn.recv()


async def live_runs(args: argparse.Namespace, geo: Geometry, no_reads: list[float]) -> list[Run]:
    """One simulator process and one adapter per sorter; one measured window per no-read rate."""
    endpoints = [f"opc.tcp://127.0.0.1:{free_port()}/linectl/" for _ in range(args.sorters)]
    lines = [bench_line(i, geo, e) for i, e in enumerate(endpoints)]
    plan = plan_of(lines[0])
    rate = args.rate / 3600
    warmup = last_divert_metres(lines[0]) / args.belt_speed + SETTLE
    feed = Feed(geo, endpoints, rate, warmup + args.duration, args.tick_ms / 1000, args.seed)
    known = {
        tote_id(i, phase, k): ItemInfo(destination(plan, k))
        for i in range(args.sorters)
        for phase in range(len(no_reads))
        for k in range(int(rate * feed.seconds) + 2)
    }
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=serve, args=(feed, theirs), name="bench-conveyors")
    process.start()
    runs = []
    try:
        await receive(ours)
        clock = ScaledClock(1.0)
        metrics = Metrics()
        records = [Record() for _ in lines]
        async with asyncio.TaskGroup() as tg:
            tasks = []
            for i, line in enumerate(lines):
                sorter = OpcUaSorter(line, clock, metrics)
                events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
                name = f"conveyor[{line.conveyor.id}]"
                tasks.append(tg.create_task(sorter.run(events), name=f"{name}.run"))
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await available(events)
                path = sort_path(sorter, events, plan, known, records[i])
                tasks.append(tg.create_task(path, name=f"{name}.sort"))
            for no_read in no_reads:
                ours.send(no_read)
                await asyncio.sleep(warmup)
                begin, cpu0 = time.perf_counter(), _cpu()
                await asyncio.sleep(args.duration)
                end, cpu = time.perf_counter(), _cpu() - cpu0
                fed, sim_cpu = cast(tuple[list[int], float], await receive(ours))
                wall = end - begin
                runs.append(Run(no_read, wall, fed, (cpu / wall, sim_cpu), records, (begin, end)))
            for task in tasks:
                task.cancel()
        ours.send(None)
    finally:
        process.join(CONNECT_TIMEOUT)
        if process.is_alive():
            process.terminate()
    return runs


# --- report -----------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def report_latency(run: Run) -> None:
    ms = sorted(lat * 1000 for r in run.records for t, lat in r.latency if run.within(t))
    slack = sorted(s for r in run.records for t, s in r.slack if run.within(t))
    if not ms:
        print("  scan -> Divert returned: not measured: no divert in the measured window")
        return
    print(
        f"  scan -> Divert returned  p50 {percentile(ms, 0.5):6.2f} ms   "
        f"p99 {percentile(ms, 0.99):6.2f} ms   max {ms[-1]:6.2f} ms   "
        f"({len(ms)} diverts; target p99 <= 20 ms)"
    )
    if slack:
        print(
            f"  time to spare at the divert point: min {slack[0] * 1000:7.1f} ms   "
            f"p50 {percentile(slack, 0.5) * 1000:7.1f} ms   (divert() returned -> item at divert)"
        )


def report_throughput(run: Run, capacity: float) -> None:
    n = len(run.records)
    ok = sum(1 for r in run.records for t, good, _ in r.diverted if good and run.within(t))
    failed = sum(1 for r in run.records for t, good, _ in r.diverted if not good and run.within(t))
    missed = sum(1 for r in run.records for t in r.missed if run.within(t))
    refused = sum(1 for r in run.records for t in r.refused_calls if run.within(t))
    per_sorter = ok / run.wall / n
    print(
        f"  diverted {per_sorter:6.3f} items/s per sorter = {per_sorter * 3600:7.0f} items/h, "
        f"{per_sorter / capacity:6.1%} of capacity {capacity:.3f} items/s (target >= 97 %)"
    )
    print(
        f"  missed diverts (Divert too late, item rode past): {missed}   (target 0)   "
        f"divert failed at the chute: {failed}   Divert refused: {refused}"
    )


def report_shares(run: Run) -> None:
    outcomes = Counter(o for r in run.records for t, o in r.decisions if run.within(t))
    decisions = sum(outcomes.values())
    recirculated = sum(
        outcomes[o] for o in (Outcome.NO_READ, Outcome.MULTI_READ, Outcome.CHUTE_UNAVAILABLE)
    )
    sent = outcomes[Outcome.DIVERTED] + outcomes[Outcome.REJECTED]
    print(
        f"  recirculation share {recirculated / max(decisions, 1):7.2%} of scans "
        f"({recirculated} of {decisions}; "
        + ", ".join(f"{o.value} {n}" for o, n in sorted(outcomes.items()))
        + ")"
    )
    print(
        f"  reject share        {outcomes[Outcome.REJECTED] / max(sent, 1):7.3%} of items sent "
        f"to a chute ({outcomes[Outcome.REJECTED]} of {sent})"
    )


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

"""The sorter benchmark's controller side: one ``OpcUaSorter`` adapter per simulator and the
controller's sort path (decide, then ``await divert()``) on its events, measured in windows
while the simulator process (:mod:`sorter_sim`) feeds the conveyors.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import cast

from sorter_line import Geometry, bench_line, destination, last_divert_metres, plan_of, tote_id
from sorter_sim import Feed, cpu_seconds, serve

from devices.base import ConveyorAvailability, DeviceEvent, ItemDiverted, ItemScanned
from devices.errors import DeviceError
from devices.opcua import OpcUaSorter
from kernel.clock import ScaledClock
from kernel.metrics import Metrics
from routing.sortation import ItemInfo, Outcome, SortPlan, decide
from simulators.broker import free_port

SETTLE = 2.0  # wall seconds of feeding beyond the trip to the last divert before measuring
CONNECT_TIMEOUT = 60.0  # wall seconds for the simulators to start and the adapters to connect


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
                begin, cpu0 = time.perf_counter(), cpu_seconds()
                await asyncio.sleep(args.duration)
                end, cpu = time.perf_counter(), cpu_seconds() - cpu0
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

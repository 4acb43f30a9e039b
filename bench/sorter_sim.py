"""The sorter benchmark's simulator process: conveyor simulators (real asyncua servers) fed totes
at a fixed rate in real time, in a process of their own so that their CPU is not the measured
process's. Started by :mod:`sorter_live` with the ``spawn`` method.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sorter_line import Geometry, bench_line, tote_id

from kernel.clock import ScaledClock
from simulators.conveyor import ConveyorSimulator


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            fed = [0] * len(sims)
            async with asyncio.TaskGroup() as tg:
                for i, sim in enumerate(sims):
                    sim.set_no_read_rate(no_read)
                    zone = lines[i].conveyor.zones[0].id
                    feeder = _feed(sim, i, phase, zone, feed, fed)
                    tg.create_task(feeder, name=f"bench.feed[{i}]")
            conn.send((fed, (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)))
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

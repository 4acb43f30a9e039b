"""Dispatch under a backlog: do robots get work as fast with 20,000 queued orders as with 20?

For each queue length, a fresh order store is seeded with that many small B2C orders (one line,
one unit) before the controller starts; then the whole reference line runs in this process (the
OPC UA conveyor, sorter and AS/RS simulators, the robot fleet on an embedded MQTT broker, the
controller) on a fast line clock. Measured from the controller's start, in wall time: when the
first robot trip is sent, how many trips are sent in the measured window, how long each
dispatch round takes (median, p99, max) and the process's CPU share. Prints one row per queue
length and the ratios of the largest to the smallest. With ``--backend postgresql`` the store is
a fresh schema of its own in the PostgreSQL at ``--dsn``, one per queue length, dropped
afterwards.

    python bench/backlog.py [--queues 20,20000] [--window 20] [--time-scale 20]
                            [--backend sqlite|postgresql] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from controller.linefile.loader import load_reference
from controller.orders.model import OrderIn
from controller.robots.dispatcher import Dispatcher
from controller.service.service import LineService
from controller.store import open_store
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig, StoreConfig
from simulators.line import simulated_line

# the machine's PostgreSQL as the tests use it (trust authentication, database test)
DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@contextmanager
def store_config(backend: str, dsn: str) -> Iterator[StoreConfig]:
    """A new, empty store: a SQLite file in a temporary folder, or a PostgreSQL schema no run
    has used, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="linectl-backlog-") as tmp:
            yield StoreConfig(path=str(Path(tmp) / "line.db"))
        return
    schema = f"linectl_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield StoreConfig.model_validate({"backend": "postgresql", "dsn": dsn, "db_schema": schema})
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def seed(cfg: LineConfig, n: int, clock: ScaledClock) -> None:
    """``n`` one-unit B2C orders over the line's stocked SKUs and carriers."""
    store = open_store(cfg.store, cfg.line.id)
    await store.open()
    skus = [e.sku for e in cfg.stock if e.quantity > 0]
    carriers = sorted(cfg.conveyor.sorter.sort_plan)
    now = clock.utcnow()

    async def one(i: int) -> None:
        body = OrderIn.model_validate(
            {
                "type": "b2c",
                "priority": 5,
                "due_at": (now + timedelta(hours=4, seconds=i)).isoformat(),
                "destination": carriers[i % len(carriers)],
                "lines": [{"line_id": "1", "sku": skus[i % len(skus)], "quantity": 1}],
            }
        )
        await store.create_order(f"BL-{i:06d}", body, now)

    try:
        for start in range(0, n, 500):  # concurrent creates share one commit
            await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))
    finally:
        await store.close()


async def measure(
    n: int, window: float, time_scale: float, backend: str = "sqlite", dsn: str = DEFAULT_DSN
) -> dict[str, float]:
    reference = load_reference()
    with store_config(backend, dsn) as store:
        clock = ScaledClock(time_scale)
        cfg = reference.with_overrides(store=store)
        t0 = time.perf_counter()
        await seed(cfg, n, clock)
        seeded = time.perf_counter() - t0
        rounds: list[float] = []
        started: list[float] = []
        original = Dispatcher.dispatch_once

        async def timed(self: Dispatcher) -> None:
            t = time.perf_counter()
            started.append(t)
            try:
                await original(self)
            finally:
                rounds.append(time.perf_counter() - t)

        Dispatcher.dispatch_once = timed  # type: ignore[method-assign]
        try:
            async with simulated_line(cfg, clock) as sim, LineService(sim.config, clock) as svc:
                sent = svc.metrics.robot_trips.labels("sent")
                start = time.perf_counter()
                cpu0 = time.process_time()
                first: float | None = None
                async with asyncio.TaskGroup() as tg:
                    task = tg.create_task(svc.run())
                    while time.perf_counter() - start < window:
                        if first is None and sent._value.get() > 0:
                            first = time.perf_counter() - start
                        await asyncio.sleep(0.05)
                    trips = sent._value.get()
                    cpu = time.process_time() - cpu0
                    wall = time.perf_counter() - start
                    task.cancel()
        finally:
            Dispatcher.dispatch_once = original  # type: ignore[method-assign]
    ordered = sorted(rounds) or [0.0]
    return {
        "queued": n,
        "seed_s": seeded,
        "first_round_s": started[0] - start if started else float("nan"),
        "first_trip_s": first if first is not None else float("nan"),
        "trips": trips,
        "rounds": len(rounds),
        "round_p50_ms": statistics.median(ordered) * 1e3,
        "round_p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3,
        "round_max_ms": ordered[-1] * 1e3,
        "cpu_share": cpu / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", default="20,20000", help="queue lengths, comma-separated")
    parser.add_argument("--window", type=float, default=20.0, help="wall seconds measured")
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL for --backend postgresql")
    args = parser.parse_args()
    rows = [
        asyncio.run(measure(int(q), args.window, args.time_scale, args.backend, args.dsn))
        for q in args.queues.split(",")
    ]
    cols = list(rows[0])
    print(" ".join(f"{c:>13}" for c in cols))
    for row in rows:
        print(" ".join(f"{row[c]:>13.1f}" for c in cols))
    if len(rows) > 1:
        small, big = rows[0], rows[-1]
        print(
            f"ratio {big['queued']:.0f}/{small['queued']:.0f} queued: trips "
            f"{big['trips'] / max(small['trips'], 1):.2f}, first trip "
            f"{big['first_trip_s'] / max(small['first_trip_s'], 1e-9):.2f}, round p50 "
            f"{big['round_p50_ms'] / max(small['round_p50_ms'], 1e-9):.2f}"
        )
    print(f"store: {args.backend}")
    print("command:", shlex.join([os.path.basename(sys.executable), *sys.argv]))


if __name__ == "__main__":
    main()

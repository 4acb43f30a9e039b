"""Order intake: durable creates per second and their latency, over real HTTP.

A server process runs the API (``create_app``) under uvicorn over a real order store: SQLite
(WAL, fsync on every commit) in a file, or PostgreSQL (every commit durable, the server's
``synchronous_commit``) in a fresh schema of its own that is dropped afterwards. This process
drives ``PUT /v1/orders/{id}`` with ``--concurrency`` httpx clients, each on its own HTTP/1.1
keep-alive connection. After a warm-up, ``--orders`` creates are timed; every one must answer
201, and afterwards the store is opened again to check that every order is there. Prints
creates/s, p50/p90/p99/max latency and the command line that reproduces the run; with
``--backend both`` the same workload runs on SQLite, then on PostgreSQL, and a table puts the two
side by side.

    python bench/intake.py [--orders 5000] [--concurrency 16] [--warmup 1000] [--db-path FILE]
                           [--backend sqlite|postgresql|both] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import os
import shlex
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from psycopg import sql

from api import create_app
from controller.app.http import settle_heap
from controller.asrs.replenishment import Replenishment
from controller.asrs.returns import ToteReturns
from controller.conveyor.reject_totes import RejectTotes
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.stations import Stations
from controller.line.trips import InFlight
from controller.linefile.loader import load_reference
from controller.orders.model import OrderRecord
from controller.service.hold import HoldOutcome
from controller.store import LineStore, open_store
from controller.store.postgresql.engine import server_name
from devices.check_report import DeviceReport
from devices.errors import DeviceUnavailable
from kernel.clock import ScaledClock
from kernel.config.model import ApiConfig, ApiToken, LineConfig, StoreConfig
from kernel.metrics import Metrics

TOKEN = "bench-intake-token-0123456789"
# the machine's PostgreSQL as the tests use it (trust authentication, database test)
DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


class BenchLine:
    """An ApiBackend with a real store and no dispatcher: accepted orders are only counted."""

    def __init__(self, config: LineConfig, store: LineStore) -> None:
        self.config = config
        self.store = store
        self.metrics = Metrics()
        self.clock = ScaledClock(1.0)
        self.stations = Stations(History(store, self.clock, self.metrics))
        self.inventory = Inventory(config, store, self.clock, self.metrics)
        self.replenishment = Replenishment(
            config, self.inventory, InFlight(), self.clock, self.metrics
        )
        self.tote_returns = ToteReturns(self.inventory, self.clock, self.metrics)
        self.reject_totes = RejectTotes(config, store, self.inventory, self.clock, self.metrics)
        self.accepted = 0

    def order_accepted(self, order: OrderRecord) -> None:
        self.accepted += 1

    def order_changed(self, order: OrderRecord) -> None:
        pass

    def cancel_requested(self, order: OrderRecord) -> None:
        pass

    def controller(self) -> dict[str, Any]:
        return {"role": "active", "failover": False, "instance": None, "term": None, "active": None}

    async def readiness(self) -> dict[str, bool]:
        return {"config": True, "store": True, "intake": True}

    def readiness_reasons(self) -> dict[str, str]:
        return {}

    def line_view(self) -> dict[str, Any]:
        return {"line_id": self.config.line.id, "conveyors": [], "robots": []}

    async def devices_check(self, wait: float, connect_timeout: float) -> list[DeviceReport]:
        return []

    # no device is connected in this benchmark: every command is refused as for a device down

    async def robot_command(self, serial: str, command: str) -> str:
        raise DeviceUnavailable(f"robot {serial}: no robots in this benchmark")

    async def conveyor_command(self, conveyor_id: str, command: str) -> str:
        raise DeviceUnavailable(f"conveyor {conveyor_id}: no conveyor in this benchmark")

    async def conveyor_jog(
        self, conveyor_id: str, zone_id: str, speed: float, seconds: float
    ) -> None:
        raise DeviceUnavailable(f"conveyor {conveyor_id}: no conveyor in this benchmark")

    async def line_hold(self, who: str) -> HoldOutcome:
        raise DeviceUnavailable("no devices in this benchmark")

    async def line_resume(self, who: str) -> HoldOutcome:
        raise DeviceUnavailable("no devices in this benchmark")


def line_config(store: StoreConfig) -> LineConfig:
    line = load_reference(env={})
    return line.with_overrides(api=ApiConfig(tokens=[ApiToken(token=TOKEN)]), store=store)


def sqlite_store(db_path: Path) -> StoreConfig:
    return StoreConfig(backend="sqlite", path=str(db_path))


def postgres_store(dsn: str, schema: str) -> StoreConfig:
    return StoreConfig.model_validate({"backend": "postgresql", "dsn": dsn, "db_schema": schema})


def describe(store: StoreConfig) -> str:
    """The store as the report names it (never the DSN's password)."""
    if store.backend == "sqlite":
        return f"sqlite {store.path}"
    assert store.dsn is not None
    return f"postgresql {server_name(store.dsn.get_secret_value())} schema {store.db_schema}"


@contextlib.contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A schema name no run has used; the schema (made by the store) is dropped afterwards."""
    schema = f"linectl_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, connect_timeout=10) as conn:  # fail early when it cannot answer
        conn.execute("SELECT 1")
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- the server process ---------------------------------------------------------------------


def serve(sock: socket.socket, store_config: StoreConfig) -> None:
    """Run the API on ``sock`` until SIGTERM (uvicorn's own signal handling)."""

    async def main() -> None:
        line = line_config(store_config)
        store = open_store(line.store, line.line.id)
        await store.open()
        try:
            app = create_app(BenchLine(line, store))
            config = uvicorn.Config(
                app, lifespan="on", log_level="warning", access_log=False, backlog=1024
            )
            settle_heap()  # as the service does once its API is up
            await uvicorn.Server(config).serve(sockets=[sock])
        finally:
            await store.close()

    asyncio.run(main())


# --- the load ---------------------------------------------------------------------------------


def order_body(line: LineConfig, i: int, due_at: str) -> dict[str, Any]:
    skus = sorted(s.sku for s in line.skus)
    destinations = sorted(line.conveyor.sorter.sort_plan)
    return {
        "type": "b2c",
        "priority": i % 10,
        "due_at": due_at,
        "destination": destinations[i % len(destinations)],
        "lines": [
            {"line_id": str(n + 1), "sku": skus[(i + n) % len(skus)], "quantity": 1 + n}
            for n in range(1 + i % 3)
        ],
    }


async def drive(
    clients: list[httpx.AsyncClient], bodies: list[tuple[str, dict[str, Any]]]
) -> tuple[list[float], float, dict[int, int]]:
    """PUT every body, each client sending one at a time; latencies (s), wall time (s) and the
    count of each status code."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(bodies)
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def send(http: httpx.AsyncClient) -> None:
        for order_id, body in queue:
            start = time.perf_counter()
            r = await http.put(f"/v1/orders/{order_id}", json=body, headers=headers)
            latencies.append(time.perf_counter() - start)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    began = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for n, http in enumerate(clients):
            tg.create_task(send(http), name=f"intake.client[{n}]")
    return latencies, time.perf_counter() - began, statuses


async def warm_up_then_time(
    base_url: str,
    warmup: list[tuple[str, dict[str, Any]]],
    timed: list[tuple[str, dict[str, Any]]],
    concurrency: int,
) -> tuple[list[float], float, dict[int, int]]:
    """The clients (one keep-alive connection each) are made and connected by the warm-up, so
    the timed run measures requests only."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30)
            )
            for _ in range(concurrency)
        ]
        await drive(clients, warmup)
        return await drive(clients, timed)


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


async def count_orders(store_config: StoreConfig) -> int:
    store = open_store(store_config)
    await store.open()
    try:
        counts = await store.count_by_status()
    finally:
        await store.close()
    return sum(counts.values())


@dataclass(frozen=True)
class Result:
    backend: str
    store: str
    orders: int
    concurrency: int
    statuses: dict[int, int]
    wall: float
    ms: list[float]  # latencies, sorted
    stored: int
    expected: int

    @property
    def rate(self) -> float:
        return self.orders / self.wall

    @property
    def ok(self) -> bool:
        return self.statuses.get(201, 0) == self.orders and self.stored == self.expected


def run_one(store_config: StoreConfig, args: argparse.Namespace) -> Result:
    """The workload on one store: warm-up, timed creates, then every order counted."""
    line = line_config(store_config)
    due_at = (ScaledClock(1.0).utcnow() + timedelta(hours=4)).isoformat()
    bodies = [(f"BENCH-{i:07d}", order_body(line, i, due_at)) for i in range(args.warmup)]
    timed = [
        (f"BENCH-{i:07d}", order_body(line, i, due_at))
        for i in range(args.warmup, args.warmup + args.orders)
    ]

    # IPPROTO_TCP explicitly so that asyncio sets TCP_NODELAY on accepted connections
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(sock, store_config), name="intake-server"
    )
    server.start()
    # the load generator's own collections would count as server latency
    gc.collect()
    gc.freeze()
    try:
        latencies, wall, statuses = asyncio.run(
            warm_up_then_time(base_url, bodies, timed, args.concurrency)
        )
    finally:
        if server.pid is not None:
            os.kill(server.pid, 15)
        server.join(timeout=30)
        sock.close()
        gc.unfreeze()
    stored = asyncio.run(count_orders(store_config))
    latencies.sort()
    return Result(
        backend=store_config.backend,
        store=describe(store_config),
        orders=args.orders,
        concurrency=args.concurrency,
        statuses=statuses,
        wall=wall,
        ms=[x * 1000 for x in latencies],
        stored=stored,
        expected=args.warmup + args.orders,
    )


def print_result(r: Result) -> None:
    ms = r.ms
    print(f"order intake over HTTP: {r.orders} creates, {r.concurrency} clients")
    print(f"  store          {r.store}")
    print(f"  statuses       {dict(sorted(r.statuses.items()))}")
    print(f"  creates/s      {r.rate:10.0f}")
    print(f"  latency p50    {percentile(ms, 0.50):10.2f} ms")
    print(f"  latency p90    {percentile(ms, 0.90):10.2f} ms")
    print(f"  latency p99    {percentile(ms, 0.99):10.2f} ms")
    print(f"  latency max    {ms[-1]:10.2f} ms   (mean {statistics.fmean(ms):.2f} ms)")
    print(f"  orders stored  {r.stored} of {r.expected}")


def print_comparison(results: list[Result]) -> None:
    print(f"side by side: {results[0].orders} creates, {results[0].concurrency} clients")
    print(f"  {'store':<12}{'creates/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for r in results:
        p50, p99 = percentile(r.ms, 0.50), percentile(r.ms, 0.99)
        print(f"  {r.backend:<12}{r.rate:10.0f}{p50:10.2f}{p99:10.2f}{r.ms[-1]:10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--orders", type=int, default=5000, help="timed creates")
    ap.add_argument("--concurrency", type=int, default=16, help="clients, one connection each")
    ap.add_argument("--warmup", type=int, default=1000, help="creates before timing")
    ap.add_argument(
        "--db-path", type=Path, default=None, help="SQLite store file (default: temp dir)"
    )
    ap.add_argument(
        "--backend",
        choices=("sqlite", "postgresql", "both"),
        default="sqlite",
        help="the store's engine; both: SQLite, then PostgreSQL, side by side",
    )
    ap.add_argument(
        "--dsn",
        default=DEFAULT_DSN,
        help=f"PostgreSQL to use; a fresh schema is made and dropped (default: {DEFAULT_DSN})",
    )
    args = ap.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)

    results: list[Result] = []
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="linectl-intake-") as tmp:
                db_path = args.db_path or Path(tmp) / "orders.db"
                if db_path.exists():
                    sys.exit(f"{db_path} exists; give a new file so every PUT is a create")
                results.append(run_one(sqlite_store(db_path), args))
        else:
            try:
                with fresh_schema(args.dsn) as schema:
                    results.append(run_one(postgres_store(args.dsn, schema), args))
            except psycopg.Error as exc:
                sys.exit(f"PostgreSQL at {args.dsn!r}: {exc}")
        print_result(results[-1])
    if len(results) > 1:
        print_comparison(results)
    print(f"  reproduce      {shlex.join([sys.executable, *sys.argv])}")
    if not all(r.ok for r in results):
        sys.exit("not every create was answered 201 and stored")


if __name__ == "__main__":
    main()

"""``linectl demo``: a whole line in one process, fed by a WMS over HTTP, with a KPI report.

Starts an MQTT broker unless one is given (a private Mosquitto when it is installed, else the
embedded broker: :func:`simulators.broker.local_broker`), the OPC UA conveyor simulator, the
robot fleet simulator, the controller and its HTTP API, then the WMS generator, and waits until
every order is terminal. Every port is a free loopback port, so demos can run side by side.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from api import create_app
from controller.app.cli.report import write_report
from controller.app.http import ApiServer
from controller.orders.model import OrderStatus, OrderType
from controller.service.service import LineService
from kernel.clock import ScaledClock
from kernel.config.model import ApiConfig, ApiToken, LineConfig, StoreConfig
from simulators.broker import LocalBroker, free_port, local_broker_kind
from simulators.station import ReturnHook, StationSimulator
from simulators.wms import WmsGenerator

if TYPE_CHECKING:
    from simulators.line import SimulatedLine


# Line seconds per wall second when none is given. The embedded broker shares the process
# that runs the whole line and loses messages above about x30; a broker in a process of its
# own keeps up with the line at x80 (1000 orders in under two minutes on two cores).
TIME_SCALE = 80.0
TIME_SCALE_EMBEDDED = 30.0


@dataclass(frozen=True)
class DemoOptions:
    orders: int = 300
    b2b_share: float = 0.2
    time_scale: float | None = None  # None: TIME_SCALE, or TIME_SCALE_EMBEDDED on that broker
    broker: str | None = None
    timeout: float = 600.0  # wall seconds
    seed: int = 7
    store_path: str | None = None
    html_report: Path | None = None  # the KPI report with plots, written before the store goes
    own_broker: LocalBroker = LocalBroker.AUTO  # the broker started without ``broker``


@dataclass
class Progress:
    total: int
    terminal: int
    by_status: dict[str, int]


ProgressHook = Callable[[Progress], None]


def time_scale(opts: DemoOptions) -> float:
    """The demo's time scale: the one given, else the default for the broker it runs on."""
    if opts.time_scale is not None:
        return opts.time_scale
    if opts.broker is None and local_broker_kind(opts.own_broker) is LocalBroker.EMBEDDED:
        return TIME_SCALE_EMBEDDED
    return TIME_SCALE


def prepare_config(base: LineConfig, opts: DemoOptions, workdir: Path) -> LineConfig:
    """The line file with a free API port, a fresh store and a one-off API token."""
    token = secrets.token_urlsafe(24)
    return base.model_copy(
        update={
            "clock": base.clock.model_copy(update={"time_scale": time_scale(opts)}),
            "store": StoreConfig(path=opts.store_path or str(workdir / "demo.db")),
            # on loopback, with a one-off token: the API can be browsed while the demo runs
            "api": ApiConfig(
                host="127.0.0.1",
                port=free_port(),
                tokens=[ApiToken(token=token)],
                reads_open=True,
            ),
            "mqtt": base.mqtt.model_copy(
                update={"client_id": f"linectl-demo-{secrets.token_hex(3)}"}
            ),
        }
    )


@asynccontextmanager
async def running_line(
    cfg: LineConfig,
    clock: ScaledClock,
    broker: str | None,
    own_broker: LocalBroker = LocalBroker.EMBEDDED,
) -> AsyncIterator[tuple[SimulatedLine, LineService, ApiServer]]:
    """The whole line in this process: its simulators (on ``broker``, else on a broker of its
    own of the kind ``own_broker`` says), the controller and its API, running until the context
    ends."""
    from simulators.line import simulated_line

    async with (
        simulated_line(cfg, clock, broker, own_broker=own_broker) as line,
        serving(line.config, clock) as (service, api),
    ):
        yield line, service, api


@asynccontextmanager
async def serving(
    cfg: LineConfig, clock: ScaledClock
) -> AsyncIterator[tuple[LineService, ApiServer]]:
    """The controller (the line's service) and its HTTP API, running until the context ends."""
    async with LineService(cfg, clock) as service:
        api = ApiServer(create_app(service), cfg.api.host, cfg.api.port)
        async with asyncio.TaskGroup() as tg:
            background = [
                tg.create_task(service.run(), name="controller"),
                tg.create_task(api.serve(), name="api"),
            ]
            try:
                yield service, api
            finally:
                for task in background:
                    task.cancel()


async def run_demo(
    base: LineConfig, opts: DemoOptions, on_progress: ProgressHook | None = None
) -> dict[str, Any]:
    """Run the demo to the end and return the report."""
    wall0 = time.monotonic()
    opts = replace(opts, time_scale=time_scale(opts))
    clock = ScaledClock(time_scale(opts))
    with tempfile.TemporaryDirectory(prefix="linectl-demo-") as tmp:
        cfg = prepare_config(base, opts, Path(tmp))
        async with running_line(cfg, clock, opts.broker, opts.own_broker) as (
            line,
            service,
            api,
        ):
            report = await _drive(
                line.config, service, api, clock, opts, on_progress, line.return_tote
            )
            report["mqtt_broker"] = (
                opts.broker if line.own_broker is None else line.own_broker.value
            )
            # what the simulator saw: two robots on one node, or head-on on one edge
            report["robot_collisions"] = len(line.robots.collisions)
        # the KPIs from the order database, before its work directory is removed
        report["kpi"] = await asyncio.to_thread(
            write_report,
            Path(cfg.store.path),
            opts.html_report,
            None,
            cfg.line.id,
            source=f"linectl demo, {opts.orders} orders, seed {opts.seed}",
        )
    report["wall_seconds"] = round(time.monotonic() - wall0, 2)
    # completed orders as the KPI report counts them
    completed = report["kpi"]["summary"]["orders"][-1]["completed"]
    report["orders_per_hour_wall"] = round(completed / report["wall_seconds"] * 3600, 1)
    return report


async def wait_ready(service: LineService, api: ApiServer, within: float) -> None:
    """Wait until the API serves, the service is ready, and every robot and the conveyor are
    available (readiness alone does not wait for devices)."""
    async with asyncio.timeout(within):
        while True:
            robots = service.fleet.snapshot().values()
            if (
                api.started
                and service.sorter.snapshot().connected
                and all(r.available for r in robots)
                and all((await service.readiness()).values())  # the store probe last: I/O
            ):
                return
            await asyncio.sleep(0.05)


async def _drive(
    cfg: LineConfig,
    service: LineService,
    api: ApiServer,
    clock: ScaledClock,
    opts: DemoOptions,
    on_progress: ProgressHook | None,
    on_return: ReturnHook | None = None,
) -> dict[str, Any]:
    await wait_ready(service, api, within=60)
    token = cfg.api.tokens[0].token
    stations = StationSimulator(cfg, clock, api.url, token, on_return=on_return)
    async with asyncio.TaskGroup() as tg:
        operators = tg.create_task(stations.run(), name="sim.stations")
        try:
            wms = WmsGenerator(cfg, api.url, token, seed=opts.seed, b2b_share=opts.b2b_share)
            sent = await wms.send(opts.orders, clock.utcnow())
            counts = await _until_terminal(service, len(sent.order_ids), opts, on_progress)
        finally:
            operators.cancel()
    return await _report(service, cfg, opts, sent.created, sent.rejected, counts)


async def _until_terminal(
    service: LineService, total: int, opts: DemoOptions, on_progress: ProgressHook | None
) -> dict[OrderStatus, int]:
    deadline = time.monotonic() + opts.timeout
    counts: dict[OrderStatus, int] = {}
    while time.monotonic() < deadline:
        counts = await service.store.count_by_status()
        terminal = sum(n for s, n in counts.items() if s.terminal)
        if on_progress is not None:
            on_progress(Progress(total, terminal, {s.value: n for s, n in counts.items() if n}))
        if terminal >= total:
            break
        await asyncio.sleep(0.25)
    return counts


async def _report(
    service: LineService,
    cfg: LineConfig,
    opts: DemoOptions,
    created: int,
    rejected: list[tuple[str, int, str]],
    counts: dict[OrderStatus, int],
) -> dict[str, Any]:
    """What the demo saw beyond the order store's KPIs (those are the report's: ``kpi``, added
    by :func:`run_demo`): the orders by status, the sorter's and the traffic control's counters,
    the AS/RS flows."""
    from_asrs = 0  # completed B2B orders with case lines served from AS/RS totes
    cursor = None
    while True:
        page = await service.store.list_orders(
            status=OrderStatus.COMPLETED, limit=500, cursor=cursor
        )
        for o in page.orders:
            if o.type is OrderType.B2B and any(ln.uom == "case" for ln in o.body.lines):
                history = await service.store.history(o.id)
                from_asrs += any(e.type == "case_pick_released" for e in history)
        cursor = page.next_cursor
        if cursor is None:
            break
    by_status = {s.value: counts.get(s, 0) for s in OrderStatus}
    total = sum(by_status.values())
    completed = by_status["completed"]
    registry = service.metrics.registry

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    return {
        "orders_requested": opts.orders,
        "orders_created": created,
        "orders_rejected_by_api": [{"id": i, "status": s, "detail": d} for i, s, d in rejected],
        "by_status": by_status,
        "all_terminal": total > 0 and sum(n for s, n in counts.items() if s.terminal) == total,
        "all_completed": completed == opts.orders,
        "time_scale": opts.time_scale,
        "sort_decisions": {
            s.labels["outcome"]: s.value
            for family in registry.collect()
            if family.name == "linectl_sort_decisions"
            for s in family.samples
            if s.name.endswith("_total")
        },
        "scan_to_divert_seconds_mean": (
            round(
                sample("linectl_scan_to_divert_seconds_sum")
                / max(sample("linectl_scan_to_divert_seconds_count"), 1),
                5,
            )
        ),
        "robot_trips": sample("linectl_robot_trips_total", outcome="sent"),
        "robots": len(cfg.robots.fleet),
        "traffic": {
            "enabled": cfg.robots.traffic.enabled,
            "released_nodes": sample("linectl_traffic_released_nodes_total"),
            "reroutes": sum(
                s.value
                for family in registry.collect()
                if family.name == "linectl_traffic_reroutes"
                for s in family.samples
                if s.name.endswith("_total")
            ),
            "evacuations": sample("linectl_traffic_evacuations_total"),
            "deadlocks_broken": sample("linectl_traffic_deadlocks_total"),
        },
        "asrs": _asrs_cycles(registry),
        "asrs_flows": {
            "b2b_orders_with_case_picks": from_asrs,
            "case_totes": _by_label(registry, "linectl_case_totes", "stage"),
            "replenishments": _by_label(registry, "linectl_replenishments", "stage"),
            "totes_returned": sample("linectl_tote_returns_total"),
        },
    }


def _by_label(registry: CollectorRegistry, name: str, label: str) -> dict[str, float]:
    """A counter's totals by one label."""
    return {
        s.labels[label]: s.value
        for family in registry.collect()
        if family.name == name
        for s in family.samples
        if s.name.endswith("_total")
    }


def _asrs_cycles(registry: CollectorRegistry) -> dict[str, dict[str, dict[str, float | None]]]:
    """Crane cycles per aisle and kind (single_store, single_retrieve, dual): how many, and
    their mean and longest time in line seconds."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        if family.name != "linectl_asrs_cycle_seconds":
            continue
        for s in family.samples:
            key = (s.labels["aisle"], s.labels["kind"])
            if s.name.endswith("_sum"):
                sums[key] = s.value
            elif s.name.endswith("_count"):
                counts[key] = s.value
    for (aisle, kind), n in sorted(counts.items()):
        out.setdefault(aisle, {})[kind] = {
            "cycles": n,
            "mean_seconds": round(sums.get((aisle, kind), 0.0) / n, 2) if n else None,
        }
    return out

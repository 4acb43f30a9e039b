"""Fleet scale: a thousand robots on a generated warehouse, through the real controller.

Three processes, on a real MQTT broker (the machine's Mosquitto on 127.0.0.1:1883 unless
``--broker`` says otherwise) under an interface name of their own:

* this one runs the controller as ``linectl run`` does: the line's real service
  (:class:`LineService`: VDA 5050 master control, order store, dispatcher, assignment, traffic
  control, conveyor and AS/RS adapters) and its HTTP API, and nothing else, so that its CPU and
  memory are the controller's;
* a swarm process runs every robot as a light-weight VDA 5050 peer on one MQTT connection
  (:mod:`simulators.robots.swarm`) and hands dropped totes to the conveyor through its OPC UA
  ``Induct`` method (:class:`simulators.induction.RemoteInduction`); it sees collisions (two
  robots on one node, or head-on on one edge) and robots that stand still with an order left;
* a line process runs the conveyor and AS/RS simulators (OPC UA), the station operators and a
  WMS sending a steady stream of orders (``--orders-per-minute`` of line time) over HTTP.

The warehouse (``warehouse()``): ``--aisles`` parallel aisles (default one per ten robots, at
least 20) of ``--depth`` nodes, 4 m apart with 3 m between nodes, a cross aisle every fifth
node and at the back; two pick locations on every aisle node but the front one; every robot's
home a parking spur off an aisle node (spread over the aisles, so an idle robot stands in
nobody's way); an induction onto the conveyor as a dead end off every fourth aisle, at the front
and at the back in turn; two chargers. Conveyor, sorter, stations, AS/RS and SKUs are the
reference line's; its stock is spread over the pick locations, with more of every SKU kept
without replenishment.

After every robot is available and ``--warmup`` line seconds of orders, ``--duration`` line
seconds are measured. Prints: state messages/s taken in by master control; the dispatcher's
round (``Dispatcher.dispatch_once``), traffic control's round (``TrafficRounds.round``: plan,
then send the orders and updates) and, of that round, the planner's own computation
(``routing.traffic.plan``), the sending of order updates (also on ticks without a round) and
the deadlock handling, p50/p99/max in wall milliseconds; the controller's CPU (user+sys cores
over the window) and RSS (peak); orders completed and robot trips sent per hour of line
time, the orders by status and those in ``exception`` by the step that put them there;
collisions and stuck robots (an order left and no node reached nor action ended for
``--stuck-after`` line seconds) as the swarm saw them; the targets met or not. ``--profile N``
runs cProfile over the window in the controller and prints its top N functions by own time and
by cumulative time (the profiler slows every call: compare parts, not the absolute figures).

    python bench/fleet_scale.py [--robots 1000] [--duration 180] [--time-scale 1] [--seed 7]
        [--orders-per-minute N] [--broker mqtt://127.0.0.1:1883] [--profile 30] [--json out]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import math
import multiprocessing
import pstats
import resource
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from traffic_throughput import PickingArea, with_picking_area

from controller.app.demo import DemoOptions, prepare_config, serving, wait_ready
from controller.linefile.loader import load_reference
from controller.orders.model import OrderStatus
from controller.service.service import LineService
from kernel import heap
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.config.robots import Charger, Induction, MapEdge, MapNode, Robot, StorageLocation
from routing import traffic

TARGETS = {"plan_p99_ms": 50.0, "cpu_cores": 1.5, "rss_mib": 1024.0}
CROSS_EVERY = 5  # aisle nodes between two cross aisles
INDUCTION_EVERY = 4  # aisles between two inductions, at the front and at the back
REPORT_TIMEOUT = 120.0  # wall seconds to wait for a child process to answer
STUCK_SHOWN = 5  # stuck robots shown with what they wait for
Origin = tuple[float, datetime]


# --- the warehouse ------------------------------------------------------------------------------


def warehouse(base: LineConfig, robots: int, aisles: int, depth: int) -> LineConfig:
    """``base`` with its picking area replaced by a generated warehouse (see the module doc)."""
    if aisles < 2 or depth < 5 or robots < 1:
        raise ValueError("a warehouse needs 2 aisles of 5 nodes and one robot")
    dx, dy = 4.0, 3.0
    cross = (*range(0, depth - 1, CROSS_EVERY), depth - 1)

    def aisle_node(a: int, r: int) -> str:
        return f"A{a:03d}N{r:02d}"

    nodes = [
        MapNode(id=aisle_node(a, r), x=a * dx, y=r * dy)
        for a in range(aisles)
        for r in range(depth)
    ]
    edges = [
        MapEdge(start=aisle_node(a, r), end=aisle_node(a, r + 1))
        for a in range(aisles)
        for r in range(depth - 1)
    ]
    edges += [
        MapEdge(start=aisle_node(a, r), end=aisle_node(a + 1, r))
        for a in range(aisles - 1)
        for r in cross
    ]
    # homes: parking spurs off the aisle nodes between the cross aisles, spread over the aisles
    spots = [(a, r) for r in range(1, depth - 1) if r not in cross for a in range(aisles)]
    if robots > len(spots):
        raise ValueError(f"{robots} robots need more than {aisles}x{depth} aisle nodes")
    step = len(spots) / robots
    fleet: list[Robot] = []
    models = sorted(base.robots.models)
    for i in range(robots):
        a, r = spots[int(i * step)]
        home = f"H{a:03d}R{r:02d}"
        nodes.append(MapNode(id=home, x=a * dx + 1.5, y=r * dy))
        edges.append(MapEdge(start=aisle_node(a, r), end=home))
        fleet.append(
            Robot(
                serial=f"R{i + 1:04d}",
                model=models[0],
                version="2.0.0" if i % 2 else "2.1.0",
                home=home,
            )
        )
    zones = [z.id for z in base.conveyor.zones[:4]]
    inductions = []
    ends = [(a, 0, -dy) for a in range(1, aisles, INDUCTION_EVERY)]
    ends += [(a, depth - 1, depth * dy) for a in range(3, aisles, INDUCTION_EVERY)]
    for k, (a, r, y) in enumerate(ends):
        n = MapNode(id=f"IND{k + 1:03d}", x=a * dx, y=y)
        nodes.append(n)
        edges.append(MapEdge(start=aisle_node(a, r), end=n.id))
        inductions.append(Induction(id=f"INDUCT{k + 1}", node=n.id, zone=zones[k % len(zones)]))
    chargers = []
    for i, (x, a) in enumerate(((-dx, 0), (aisles * dx, aisles - 1))):
        n = MapNode(id=f"CHG{i + 1}", x=x, y=0.0)
        nodes.append(n)
        edges.append(MapEdge(start=n.id, end=aisle_node(a, 0)))
        chargers.append(Charger(id=f"CHARGER{i + 1}", node=n.id))
    locations = [
        StorageLocation(id=f"L{a:03d}{r:02d}{side}", node=aisle_node(a, r))
        for a in range(aisles)
        for r in range(1, depth)
        for side in "AB"
    ]
    area = PickingArea(nodes, edges, locations, chargers, inductions, fleet)
    line_id = f"fleet-{robots}-{aisles}x{depth}"
    return with_picking_area(base, area, line_id, aisles * 1000 + depth, extra_every=2)


# --- the child processes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """What a child process needs: the line file (as JSON data), the line clock's origin."""

    config: dict[str, Any]
    origin: Origin
    time_scale: float
    args: dict[str, Any]
    log_level: str


def _child(
    target: Callable[[Child, Connection], Coroutine[Any, Any, None]], child: Child, pipe: Connection
) -> None:
    logging.basicConfig(level=child.log_level, stream=sys.stderr)
    asyncio.run(target(child, pipe))


async def _wait(pipe: Connection, within: float = REPORT_TIMEOUT) -> Any:
    if not await asyncio.to_thread(pipe.poll, within):
        raise TimeoutError("no answer from the other process")
    return pipe.recv()


async def swarm_process(child: Child, pipe: Connection) -> None:
    """Every robot as a light peer; drops handed to the conveyor; figures on request."""
    from devices.vda5050.broker import broker_settings
    from simulators.induction import RemoteInduction
    from simulators.robots.swarm import Swarm
    from simulators.robots.swarm_link import SwarmLink

    cfg = LineConfig.model_validate(child.config)
    clock = ScaledClock(child.time_scale, origin=child.origin)
    induction = RemoteInduction(cfg, cfg.conveyor.opcua.endpoint)
    drops: asyncio.Queue[tuple[str, str, str | None]] = asyncio.Queue()

    def on_drop(serial: str, node_id: str, load_id: str | None) -> None:
        drops.put_nowait((serial, node_id, load_id))

    async def hand_over() -> None:
        while True:
            await induction.on_drop(*(await drops.get()))

    swarm = Swarm(
        cfg,
        cfg.robots.fleet,
        clock,
        cfg.mqtt.interface_name,
        lambda *_: None,
        on_drop=on_drop,
        state_interval=child.args["state_interval"],
    )
    link = SwarmLink(swarm, broker_settings(cfg.mqtt, cfg.mqtt.url))
    cpu0 = _cpu()
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(link.run(), name="swarm"),
            tg.create_task(induction.run(), name="swarm.induction"),
            tg.create_task(hand_over(), name="swarm.hand-over"),
        ]
        await link.online.wait()
        pipe.send("online")
        while (await _wait(pipe, 3600.0)) == "figures":
            pipe.send(
                {
                    "published": swarm.published,
                    "collisions": [
                        (c.serials, c.place.describe(), round(c.at, 1)) for c in swarm.collisions
                    ],
                    "stuck": swarm.stuck(child.args["stuck_after"]),
                    "stuck_detail": {
                        serial: {
                            "at": swarm.vehicles[serial].last_node_id,
                            "ahead": [
                                (n["nodeId"], n["released"])
                                for n in list(swarm.vehicles[serial].nodes)[:4]
                            ],
                        }
                        for serial in swarm.stuck(child.args["stuck_after"])[:STUCK_SHOWN]
                    },
                    "longest_standstill": round(swarm.longest_standstill(), 1),
                    "executing": sum(v.executing() for v in swarm.vehicles.values()),
                    "handed_over": induction.delivered,
                    "cpu": _cpu() - cpu0,
                }
            )
        for task in tasks:
            task.cancel()
    pipe.send("stopped")


async def line_process(child: Child, pipe: Connection) -> None:
    """Conveyor and AS/RS simulators; once told, station operators and the order stream."""
    from simulators.line import line_devices
    from simulators.station import StationSimulator
    from simulators.wms import WmsGenerator

    cfg = LineConfig.model_validate(child.config)
    clock = ScaledClock(child.time_scale, origin=child.origin)
    sent: dict[str, Any] = {"created": 0, "rejected": 0, "stopped": ""}
    async with line_devices(cfg, clock) as devices, asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(devices.return_conveyor(clock), name="sim.return-conveyor")]
        pipe.send("ready")
        await _wait(pipe, 3600.0)  # the controller is ready
        url = f"http://{cfg.api.host}:{cfg.api.port}"
        token = cfg.api.tokens[0].token
        stations = StationSimulator(cfg, clock, url, token, on_return=devices.return_tote)
        wms = WmsGenerator(cfg, url, token, seed=child.args["seed"])

        async def stream() -> None:
            per_minute = child.args["orders_per_minute"]
            t0, count = clock.now(), 0
            while True:
                due = math.floor((clock.now() - t0) / 60.0 * per_minute) + 1
                if due > count:
                    try:
                        result = await wms.send(due - count, clock.utcnow(), start=count + 1)
                    except RuntimeError as exc:  # the line's stock is used up
                        sent["stopped"] = str(exc)
                        return
                    sent["created"] += result.created
                    sent["rejected"] += len(result.rejected)
                    count = due
                await clock.sleep(1.0)

        operators = [
            tg.create_task(stations.run(), name="sim.stations"),
            tg.create_task(stream(), name="sim.wms"),
        ]
        await _wait(pipe, 3600.0)  # quiet: the controller is about to stop
        for task in operators:
            task.cancel()
        pipe.send(sent)
        await _wait(pipe, 3600.0)  # stop: the controller is gone
        for task in tasks:
            task.cancel()
    pipe.send("stopped")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- the controller's side ----------------------------------------------------------------------


@dataclass
class Timings:
    """Wall durations (seconds) of the calls wrapped by :meth:`wrap` and :meth:`wrap_sync`."""

    on: bool = False
    values: dict[str, list[float]] = field(default_factory=dict)

    def wrap(self, obj: object, name: str, label: str) -> None:
        original = getattr(obj, name)
        sink = self.values.setdefault(label, [])

        async def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(*a, **kw)
            finally:
                if self.on:
                    sink.append(time.perf_counter() - t0)

        setattr(obj, name, timed)

    def wrap_sync(self, obj: object, name: str, label: str) -> None:
        original = getattr(obj, name)
        sink = self.values.setdefault(label, [])

        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                if self.on:
                    sink.append(time.perf_counter() - t0)

        setattr(obj, name, timed)

    async def loop_lag(self) -> None:
        """How late the event loop wakes a 50 ms sleep: the controller's reaction time."""
        sink = self.values.setdefault("lag", [])
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.05)
            if self.on:
                sink.append(time.perf_counter() - t0 - 0.05)

    def summary(self, label: str) -> dict[str, float]:
        v = sorted(self.values.get(label, []))
        if not v:
            return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        return {
            "count": len(v),
            "p50_ms": round(statistics.median(v) * 1000, 2),
            "p99_ms": round(v[min(len(v) - 1, int(0.99 * len(v)))] * 1000, 2),
            "max_ms": round(v[-1] * 1000, 2),
        }


def _sample(service: LineService, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


def _state_messages(service: LineService) -> float:
    return _sample(
        service, "linectl_mqtt_messages_total", direction="in", topic="state", result="ok"
    )


async def _completed(service: LineService) -> int:
    return (await service.store.count_by_status()).get(OrderStatus.COMPLETED, 0)


async def measure(
    service: LineService, clock: ScaledClock, args: argparse.Namespace, timings: Timings
) -> dict[str, Any]:
    """The measured window: figures from the controller's side."""
    await clock.sleep(args.warmup)
    profile = cProfile.Profile() if args.profile else None
    rss_peak = _rss_mib()
    done0, msgs0 = await _completed(service), _state_messages(service)
    trips0 = _sample(service, "linectl_robot_trips_total", outcome="sent")
    wall0, cpu0, line0 = time.perf_counter(), _cpu(), clock.now()
    timings.on = True
    if profile is not None:
        profile.enable()
    while clock.now() - line0 < args.duration:
        await asyncio.sleep(1.0)
        rss_peak = max(rss_peak, _rss_mib())
    if profile is not None:
        profile.disable()
    timings.on = False
    wall, cpu, line = time.perf_counter() - wall0, _cpu() - cpu0, clock.now() - line0
    done = await _completed(service) - done0
    counts = await service.store.count_by_status()
    out: dict[str, Any] = {
        "wall_seconds": round(wall, 1),
        "line_seconds": round(line, 1),
        "state_msgs_per_s": round((_state_messages(service) - msgs0) / wall, 1),
        "dispatch_round": timings.summary("dispatch"),
        "traffic_round": timings.summary("traffic_round"),
        "plan": timings.summary("plan"),
        "send_updates": timings.summary("send_updates"),
        "end_deadlock": timings.summary("end_deadlock"),
        "loop_lag": timings.summary("lag"),
        "cpu_cores": round(cpu / wall, 3),
        "rss_mib_peak": round(rss_peak, 1),
        "orders_completed": done,
        "orders_per_hour": round(done / line * 3600, 1),
        "trips_per_hour": round(
            (_sample(service, "linectl_robot_trips_total", outcome="sent") - trips0) / line * 3600,
            1,
        ),
        "orders_by_status": {s.value: n for s, n in counts.items() if n},
        "exceptions": await _exception_reasons(service),
        "traffic_waiting": sum(
            1 for s in service.fleet.snapshot() if service.orchestrator.traffic.waiting(s)
        ),
    }
    if profile is not None:
        print_profile(profile, args.profile)
        if args.profile_out:
            profile.dump_stats(args.profile_out)
    return out


async def _exception_reasons(service: LineService) -> dict[str, int]:
    """Orders in ``exception`` by the step that put them there (their first such event)."""
    page = await service.store.list_orders(status=OrderStatus.EXCEPTION, limit=1000)
    ids = [o.id for o in page.orders]
    reasons: dict[str, int] = {}
    for events in (await service.store.histories(ids)).values():
        why = next((e.type for e in events if e.status is OrderStatus.EXCEPTION), "unknown")
        reasons[why] = reasons.get(why, 0) + 1
    return reasons


def print_profile(profile: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profile)
    print(f"  profile of the controller (cProfile, measured window): top {top} by own time")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    print(f"  top {top} by cumulative time")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    sys.stdout.flush()


def wait_chain(service: LineService, serial: str) -> list[str]:
    """Who ``serial`` waits for, who that one waits for, ...: each robot with its node, the
    node it waits for and its order as master control last heard of it."""
    out: list[str] = []
    snapshots = service.fleet.snapshot()
    seen: set[str] = set()
    while serial not in seen and len(out) < 6:
        seen.add(serial)
        view = service.orchestrator.traffic.view(serial) or {}
        snap = snapshots.get(serial)
        base = cast(list[str], view.get("base", []))
        doing = (
            "no state"
            if snap is None
            else f"order {snap.order_id}, {len(snap.nodes_left)} nodes left"
        )
        wait = cast(dict[str, Any] | None, view.get("waiting_for"))
        if wait is None:
            out.append(f"{serial} on {base[:1]} ({doing}) waits for nobody")
            break
        out.append(f"{serial} on {base[:1]} ({doing}) waits {wait['seconds']} s for {wait['node']}")
        serial = wait["holder"]
        if serial in seen:
            out.append(f"back to {serial}: a cycle")
    return out


def instrument(service: LineService, timings: Timings) -> None:
    timings.wrap(service.orchestrator.dispatcher, "dispatch_once", "dispatch")
    timings.wrap(service.orchestrator.traffic.rounds, "round", "traffic_round")
    timings.wrap_sync(traffic, "plan", "plan")
    timings.wrap(service.orchestrator.traffic.orders, "send_updates", "send_updates")
    timings.wrap(service.orchestrator.traffic.deadlocks, "end_deadlock", "end_deadlock")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from simulators.line import free_endpoints

    aisles = args.aisles or max(20, math.ceil(args.robots / 10))
    base = warehouse(load_reference(), args.robots, aisles, args.depth)
    clock = ScaledClock(args.time_scale)
    opts = DemoOptions(time_scale=args.time_scale, seed=args.seed)
    per_minute = args.orders_per_minute or max(2.0, args.robots * 0.2)
    layout = {
        "robots": args.robots,
        "aisles": aisles,
        "depth": args.depth,
        "nodes": len(base.robots.nodes),
        "edges": len(base.robots.edges),
        "inductions": len(base.robots.inductions),
        "orders_per_minute": per_minute,
    }
    print(
        f"warehouse {aisles}x{args.depth}: {layout['nodes']} nodes, {layout['edges']} edges, "
        f"{layout['inductions']} inductions; {args.robots} robots; {per_minute:g} orders per "
        f"line minute; time scale {args.time_scale:g}",
        flush=True,
    )
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="linectl-fleetscale-") as tmp:
        cfg = prepare_config(base, opts, Path(tmp))
        cfg = free_endpoints(cfg, args.broker)
        mqtt = cfg.mqtt.model_copy(update={"interface_name": f"fs{secrets.token_hex(4)}"})
        cfg = cfg.model_copy(update={"mqtt": mqtt})
        child = Child(
            cfg.model_dump(mode="json"),
            clock.origin,
            args.time_scale,
            {
                "seed": args.seed,
                "orders_per_minute": per_minute,
                "state_interval": args.state_interval,
                "stuck_after": args.stuck_after,
            },
            args.log_level,
        )
        line_pipe, line_end = ctx.Pipe()
        swarm_pipe, swarm_end = ctx.Pipe()
        procs = [
            ctx.Process(target=_child, args=(line_process, child, line_end), name="bench-line"),
            ctx.Process(target=_child, args=(swarm_process, child, swarm_end), name="bench-swarm"),
        ]
        try:
            procs[0].start()
            await _wait(line_pipe)  # OPC UA servers up
            procs[1].start()
            await _wait(swarm_pipe)  # every robot ONLINE
            t_start = time.perf_counter()
            timings = Timings()
            async with serving(cfg, clock) as (service, api):
                instrument(service, timings)
                lag = asyncio.create_task(timings.loop_lag(), name="bench.lag")
                await wait_ready(service, api, within=REPORT_TIMEOUT)
                print(f"controller ready in {time.perf_counter() - t_start:.1f} s wall", flush=True)
                heap.tune_for_service()  # as ``linectl run`` does once it serves
                line_pipe.send("go")
                result = await measure(service, clock, args, timings)
                lag.cancel()
                swarm_pipe.send("figures")
                seen = await _wait(swarm_pipe)
                line_pipe.send("quiet")  # no more orders nor station calls
                orders = await _wait(line_pipe)
                for serial, detail in seen["stuck_detail"].items():
                    detail["waits"] = wait_chain(service, serial)
            # the controller first: its devices must not go away under it
            swarm_pipe.send("stop")
            line_pipe.send("stop")
            await _wait(line_pipe)
            await _wait(swarm_pipe)
        finally:
            for p in procs:
                p.join(timeout=15)
                if p.is_alive():
                    p.kill()
    swarm_cpu = cast(float, seen.pop("cpu"))
    return {
        "layout": layout,
        **result,
        "swarm": seen,
        "swarm_cpu_cores": round(swarm_cpu / max(result["wall_seconds"], 1e-9), 3),
        "orders_sent": orders,
    }


def report(r: dict[str, Any], args: argparse.Namespace) -> bool:
    """Print the figures; True when every target holds."""
    s = r["swarm"]

    def rounds(name: str, label: str) -> None:
        t = r[name]
        print(
            f"  {label:<34} p50 {t['p50_ms']:7.2f} ms  p99 {t['p99_ms']:7.2f} ms  "
            f"max {t['max_ms']:8.2f} ms  ({t['count']} rounds)"
        )

    print(
        f"fleet scale: {args.robots} robots, {r['line_seconds']:g} line s measured "
        f"({r['wall_seconds']:g} s wall)"
    )
    print(f"  state messages in/s                {r['state_msgs_per_s']:9.1f}")
    rounds("dispatch_round", "dispatch round")
    rounds("traffic_round", "planning round (plan + send)")
    rounds("plan", "planner (routing.traffic.plan)")
    rounds("send_updates", "  sending order updates")
    rounds("end_deadlock", "  deadlock handling")
    t = r["loop_lag"]
    print(
        f"  {'event loop lag (50 ms sleep)':<34} p50 {t['p50_ms']:7.2f} ms  "
        f"p99 {t['p99_ms']:7.2f} ms  max {t['max_ms']:8.2f} ms"
    )
    print(f"  controller CPU                     {r['cpu_cores']:9.3f} cores")
    print(f"  controller RSS (peak)              {r['rss_mib_peak']:9.1f} MiB")
    print(
        f"  orders/h                           {r['orders_per_hour']:9.1f}   "
        f"({r['orders_completed']} completed; robot trips/h {r['trips_per_hour']:.0f})"
    )
    print(f"  orders now                         {r['orders_by_status']}")
    if r["exceptions"]:
        print(f"  exceptions by step                 {r['exceptions']}")
    print(f"  collisions                         {len(s['collisions']):9d}   {s['collisions'][:5]}")
    print(
        f"  stuck robots                       {len(s['stuck']):9d}   {s['stuck'][:10]} "
        f"(longest standstill with an order {s['longest_standstill']} line s; "
        f"{s['executing']} with an order; {r['traffic_waiting']} waiting for a node)"
    )
    for serial, detail in s["stuck_detail"].items():
        print(f"    stuck {serial} at {detail['at']}, next {detail['ahead'][:2]}:")
        for step in detail["waits"]:
            print(f"      {step}")
    print(
        f"  swarm: {s['published']} states published, {s['handed_over']} totes handed over, "
        f"{r['swarm_cpu_cores']:.2f} cores; orders sent {r['orders_sent']}"
    )
    checks = {
        f"planning round p99 <= {TARGETS['plan_p99_ms']:g} ms": r["traffic_round"]["p99_ms"]
        <= TARGETS["plan_p99_ms"],
        f"controller < {TARGETS['cpu_cores']:g} cores": r["cpu_cores"] < TARGETS["cpu_cores"],
        f"RSS < {TARGETS['rss_mib']:g} MiB": r["rss_mib_peak"] < TARGETS["rss_mib"],
        "0 collisions": not s["collisions"],
        "0 stuck": not s["stuck"],
    }
    print("  targets: " + "; ".join(f"{k}: {'ok' if v else 'NOT MET'}" for k, v in checks.items()))
    print(f"  reproduce: {shlex.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    return all(checks.values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--robots", type=int, default=1000)
    p.add_argument("--duration", type=float, default=180.0, help="line seconds measured")
    p.add_argument("--warmup", type=float, default=30.0, help="line seconds before measuring")
    p.add_argument("--time-scale", type=float, default=1.0, help="line seconds per wall second")
    p.add_argument("--seed", type=int, default=7, help="the WMS orders' seed")
    p.add_argument("--aisles", type=int, default=0, help="default: robots/10, at least 20")
    p.add_argument("--depth", type=int, default=20, help="nodes per aisle")
    p.add_argument(
        "--orders-per-minute", type=float, default=0.0, help="per line minute (robots/5)"
    )
    p.add_argument("--state-interval", type=float, default=1.0, help="line s between states")
    p.add_argument("--stuck-after", type=float, default=120.0, help="line s without progress")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    p.add_argument("--profile", type=int, nargs="?", const=30, default=0, metavar="N")
    p.add_argument("--profile-out", help="with --profile: write the profile (pstats) here")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument("--log-level", default="ERROR")
    return p.parse_args(argv)


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    result = asyncio.run(run(args))
    ok = report(result, args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Traffic control's cost in throughput: whole lines run with node reservation on and off.

Each layout runs twice on the same seeded WMS orders, in one process each time as ``linectl
demo`` runs it (conveyor, AS/RS and robot simulators, controller, HTTP API, station operators),
on the MQTT broker at ``--broker`` under an interface name of its own, so runs never share
topics: once with ``robots.traffic.enabled`` (robots get their way node by node, at most
``lookahead`` nodes ahead) and once without (whole trips released; robots drive through each
other and the robot simulator counts every collision: two robots on one node, or head-on on one
edge).

Layouts: ``reference`` is the reference line file; ``grid`` (``grid:AISLESxNODESxROBOTS``,
default ``grid:10x20x20``) replaces its picking area by a larger generated one: AISLES parallel
aisles of NODES nodes (4 m apart, 3 m between nodes), cross aisles at both ends and in the
middle, two pick locations on each aisle node off the front cross aisle, a front cross aisle
with one parking spot per robot and four inductions onto the conveyor's first zones hanging off
it as dead ends, and two chargers.
Conveyor, sorter, AS/RS and SKUs stay as in the reference line; the reference stock is spread
over the grid's pick locations.

Everything is measured in line time, from the orders' arrival to the last order's end. Every
``--sample`` line seconds each robot's time is put down to one activity, from the controller's
view of the robot (its VDA 5050 state) and traffic control's waits:

* ``charging``: the robot reports charging;
* ``working``: a pick or drop action is running;
* ``driving``: the robot reports driving;
* ``reserve``: traffic control holds it: it waits for a node another robot holds;
* ``stopped``: it has an order left but stands without a wait (at the end of its released way
  before the order update arrives, or before an action starts);
* ``idle``: no order left.

A reservation wait is also put down to what the robot holding the node does, and counted as
head-on when that robot's own way leads through the waiting robot's node.

Prints, per layout and mode: orders per hour of line time, completed orders, collisions, the
robot time split (shares of robot time, and robot seconds per completed order), where the
reservation waits were (the waiting robot's node and the node it waits for), traffic
control's counters (nodes released, re-routes by reason, evacuations, give-ways), wall time and
the event loop's lag; per layout the throughput ratio with control on to off.

    python bench/traffic_throughput.py [--layouts reference,grid] [--orders N]
        [--time-scale 20] [--seed 7] [--broker mqtt://127.0.0.1:1883] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import secrets
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.app.demo import DemoOptions, prepare_config, running_line, wait_ready
from controller.app.http import ApiServer
from controller.linefile.checks import cross_check
from controller.linefile.loader import load_reference
from controller.orders.model import OrderStatus
from controller.service.service import LineService
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig, StockEntry
from kernel.config.robots import Charger, Induction, MapEdge, MapNode, Robot, StorageLocation
from simulators.station import StationSimulator
from simulators.wms import WmsGenerator

ACTIVITIES = ("driving", "reserve", "stopped", "working", "charging", "idle")
DEFAULT_ORDERS = {"reference": 150, "grid": 300}
WORK_ACTIONS = {"pick", "drop"}


# --- layouts ------------------------------------------------------------------------------------


def grid_layout(base: LineConfig, aisles: int, nodes: int, robots: int) -> LineConfig:
    """``base`` with its picking area replaced by a generated aisle grid (see the module doc)."""
    if aisles < 2 or nodes < 3 or robots < 1:
        raise ValueError("a grid needs at least 2 aisles of 3 nodes and one robot")
    dx, dy = 4.0, 3.0
    cross = {0, nodes // 2, nodes - 1}  # the rows robots can change aisles on

    def node(a: int, r: int) -> str:
        return f"A{a:02d}N{r:02d}"

    map_nodes = [
        MapNode(id=node(a, r), x=a * dx, y=r * dy) for a in range(aisles) for r in range(nodes)
    ]
    edges: list[MapEdge] = []
    for a in range(aisles):
        edges += [MapEdge(start=node(a, r), end=node(a, r + 1)) for r in range(nodes - 1)]
        if a + 1 < aisles:
            edges += [MapEdge(start=node(a, r), end=node(a + 1, r)) for r in sorted(cross)]
    # a front cross aisle joins the aisles; parking spots (one per robot, the robots' homes)
    # and the inductions onto the conveyor's first zones hang below it as dead ends, so an
    # idle robot at home stands in nobody's way
    zones = [z.id for z in base.conveyor.zones[:4]]
    width = (aisles - 1) * dx
    slots = robots + len(zones)
    front = [
        MapNode(id=f"F{i:02d}", x=round(width * i / (slots - 1), 2), y=-2.0) for i in range(slots)
    ]
    map_nodes += front
    edges += [MapEdge(start=front[i].id, end=front[i + 1].id) for i in range(slots - 1)]
    for a in range(aisles):
        nearest = min(front, key=lambda f: abs(f.x - a * dx))
        edges.append(MapEdge(start=nearest.id, end=node(a, 0)))
    at_induction = {round((i + 0.5) * slots / len(zones)) for i in range(len(zones))}
    inductions: list[Induction] = []
    parking: list[MapNode] = []
    for i, f in enumerate(front):
        if i in at_induction:
            n = MapNode(id=f"IND{len(inductions) + 1}", x=f.x, y=-4.0)
            zone = zones[len(inductions)]
            inductions.append(Induction(id=f"INDUCT{len(inductions) + 1}", node=n.id, zone=zone))
        else:
            n = MapNode(id=f"P{len(parking) + 1:02d}", x=f.x, y=-4.0)
            parking.append(n)
        map_nodes.append(n)
        edges.append(MapEdge(start=f.id, end=n.id))
    chargers = []
    for i, (x, a) in enumerate(((-4.0, 0), (width + 4.0, aisles - 1))):
        n = MapNode(id=f"CHG{i + 1}", x=x, y=0.0)
        map_nodes.append(n)
        edges.append(MapEdge(start=n.id, end=node(a, 0)))
        chargers.append(Charger(id=f"CHARGER{i + 1}", node=n.id))
    locations = [
        StorageLocation(id=f"L{a:02d}{r:02d}{side}", node=node(a, r))
        for a in range(aisles)
        for r in range(1, nodes)
        for side in "AB"
    ]
    models = sorted(base.robots.models)
    fleet = [
        Robot(
            serial=f"R{i + 1:02d}",
            model=models[0],
            version="2.0.0" if i % 2 else "2.1.0",
            home=p.id,
        )
        for i, p in enumerate(parking)
    ]
    area = PickingArea(map_nodes, edges, locations, chargers, inductions, fleet)
    return with_picking_area(base, area, f"grid-{aisles}x{nodes}x{robots}", aisles * 1000 + nodes)


@dataclass(frozen=True)
class PickingArea:
    """A generated picking area: the robots' map, pick locations, chargers, inductions, fleet."""

    nodes: list[MapNode]
    edges: list[MapEdge]
    locations: list[StorageLocation]
    chargers: list[Charger]
    inductions: list[Induction]
    fleet: list[Robot]


def with_picking_area(
    base: LineConfig, area: PickingArea, line_id: str, seed: int, extra_every: int = 4
) -> LineConfig:
    """``base`` (a valid line) with its picking area replaced by ``area``; the reference stock
    spread evenly over the pick locations (shuffled by ``seed``), then every SKU it keeps
    without replenishment once more on every further ``extra_every``-th location."""
    order = list(area.locations)
    random.Random(seed).shuffle(order)
    stock = [s.model_copy(update={"location": order[i].id}) for i, s in enumerate(base.stock)]
    plain = sorted({s.sku for s in base.stock if s.replenish_below == 0})
    stock += [
        StockEntry(location=loc.id, sku=plain[i % len(plain)], quantity=2000)
        for i, loc in enumerate(order[len(base.stock) :: extra_every])
    ]
    robots_area = base.robots.model_copy(
        update={
            "nodes": area.nodes,
            "edges": area.edges,
            "storage_locations": area.locations,
            "chargers": area.chargers,
            "inductions": area.inductions,
            "fleet": area.fleet,
            "traffic": base.robots.traffic.model_copy(update={"parking": []}),
        }
    )
    line = base.line.model_copy(update={"id": line_id})
    cfg = base.model_copy(update={"robots": robots_area, "stock": stock, "line": line})
    issues = cross_check(LineConfig.model_validate(cfg.model_dump()))
    if issues:
        raise ValueError(f"generated layout is not a valid line: {issues[0]}")
    return cfg


def layout(name: str) -> LineConfig:
    base = load_reference()
    if name == "reference":
        return base
    kind, _, size = name.partition(":")
    if kind != "grid":
        raise ValueError(f"unknown layout {name!r}: reference or grid[:AISLESxNODESxROBOTS]")
    try:
        aisles, nodes, robots = (int(v) for v in (size or "10x20x20").split("x"))
    except ValueError:
        raise ValueError(f"grid size {size!r} is not AISLESxNODESxROBOTS") from None
    return grid_layout(base, aisles, nodes, robots)


def with_traffic(cfg: LineConfig, overrides: list[str]) -> LineConfig:
    """``cfg`` with ``robots.traffic`` settings overridden (``KEY=VALUE``, VALUE as YAML)."""
    if not overrides:
        return cfg
    values = cfg.robots.traffic.model_dump()
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in values:
            raise ValueError(f"--traffic {item!r}: KEY=VALUE with KEY one of {sorted(values)}")
        values[key] = yaml.safe_load(value)
    traffic = type(cfg.robots.traffic).model_validate(values)
    return cfg.model_copy(update={"robots": cfg.robots.model_copy(update={"traffic": traffic})})


# --- one run ------------------------------------------------------------------------------------


@dataclass
class Activity:
    """Robot time by activity, sampled every ``period`` line seconds."""

    period: float
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ACTIVITIES, 0.0))
    # reservation waits by what the robot holding the node does, and those head-on
    holders: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ACTIVITIES, 0.0))
    head_on: float = 0.0
    # reservation waits by where: "waiting robot's node -> node it waits for"
    places: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    # (line seconds since the start, robots idle) per sample: when in the run robots had no work
    idle_timeline: list[tuple[float, int]] = field(default_factory=list)

    def shares(self) -> dict[str, float]:
        total = sum(self.seconds.values()) or 1.0
        return {a: round(self.seconds[a] / total, 3) for a in ACTIVITIES}

    def waits(self) -> dict[str, float]:
        """Reservation waits: by the holder's activity, and head-on (shares of the waits)."""
        total = self.seconds["reserve"] or 1.0
        out = {f"holder_{a}": round(self.holders[a] / total, 3) for a in ACTIVITIES}
        out["head_on"] = round(self.head_on / total, 3)
        return out

    def top_places(self, n: int = 8) -> list[tuple[str, float]]:
        """Where the most reservation waits were: shares of the waits, largest first."""
        total = self.seconds["reserve"] or 1.0
        ranked = sorted(self.places.items(), key=lambda kv: -kv[1])[:n]
        return [(place, round(seconds / total, 3)) for place, seconds in ranked]

    def idle_by_tenth(self, robots: int) -> list[float]:
        """Idle share of robot time in each tenth of the run: idle robots spread over the run
        (work held back upstream) or bunched at its end (the last trips)."""
        if not self.idle_timeline or not robots:
            return []
        end = self.idle_timeline[-1][0] or 1.0
        idle, count = [0] * 10, [0] * 10
        for t, n in self.idle_timeline:
            k = min(9, int(t / end * 10))
            idle[k] += n
            count[k] += 1
        return [round(i / (c * robots), 2) if c else 0.0 for i, c in zip(idle, count, strict=True)]


def classify(robot: Any, waiting: bool) -> str:
    if robot.charging:
        return "charging"
    if any(
        a.status in ("INITIALIZING", "RUNNING") and a.action_type in WORK_ACTIONS
        for a in robot.actions
    ):
        return "working"
    if robot.driving:
        return "driving"
    if waiting:
        return "reserve"
    if robot.order_id is not None and robot.executing:
        return "stopped"
    return "idle"


async def sample(service: LineService, clock: ScaledClock, activity: Activity) -> None:
    """Put each robot's time down to its activity until cancelled; a wait for a reservation
    also to what the robot holding the node does, and whether that robot's own way leads back
    through the waiting robot's node (head-on)."""
    traffic = service.orchestrator.traffic
    last = start = clock.now()
    while True:
        await clock.sleep(activity.period)
        now = clock.now()
        dt, last = now - last, now
        robots = service.fleet.snapshot()
        doing = {s: classify(r, traffic.waiting(s)) for s, r in robots.items()}
        activity.idle_timeline.append((now - start, sum(w == "idle" for w in doing.values())))
        for serial, what in doing.items():
            activity.seconds[what] += dt
            wait = traffic.shared.waits.get(serial) if what == "reserve" else None
            if wait is None:
                continue
            activity.holders[doing.get(wait.holder, "idle")] += dt
            place = f"{wait.at}->{wait.node}"
            activity.places[place] = activity.places.get(place, 0.0) + dt
            try:
                way = traffic.state.robot(wait.holder).route
            except KeyError:
                continue
            if wait.at in way[1:]:
                activity.head_on += dt
        activity.samples += 1


def metric_total(service: LineService, name: str, label: str | None = None) -> Any:
    registry = service.metrics.registry
    out: dict[str, float] = {}
    for family in registry.collect():
        if family.name != name:
            continue
        for s in family.samples:
            if s.name.endswith("_total"):
                key = s.labels.get(label, "") if label else ""
                out[key] = out.get(key, 0.0) + s.value
    return out if label else out.get("", 0.0)


async def run_once(
    base: LineConfig, traffic_on: bool, args: argparse.Namespace, orders: int
) -> dict[str, Any]:
    wall0 = time.monotonic()
    clock = ScaledClock(args.time_scale)
    t0_line = clock.now()
    opts = DemoOptions(orders=orders, time_scale=args.time_scale, seed=args.seed)
    traffic = base.robots.traffic.model_copy(update={"enabled": traffic_on})
    base = base.model_copy(update={"robots": base.robots.model_copy(update={"traffic": traffic})})
    with tempfile.TemporaryDirectory(prefix="linectl-trafficbench-") as tmp:
        cfg = prepare_config(base, opts, Path(tmp))
        # topics of their own on a shared broker
        iface = f"tb{secrets.token_hex(4)}"
        cfg = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update={"interface_name": iface})})
        async with running_line(cfg, clock, args.broker) as (line, service, api):
            result = await drive(line.config, service, api, clock, opts, args, line)
            incidents = line.robots.collisions
            result["collisions"] = len(incidents)
            result["collision_incidents"] = [
                f"{' and '.join(c.serials)} on {c.place.describe()}, "
                f"{c.at - t0_line:.0f} line s after the start"
                for c in incidents[:10]
            ]
    result["wall_seconds"] = round(time.monotonic() - wall0, 1)
    return result


async def drive(
    cfg: LineConfig,
    service: LineService,
    api: ApiServer,
    clock: ScaledClock,
    opts: DemoOptions,
    args: argparse.Namespace,
    line: Any,
) -> dict[str, Any]:
    await wait_ready(service, api, within=60)
    token = cfg.api.tokens[0].token
    stations = StationSimulator(cfg, clock, api.url, token, on_return=line.return_tote)
    activity = Activity(args.sample)
    lag = Lag()
    async with asyncio.TaskGroup() as tg:
        operators = tg.create_task(stations.run(), name="sim.stations")
        try:
            wms = WmsGenerator(cfg, api.url, token, seed=opts.seed, b2b_share=opts.b2b_share)
            t0 = clock.now()
            sampler = tg.create_task(sample(service, clock, activity), name="bench.sample")
            lagger = tg.create_task(lag.watch(), name="bench.lag")
            sent = await wms.send(opts.orders, clock.utcnow())
            total = len(sent.order_ids)
            deadline = time.monotonic() + args.timeout
            counts: dict[OrderStatus, int] = {}
            while time.monotonic() < deadline:
                counts = await service.store.count_by_status()
                if sum(n for s, n in counts.items() if s.terminal) >= total:
                    break
                await asyncio.sleep(0.1)
            line_seconds = clock.now() - t0
            sampler.cancel()
            lagger.cancel()
        finally:
            operators.cancel()
    completed = counts.get(OrderStatus.COMPLETED, 0)
    return {
        "orders": total,
        "completed": completed,
        "by_status": {s.value: n for s, n in counts.items() if n},
        "line_seconds": round(line_seconds, 1),
        "orders_per_hour": round(completed / line_seconds * 3600, 1) if line_seconds else 0.0,
        "robots": len(cfg.robots.fleet),
        "time": activity.shares(),
        "reserve_waits": activity.waits(),
        "wait_places": activity.top_places(),
        "idle_by_tenth": activity.idle_by_tenth(len(cfg.robots.fleet)),
        "robot_seconds": {a: round(activity.seconds[a], 1) for a in ACTIVITIES},
        "traffic": {
            "released_nodes": metric_total(service, "linectl_traffic_released_nodes"),
            "reroutes": metric_total(service, "linectl_traffic_reroutes", "reason"),
            "evacuations": metric_total(service, "linectl_traffic_evacuations"),
            "give_ways": metric_total(service, "linectl_traffic_deadlocks"),
        },
        "robot_trips": metric_total(service, "linectl_robot_trips", "outcome").get("sent", 0.0),
        "event_loop_lag_ms": lag.summary(),
    }


@dataclass
class Lag:
    """How late the event loop wakes a 50 ms sleep (wall milliseconds): a busy loop makes the
    controller react late in line time, which costs throughput the traffic rules do not."""

    late: list[float] = field(default_factory=list)

    async def watch(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.05)
            self.late.append((time.monotonic() - t - 0.05) * 1000)

    def summary(self) -> dict[str, float]:
        if not self.late:
            return {"mean": 0.0, "p99": 0.0}
        s = sorted(self.late)
        return {"mean": round(sum(s) / len(s), 1), "p99": round(s[int(0.99 * (len(s) - 1))], 1)}


# --- report -------------------------------------------------------------------------------------


def print_run(name: str, mode: str, r: dict[str, Any]) -> None:
    t = r["time"]
    split = "  ".join(f"{a} {t[a] * 100:4.1f}%" for a in ACTIVITIES)
    tr = r["traffic"]
    reroutes = ", ".join(f"{k} {int(v)}" for k, v in sorted(tr["reroutes"].items())) or "0"
    print(
        f"{name:<18} {mode:<4} {r['orders_per_hour']:7.1f} orders/h  "
        f"{r['completed']}/{r['orders']} completed in {r['line_seconds']:.0f} line s  "
        f"collisions {r['collisions']}  ({r['wall_seconds']:.0f} s wall, loop lag mean "
        f"{r['event_loop_lag_ms']['mean']} ms p99 {r['event_loop_lag_ms']['p99']} ms)"
    )
    print(f"{'':<23} robot time: {split}")
    done = max(r["completed"], 1)
    per_order = "  ".join(f"{a} {r['robot_seconds'][a] / done:5.1f}" for a in ACTIVITIES)
    print(f"{'':<23} robot s per order: {per_order}")
    tenths = " ".join(f"{v * 100:3.0f}" for v in r["idle_by_tenth"])
    print(f"{'':<23} idle % by tenth of the run: {tenths}")
    w = r["reserve_waits"]
    if t["reserve"]:
        holders = "  ".join(f"{a} {w['holder_' + a] * 100:4.1f}%" for a in ACTIVITIES)
        print(f"{'':<23} reserve waits by holder: {holders}; head-on {w['head_on'] * 100:.1f}%")
        places = "  ".join(f"{place} {share * 100:.0f}%" for place, share in r["wait_places"])
        print(f"{'':<23} waits at (robot's node -> node it waits for): {places}")
    print(
        f"{'':<23} trips {int(r['robot_trips'])}  released nodes {int(tr['released_nodes'])}  "
        f"re-routes {reroutes}  evacuations {int(tr['evacuations'])}  "
        f"give-ways {int(tr['give_ways'])}"
    )


async def main(args: argparse.Namespace) -> int:
    print("$ " + shlex.join([Path(sys.executable).name, *sys.argv]), flush=True)
    print(
        f"time scale {args.time_scale}, seed {args.seed}, broker {args.broker}, "
        f"robot time sampled every {args.sample} line s",
        flush=True,
    )
    results: dict[str, dict[str, Any]] = {}
    failed = False
    for name in args.layouts.split(","):
        cfg = with_traffic(layout(name), args.traffic)
        kind = name.partition(":")[0]
        orders = args.orders or DEFAULT_ORDERS[kind]
        per_mode: dict[str, Any] = {}
        for mode, on in (("on", True), ("off", False)):
            if mode not in args.modes.split(","):
                continue
            r = await run_once(cfg, on, args, orders)
            per_mode[mode] = r
            print_run(f"{name} ({r['robots']} robots)", mode, r)
            if r["completed"] < r["orders"]:
                print(f"{'':<23} not every order completed: {r['by_status']}")
            if on and r["collisions"]:
                print(f"{'':<23} COLLISIONS with traffic control on:")
                for incident in r["collision_incidents"]:
                    print(f"{'':<25}{incident}")
                failed = True
        if len(per_mode) < 2:
            results[name] = per_mode
            continue
        off = per_mode["off"]["orders_per_hour"]
        ratio = per_mode["on"]["orders_per_hour"] / off if off else 0.0
        per_mode["ratio_on_off"] = round(ratio, 3)
        print(f"{name:<18} on/off {ratio:.2f}", flush=True)
        results[name] = per_mode
    if args.json:
        text = json.dumps(results, indent=2)
        await asyncio.to_thread(Path(args.json).write_text, text)
    return 1 if failed else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layouts", default="reference,grid", help="reference, grid[:AxNxR]")
    p.add_argument(
        "--orders",
        type=int,
        default=0,
        help="orders per run (default: 150 on the reference line, 300 on a grid)",
    )
    p.add_argument("--time-scale", type=float, default=20.0, help="line seconds per wall second")
    p.add_argument("--seed", type=int, default=7, help="the WMS orders' seed")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    p.add_argument("--sample", type=float, default=0.5, help="line seconds between samples")
    p.add_argument("--timeout", type=float, default=300.0, help="wall seconds per run at most")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument(
        "--modes", default="on,off", help="on, off or both: traffic control on and/or off"
    )
    p.add_argument(
        "--traffic",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a robots.traffic setting of the layouts (e.g. lookahead=4); repeatable",
    )
    p.add_argument("--log-level", default="ERROR")
    return p.parse_args(argv)


if __name__ == "__main__":
    ns = parse_args()
    logging.basicConfig(level=ns.log_level, stream=sys.stderr)
    sys.exit(asyncio.run(main(ns)))

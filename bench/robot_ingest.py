"""VDA 5050 state ingest: state messages per second the master control takes in, and its CPU.

A load generator in a separate process (its CPU is not counted) publishes valid ``state``
messages for ``--robots`` robots at ``--rate`` Hz each on an interface name of its own, through
a real broker (the machine's Mosquitto on 127.0.0.1:1883 unless ``--broker`` says otherwise).
This process runs a real :class:`VdaMasterControl` for a fleet of that size, generated from the
reference line's model, and validates and tracks every message as in production. After a
warm-up, ``--duration`` seconds are measured. Prints messages/s received and processed, how many
were dropped (sent but never received) or invalid, the CPU this process used (user+sys seconds
per wall second, and per message processed: the figure that does not depend on what else the
machine runs), per-message handling time p50/p99 and the command line that reproduces the run.

``--profile`` runs cProfile in this process over the measured window and prints where the CPU
goes: the time spent in the functions of each part (MQTT client, event loop, JSON, schema
validation, tracking, metrics, logging) per message, then the top functions by own time.
The profiler slows every call down, so its figures are for comparing parts, not for the CPU
per message.

    python bench/robot_ingest.py [--robots 300] [--rate 10] [--duration 20] [--broker URL]
                                 [--profile [N]]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import pstats
import resource
import shlex
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.linefile.loader import load_reference
from devices.base import DeviceEvent
from devices.vda5050.link import broker_address
from devices.vda5050.master.control import VdaMasterControl
from devices.vda5050.messages import MessageBuilder, Pose, StateBody
from devices.vda5050.topics import topic
from kernel import heap
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig, Robot
from kernel.metrics import Metrics

WARMUP = 3.0  # wall seconds of load before the measured window
REPORT_TIMEOUT = 60.0  # wall seconds to wait for the load generator beyond its run time


def fleet_config(robots: int) -> LineConfig:
    """The reference line with ``robots`` robots (half 2.0, half 2.1) spread over its nodes."""
    line = load_reference(env={})
    model = line.robots.fleet[0].model
    nodes = [n.id for n in line.robots.nodes]
    fleet = [
        Robot(
            serial=f"B{i:04d}",
            model=model,
            version="2.0.0" if i % 2 else "2.1.0",
            home=nodes[i % len(nodes)],
        )
        for i in range(robots)
    ]
    return line.model_copy(update={"robots": line.robots.model_copy(update={"fleet": fleet})})


@dataclass(frozen=True)
class Load:
    url: str
    interface_name: str
    robots: Sequence[tuple[str, str, str, str]]  # serial, manufacturer, version, home node
    rate: float
    seconds: float


def generate(load: Load, report: Connection) -> None:
    """The load generator process: ONLINE for every robot, then states at ``rate`` Hz each."""
    address = broker_address(load.url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-load-{uuid.uuid4().hex[:6]}"
    )
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port, keepalive=30)
    client.loop_start()
    clock = ScaledClock(1.0)
    peers = []
    for serial, manufacturer, version, home in load.robots:
        builder = MessageBuilder(version, manufacturer, serial, clock)
        state_topic = topic(load.interface_name, manufacturer, serial, "state")
        conn_topic = topic(load.interface_name, manufacturer, serial, "connection")
        online = json.dumps(builder.connection("ONLINE"))
        client.publish(conn_topic, online, qos=1).wait_for_publish()
        peers.append((builder, state_topic, home))
    report.send("online")
    sent = 0
    tick = 0.01
    per_tick = len(peers) * load.rate * tick
    start = time.perf_counter()
    due = 0.0
    i = 0
    while (now := time.perf_counter() - start) < load.seconds:
        due += per_tick
        while due >= 1.0:
            builder, state_topic, home = peers[i % len(peers)]
            x = (i // len(peers)) % 100 * 0.05
            body = StateBody(
                last_node_id=home,  # a node of the map: the robots are available
                pose=Pose(x, 1.0, 0.0, "floor-1"),
                velocity=(0.5, 0.0, 0.0),
                battery_charge=80.0,
                driving=True,
            )
            client.publish(state_topic, json.dumps(builder.state(body)), qos=0)
            sent += 1
            i += 1
            due -= 1.0
        time.sleep(max(0.0, (now // tick + 1) * tick - (time.perf_counter() - start)))
    client.loop_stop()
    client.disconnect()
    report.send(sent)


@dataclass
class Window:
    wall: float
    cpu: float
    ok: float
    invalid: float
    handled: int


def _counter(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "linectl_mqtt_messages_total", {"direction": "in", "topic": "state", "result": result}
    )
    return value or 0.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# the parts of the controller the profile breakdown names, by where a function is defined (the
# first that matches); a built-in function counts for the parts of its callers
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("MQTT client (paho, aiomqtt)", ("/paho/", "/aiomqtt/", "vda5050/mqtt_client.py")),
    ("JSON decoding", ("/json/", "orjson")),
    ("schema validation", ("vda5050/schema.py", "fastjsonschema", "<string>", "/re/")),
    ("metrics", ("prometheus_client",)),
    ("logging", ("/logging/", "kernel/logs")),
    ("intake (topic, checks)", ("master/intake.py", "vda5050/topics.py")),
    (
        "tracking",
        (
            "vda5050/tracker.py",
            "vda5050/attention.py",
            "vda5050/placement.py",
            "vda5050/instant.py",
            "vda5050/answers.py",
            "vda5050/guard.py",
            "master/output.py",
            "master/pending.py",
            "kernel/clock.py",
            "devices/outage.py",
            "/enum.py",
            "/datetime.py",
        ),
    ),
    ("event loop (asyncio, selectors)", ("/asyncio/", "selectors.py", "socket.py")),
    ("bench harness", ("robot_ingest.py",)),
)
Func = tuple[str, int, str]
IDLE = "(idle: the event loop waiting)"


def _part(func: Func) -> str | None:
    """The part a Python function belongs to; None for a built-in (``~``)."""
    filename = func[0]
    if filename == "~":
        return None
    for name, needles in PARTS:
        if any(n in filename for n in needles):
            return name
    return "other"


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Own time (seconds) per part; a built-in's time is shared among its callers' parts in
    proportion to the time each call site spent in it."""
    Row = tuple[int, int, float, float, dict[Func, tuple[int, int, float, float]]]
    table = cast(dict[Func, Row], getattr(stats, "stats"))  # noqa: B009 (not in pstats' stubs)
    parts: dict[str, float] = {}

    def owner(func: Func, depth: int = 0) -> str:
        part = _part(func)
        if part is not None or depth > 5:
            return part or "other"
        callers = table.get(func, (0, 0, 0.0, 0.0, {}))[4]
        if not callers:
            return "other"
        top = max(callers.items(), key=lambda c: c[1][2])[0]
        return owner(top, depth + 1)

    for func, (_cc, _nc, tt, _ct, callers) in table.items():
        if func[2] == "<method 'poll' of 'select.epoll' objects>":
            parts[IDLE] = parts.get(IDLE, 0.0) + tt  # the event loop waiting: wall, not CPU
            continue
        if _part(func) is not None or not callers:
            key = owner(func)
            parts[key] = parts.get(key, 0.0) + tt
            continue
        shared = sum(edge[2] for edge in callers.values()) or 1.0
        for caller, edge in callers.items():
            key = owner(caller)
            parts[key] = parts.get(key, 0.0) + tt * edge[2] / shared
    return parts


def print_profile(profile: cProfile.Profile, messages: float, top: int) -> None:
    stats = pstats.Stats(profile)
    parts = breakdown(stats)
    idle = parts.pop(IDLE, 0.0)
    total = sum(parts.values()) or 1.0
    per = max(messages, 1.0)
    print(f"  profile (cProfile, measured window, {messages:,.0f} messages): own time per part")
    for name, seconds in sorted(parts.items(), key=lambda p: -p[1]):
        print(f"    {name:34s} {seconds * 1e6 / per:8.1f} us/msg  {100 * seconds / total:5.1f} %")
    print(f"    {'total (profiled, without idle)':34s} {total * 1e6 / per:8.1f} us/msg")
    print(f"    {IDLE:34s} {idle * 1e6 / per:8.1f} us/msg")
    print(f"  top {top} functions by own time")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def receive(pipe: Connection) -> object:
    """The generator's next report, waited for in a worker thread."""
    if not await asyncio.to_thread(pipe.poll, REPORT_TIMEOUT):
        raise TimeoutError("the load generator did not report")
    return pipe.recv()


async def run(args: argparse.Namespace) -> None:
    config = fleet_config(args.robots)
    interface_name = f"benchingest{uuid.uuid4().hex[:8]}"
    metrics = Metrics()
    master = VdaMasterControl(config, ScaledClock(1.0), metrics, args.broker, interface_name)
    timings: list[int] = []
    handle = master._intake.handle

    async def timed(full_topic: str, raw: bytes) -> None:
        t0 = time.perf_counter_ns()
        await handle(full_topic, raw)
        if full_topic.endswith("/state"):
            timings.append(time.perf_counter_ns() - t0)

    master._intake.handle = timed  # type: ignore[method-assign]
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()

    async def drain() -> None:
        while True:
            await events.get()

    robots = [
        (r.serial, config.robots.models[r.model].manufacturer, r.version, r.home)
        for r in config.robots.fleet
    ]
    load = Load(args.broker, interface_name, robots, args.rate, WARMUP + args.duration)
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    generator = multiprocessing.get_context("spawn").Process(
        target=generate, args=(load, theirs), name="bench-load"
    )
    async with asyncio.TaskGroup() as tg:
        master_task = tg.create_task(master.run(events), name="bench.master")
        drain_task = tg.create_task(drain(), name="bench.events")
        async with asyncio.timeout(10):
            # the gauge is the only outward sign that the subscriptions are in place
            while metrics.registry.get_sample_value("linectl_mqtt_connected") != 1:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        generator.start()
        await receive(ours)  # every robot ONLINE
        heap.tune_for_service()  # as ``linectl run`` does once it serves
        await asyncio.sleep(WARMUP)
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        begin = Window(time.perf_counter(), _cpu(), _counter(metrics, "ok"), 0.0, len(timings))
        begin.invalid = _counter(metrics, "invalid")
        await asyncio.sleep(args.duration)
        end = Window(time.perf_counter(), _cpu(), _counter(metrics, "ok"), 0.0, len(timings))
        end.invalid = _counter(metrics, "invalid")
        if profile is not None:
            profile.disable()
        sent = cast(int, await receive(ours))
        await asyncio.sleep(1.0)  # what is still in flight
        received = len(timings)
        master_task.cancel()
        drain_task.cancel()
    generator.join()

    wall = end.wall - begin.wall
    processed = end.ok - begin.ok
    window_us = sorted(t / 1000 for t in timings[begin.handled : end.handled])
    print(
        f"VDA 5050 state ingest: {args.robots} robots x {args.rate:g} Hz "
        f"= {args.robots * args.rate:,.0f} msgs/s offered, {args.duration:g} s measured"
    )
    print(f"  received/s     {(end.handled - begin.handled) / wall:10.0f}")
    print(f"  processed/s    {processed / wall:10.0f}   (valid, tracked)")
    print(f"  invalid        {end.invalid:10.0f}")
    print(f"  dropped        {sent - received:10d}   (sent {sent}, received {received})")
    print(f"  controller CPU {(end.cpu - begin.cpu) / wall:10.2f} cores (user+sys / wall)")
    cpu_us = (end.cpu - begin.cpu) * 1e6 / max(processed, 1.0)
    print(f"  controller CPU {cpu_us:10.1f} us per message processed (user+sys)")
    print(f"  handle p50     {percentile(window_us, 0.50):10.1f} us per message")
    print(f"  handle p99     {percentile(window_us, 0.99):10.1f} us per message")
    print(f"  reproduce      {shlex.join([sys.executable, *sys.argv])}")
    if profile is not None:
        print_profile(profile, processed, args.profile)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--robots", type=int, default=300)
    ap.add_argument("--rate", type=float, default=10.0, help="state messages/s per robot")
    ap.add_argument("--duration", type=float, default=20.0, help="measured wall seconds")
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    ap.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=25,
        default=0,
        metavar="N",
        help="profile the measured window: CPU per part and the top N functions (25)",
    )
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()

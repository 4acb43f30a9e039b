"""Cost per order as the order count grows: does the controller stay linear?

For each ``--orders`` count, the reference line runs as separate processes (the conveyor and
AS/RS simulators, the AS/RS handing the totes it retrieves to the conveyor, the robot fleet on
the machine's broker, and ``linectl run`` on a SQLite store of the run's own, as
:mod:`tests.line_processes` starts them), the orders go in over HTTP as a
WMS sends them (:class:`simulators.wms.WmsGenerator`, seeded, ``--b2b-share`` of them B2B),
the simulated station operators run from here (they verify B2B totes and confirm
replenishments; AS/RS totes they send back reach the aisle's P&D input after the return
conveyor's ``RETURN_SECONDS``, through the AS/RS simulator's ``Simulation.ArriveAtPd``), and the
run ends when every order
is terminal or stopped in ``exception`` (which waits for an operator), or at ``--timeout``.

Prints per count: wall seconds from the first order to the last one settled and per order,
orders per hour of line time, the controller's CPU seconds per order, and its peak RSS (the
kernel's high-water mark of the ``linectl run`` process, ``VmHWM``); then how the per-order
figures and the peak RSS grew from the smallest count to the largest. Linear cost means flat
per-order figures; RSS may grow with what the store's pages and the queue hold, but not faster
than the orders.

    python -m bench.order_scaling [--orders 200 1000 5000] [--time-scale 30]
        [--mqtt-url mqtt://127.0.0.1:1883] [--timeout 3600] [--seed 7] [--b2b-share 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from asyncua import Client

from controller.linefile.loader import load_reference
from controller.orders.model import OrderStatus
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.line import RETURN_SECONDS
from simulators.station import StationSimulator
from simulators.wms import WmsGenerator
from tests.line_processes import TOKEN, line_processes

SETTLED = {s.value for s in OrderStatus if s.terminal} | {OrderStatus.EXCEPTION.value}
POLL = 1.0  # wall seconds between looks at the order counts


@dataclass
class Run:
    orders: int
    wall: float  # seconds from the first order sent to the last one settled
    line_seconds: float
    settled: dict[str, int]
    cpu: float  # the controller's user + system seconds over the whole run
    peak_rss: int  # bytes
    timed_out: bool
    # orders that ended in exception: their waiting reason and the last steps of their history
    exceptions: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return self.settled.get(OrderStatus.COMPLETED.value, 0)


def _proc_status(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _proc_cpu(pid: int) -> float:
    """utime + stime of /proc/PID/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _counts(http: httpx.AsyncClient) -> dict[str, int]:
    view = (await http.get("/v1/line")).json()
    orders = view.get("orders") or {}
    return {k: v for k, v in (orders.get("by_status") or {}).items() if v}


async def _exceptions(http: httpx.AsyncClient, shown: int = 10) -> list[str]:
    """The first ``shown`` orders in exception: why, and their history's last steps."""
    page = (await http.get("/v1/orders", params={"status": "exception", "limit": shown})).json()
    out = []
    for order in page["orders"]:
        detail = (await http.get(f"/v1/orders/{order['id']}")).json()
        steps = " > ".join(
            f"{e['type']}@{e['at'][11:19]}" for e in (detail.get("history") or [])[-6:]
        )
        out.append(f"{order['id']}: {detail.get('waiting_reason')} [{steps}]")
    return out


async def return_to_rack(cfg: LineConfig, clock: ScaledClock, tote: str, aisle: str) -> None:
    """The return conveyor: ``tote`` set down at ``aisle``'s P&D input after its ride."""
    await clock.sleep(RETURN_SECONDS)
    try:
        async with Client(cfg.asrs.opcua.endpoint) as client:
            idx = await client.get_namespace_index(cfg.asrs.opcua.namespace)
            simulation = await client.nodes.objects.get_child(f"{idx}:Simulation")
            await simulation.call_method(f"{idx}:ArriveAtPd", tote, aisle)
    except Exception as exc:
        print(f"  tote {tote} not returned to {aisle}: {exc!r}", file=sys.stderr, flush=True)


async def one_run(count: int, args: argparse.Namespace) -> Run:
    reference = load_reference(env={})
    with tempfile.TemporaryDirectory(prefix="linectl-scaling-") as tmp:
        async with line_processes(
            reference,
            args.mqtt_url,
            f"scaling-{uuid.uuid4().hex[:8]}",
            Path(tmp),
            time_scale=args.time_scale,
            asrs_to_conveyor=True,
        ) as (line, _watch):
            await line.start_controller()
            assert line.controller is not None
            pid = line.controller.pid
            cpu0 = _proc_cpu(pid)
            wms = WmsGenerator(
                line.config,
                line.api_url,
                TOKEN,
                seed=args.seed,
                prefix="SC",
                b2b_share=args.b2b_share,
            )
            clock = ScaledClock(args.time_scale)
            returns: set[asyncio.Task[None]] = set()

            def send_back(tote: str, aisle: str) -> None:
                task = asyncio.create_task(return_to_rack(line.config, clock, tote, aisle))
                returns.add(task)
                task.add_done_callback(returns.discard)

            operators = StationSimulator(
                line.config, clock, line.api_url, TOKEN, on_return=send_back
            )
            stations = asyncio.create_task(operators.run(), name="bench.stations")
            started = time.monotonic()
            sent = await wms.send(count, datetime.now(UTC))
            accepted = sent.created + sent.duplicates
            timed_out = True
            async with line.http() as http:
                deadline = started + args.timeout
                counts: dict[str, int] = {}
                shown = 0.0
                while time.monotonic() < deadline:
                    counts = await _counts(http)
                    if time.monotonic() - shown >= args.progress:
                        shown = time.monotonic()
                        print(
                            f"  {count} orders, {shown - started:.0f} s: {counts}",
                            file=sys.stderr,
                            flush=True,
                        )
                    if sum(n for s, n in counts.items() if s in SETTLED) >= accepted:
                        timed_out = False
                        break
                    await asyncio.sleep(POLL)
                wall = time.monotonic() - started
                exceptions = await _exceptions(http) if counts.get("exception") else []
            for task in (stations, *returns):
                task.cancel()
            await asyncio.gather(stations, *returns, return_exceptions=True)
            return Run(
                orders=accepted,
                wall=wall,
                line_seconds=wall * args.time_scale,
                settled=counts,
                cpu=_proc_cpu(pid) - cpu0,
                peak_rss=_proc_status(pid, "VmHWM"),
                timed_out=timed_out,
                exceptions=exceptions,
            )
        if exceptions and args.keep_logs:
            keep = args.keep_logs / str(count)
            await asyncio.to_thread(shutil.copytree, Path(tmp) / "logs", keep)


def report(runs: list[Run], args: argparse.Namespace) -> None:
    print(f"reference line, time scale {args.time_scale:g}, controller as its own process")
    print(
        f"{'orders':>7} {'wall s':>8} {'ms/order':>9} {'orders/h':>9} {'cpu ms/order':>13} "
        f"{'peak RSS MiB':>13}  settled"
    )
    for r in runs:
        per_hour = r.completed / (r.line_seconds / 3600) if r.line_seconds else 0.0
        note = "  (timed out)" if r.timed_out else ""
        print(
            f"{r.orders:>7} {r.wall:>8.1f} {1000 * r.wall / r.orders:>9.1f} {per_hour:>9.0f} "
            f"{1000 * r.cpu / r.orders:>13.1f} {r.peak_rss / 2**20:>13.1f}  "
            f"{dict(sorted(r.settled.items()))}{note}"
        )
        for line in r.exceptions:
            print(f"{'':>9}exception: {line}")
    if len(runs) > 1:
        a, b = runs[0], runs[-1]
        print(
            f"from {a.orders} to {b.orders} orders ({b.orders / a.orders:.0f}x): wall per order "
            f"x{(b.wall / b.orders) / (a.wall / a.orders):.2f}, CPU per order "
            f"x{(b.cpu / b.orders) / (a.cpu / a.orders):.2f}, "
            f"peak RSS x{b.peak_rss / a.peak_rss:.2f}"
        )
    print("command: python -m " + shlex.join(["bench.order_scaling", *sys.argv[1:]]))


async def main(args: argparse.Namespace) -> None:
    runs = []
    for count in args.orders:
        run = await one_run(count, args)
        runs.append(run)
        print(f"{count} orders: {run.wall:.1f} s wall", file=sys.stderr, flush=True)
    report(runs, args)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--orders", type=int, nargs="+", default=[200, 1000, 5000])
    p.add_argument("--time-scale", type=float, default=30.0)
    p.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    p.add_argument("--timeout", type=float, default=3600.0, help="wall seconds per count")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--b2b-share", type=float, default=0.0, help="share of B2B orders")
    p.add_argument("--progress", type=float, default=30.0, help="wall seconds between notes")
    p.add_argument(
        "--keep-logs",
        type=Path,
        help="copy the processes' logs of a run with orders in exception under DIR/<count>",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))

"""Chaos: the whole line as separate processes, its parts killed and restarted under a flow.

The controller (``linectl run``), the conveyor and AS/RS simulators (retained state files), the
robot fleet (``linectl sim robots``) and, unless ``--mqtt-url`` names one, a Mosquitto of the
run's own each run as a process (see :mod:`tests.chaos_line`). N orders go in over HTTP, a wave
before each controller fault so that every fault hits orders under way: one-aisle B2C orders (1-2
lines of 1-2 units from the SKUs stocked along the robots' first aisle, after ``--replenish``
orders that start AS/RS replenishments, so cranes work too), or with ``--mix wms``
the WMS generator's mix (:mod:`simulators.wms`). Meanwhile the controller is killed with
SIGKILL ``--kills`` times, ``--interval`` wall seconds apart (every ``--sigterm-every``-th time
stopped with SIGTERM instead), left down ``--down`` seconds and started again on the same
store; after each controller fault the next of the other parts named in ``--faults`` is killed
and restarted the same way (``disk``: the order store's own small disk is filled up until the
controller reports its writes failing, for ``--down`` seconds more, then freed; mounting it
needs root). At the end (bounded by ``--settle``)
it prints, measured from outside the controller (:mod:`tests.chaos_figures`): orders completed
/ exception / cancelled / lost, the exception share, totes left on robots, order lines picked
twice, crane commands and diverts executed twice, units booked against what completed orders
ordered, the stock ledger, open reservations, reject-chute totes, the exception reasons
grouped, and the command line that reproduces it. The target: exception share under 5 %, the rest 0.

    python -m bench.chaos [--orders 200] [--kills 5] [--interval 12] [--down 3]
        [--sigterm-every 0] [--replenish 3] [--faults controller,conveyor,asrs,broker,disk]
        [--time-scale 20] [--seed 1] [--mix one-aisle|wms] [--settle 600]
        [--mqtt-url mqtt://127.0.0.1:1883] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import shlex
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from controller.linefile.loader import load_reference
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.wms import WmsGenerator
from tests.chaos_figures import TERMINAL, Figures, fetch_orders, measure
from tests.chaos_flow import (
    Bodies,
    one_aisle_orders,
    order_statuses,
    put_orders,
    settle,
    units_picked_by_robots,
    with_replenishments,
)
from tests.chaos_line import Fault, chaos_line
from tests.small_disk import SmallDisk, small_disk

STORE_DISK_MB = 64  # the order store's own disk for --faults disk


def wms_orders(n: int, seed: int, cfg: LineConfig, now: datetime) -> Bodies:
    """``n`` orders of the WMS generator's mix (B2C and B2B, case lines from the AS/RS)."""
    wms = WmsGenerator(cfg, "http://unused", None, seed=seed, prefix="CH")
    return {f"CH-{i:04d}": wms.make_order(now) for i in range(n)}


async def run(args: argparse.Namespace, root: Path) -> tuple[Figures, dict[str, Any]]:
    reference = load_reference(env={})
    carriers = sorted(reference.conveyor.sorter.sort_plan)
    now = ScaledClock(args.time_scale).utcnow()
    if args.mix == "wms":
        orders = wms_orders(args.orders, args.seed, reference, now)
    else:
        orders = one_aisle_orders(args.orders, args.seed, carriers, now)
        orders = with_replenishments(orders, args.replenish, carriers, now)
    faults = [Fault(f) for f in args.faults.split(",") if f]
    info: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        disk = None
        if Fault.DISK in faults:
            # a small disk of its own for the order store (a tmpfs: mounting needs root)
            try:
                disk = stack.enter_context(small_disk(root.parent / "disk", STORE_DISK_MB))
            except pytest.skip.Exception as exc:
                raise SystemExit(f"--faults disk: {exc}") from None
        return await _run(args, root, orders, faults, disk, info)


async def _run(
    args: argparse.Namespace,
    root: Path,
    orders: Bodies,
    faults: list[Fault],
    disk: SmallDisk | None,
    info: dict[str, Any],
) -> tuple[Figures, dict[str, Any]]:
    reference = load_reference(env={})
    order_ids = list(orders)
    others = itertools.cycle([f for f in faults if f is not Fault.CONTROLLER] or [None])
    # a wave of orders before each controller fault: every fault hits orders under way
    waves = [order_ids[k :: args.kills] for k in range(args.kills)] if args.kills else [order_ids]
    async with chaos_line(
        reference, root, time_scale=args.time_scale, mqtt_url=args.mqtt_url, disk=disk
    ) as chaos:
        if Fault.BROKER in faults and Fault.BROKER not in chaos.parts:
            raise SystemExit("--faults broker needs the run's own Mosquitto (no --mqtt-url)")
        t0 = time.monotonic()
        sending: list[asyncio.Task[None]] = []
        info["mid_flow"] = 0
        for k, wave in enumerate(waves, start=1):
            batch = {o: orders[o] for o in wave}
            sending.append(asyncio.create_task(put_orders(chaos, batch, 0.75 * args.interval)))
            if k > args.kills:
                break  # no fault: the orders flow once
            await asyncio.sleep(args.interval)
            statuses = await order_statuses(chaos, order_ids)
            if statuses is None or any(s not in (*TERMINAL, "missing") for s in statuses.values()):
                info["mid_flow"] += 1
            if Fault.CONTROLLER in faults:
                sig = (
                    signal.SIGTERM
                    if args.sigterm_every and k % args.sigterm_every == 0
                    else (signal.SIGKILL)
                )
                print(f"{time.monotonic() - t0:7.1f}s controller {sig.name}", flush=True)
                await chaos.fault(Fault.CONTROLLER, args.down, sig)
            other = next(others)
            if other is not None:
                await asyncio.sleep(args.interval / 2)
                print(f"{time.monotonic() - t0:7.1f}s {other.value} killed", flush=True)
                await chaos.fault(other, args.down)
        await asyncio.gather(*sending)
        info["orders_in_s"] = time.monotonic() - t0
        settled = await settle(chaos, order_ids, args.settle)
        info["flow_s"] = time.monotonic() - t0
        info["settled"] = settled
        async with chaos.line.http() as http:
            final = await fetch_orders(http, order_ids)
        info["faults"] = dict(chaos.faults)
        info["store_outages"] = chaos.store_outages
        info["controller_runs"] = chaos.line.runs
        ordered = {o: units_picked_by_robots(body) for o, body in orders.items()}
        figures = measure(
            final, ordered, chaos.watch, chaos.store_path, chaos.conveyor_state, chaos.asrs_state
        )
    return figures, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5, help="controller faults")
    parser.add_argument("--interval", type=float, default=12.0, help="wall s between faults")
    parser.add_argument("--down", type=float, default=3.0, help="wall s a part stays down")
    parser.add_argument("--sigterm-every", type=int, default=0, help="every k-th is a SIGTERM")
    parser.add_argument(
        "--faults", default="controller", help="controller,conveyor,asrs,broker,disk"
    )
    parser.add_argument(
        "--replenish", type=int, default=3, help="orders that start AS/RS replenishments"
    )
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=("one-aisle", "wms"), default="one-aisle")
    parser.add_argument("--settle", type=float, default=600.0, help="wall s to wait at the end")
    parser.add_argument("--mqtt-url", default=None, help="a shared broker (default: own)")
    parser.add_argument("--keep", action="store_true", help="keep the run's files and logs")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="linectl-chaos-"))
    try:
        figures, info = asyncio.run(run(args, root / "run"))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(figures.lines()))
    print(
        f"faults {info['faults']} ({info['mid_flow']} of {args.kills} cycles with orders open), "
        f"controller runs {info['controller_runs']}, orders in "
        f"{info['orders_in_s']:.1f} s, flow {info['flow_s']:.0f} s, settled {info['settled']}"
    )
    if "disk" in info["faults"]:
        print(f"store outages reported by the controller: {info['store_outages']}")
    if args.keep:
        print("files and logs:", root / "run")
    target = figures.exception_share < 0.05 and figures.clean()
    print("target met" if target else "target NOT met")
    print("command:", shlex.join(["python", "-m", "bench.chaos", *sys.argv[1:]]))
    sys.exit(0 if target else 1)


if __name__ == "__main__":
    main()

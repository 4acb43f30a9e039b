"""Failover: a line with a standby, its active controller killed (SIGKILL) again and again.

Two ``linectl run`` of the reference line on one PostgreSQL schema (``--dsn``, by default the
local test database; the schema is the run's own and dropped at the end), the conveyor and AS/RS
simulators, the robot fleet and, unless ``--mqtt-url`` names one, a Mosquitto of the run's own,
each a process (see :mod:`tests.failover_run`). ``--orders`` one-aisle B2C orders (after three
that start AS/RS replenishments, so cranes work too) go in over HTTP to either controller, spread
over the run, while the active controller is killed ``--kills`` times, each after a random
``--gap`` of wall seconds, and started again as the standby. It prints, per kill and as median and
max: the wall seconds from the kill until the standby reports itself active (``/readyz``), and
until its first command reaches a robot (the first VDA 5050 order or instant action on the
broker after the kill); then, measured from outside the controllers: orders completed / lost,
order lines picked twice, crane commands and diverts executed twice, units booked against what
completed orders ordered, and the stock ledger. The target: takeover under 10 s, the rest 0.

    python -m bench.failover [--kills 10] [--orders 60] [--gap 6 12] [--time-scale 10]
        [--lease 3] [--renew 0.5] [--seed 1] [--dsn 'host=127.0.0.1 user=postgres dbname=test']
        [--mqtt-url mqtt://127.0.0.1:1883] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from controller.linefile.loader import load_reference
from kernel.config.model import FailoverConfig
from simulators.broker import free_port

if TYPE_CHECKING:
    from tests.failover_run import FailoverResult


@contextlib.contextmanager
def private_broker(root: Path) -> Iterator[str]:
    """A Mosquitto of the run's own on a free loopback port; its URL."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = root / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    with (root / "broker.log").open("wb") as log:
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port)):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    where = root / "broker.log"
                    raise RuntimeError(f"mosquitto did not start: see {where}") from None
                time.sleep(0.1)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


async def run(args: argparse.Namespace, root: Path, mqtt_url: str) -> FailoverResult:
    # imported once LINECTL_TEST_POSTGRES_DSN names the database
    from tests.failover_run import failover_run

    reference = load_reference(env={})
    return await failover_run(
        reference,
        mqtt_url,
        f"failover{uuid.uuid4().hex[:10]}",
        root,
        orders=args.orders,
        kills=args.kills,
        seed=args.seed,
        time_scale=args.time_scale,
        gap=(args.gap[0], args.gap[1]),
        settle_within=args.settle,
        lease=FailoverConfig(enabled=True, lease_seconds=args.lease, renew_seconds=args.renew),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--orders", type=int, default=60)
    parser.add_argument(
        "--gap", type=float, nargs=2, default=(6.0, 12.0), help="wall s of flow before a kill"
    )
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument(
        "--lease", type=float, default=3.0, help="failover.lease_seconds (the line file's: 6)"
    )
    parser.add_argument(
        "--renew", type=float, default=0.5, help="failover.renew_seconds (the line file's: 1.5)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle", type=float, default=600.0, help="wall s to wait at the end")
    parser.add_argument("--dsn", default=None, help="PostgreSQL (default: the local test one)")
    parser.add_argument("--mqtt-url", default=None, help="a shared broker (default: own)")
    parser.add_argument("--keep", action="store_true", help="keep the run's files and logs")
    args = parser.parse_args()
    if args.dsn:
        os.environ["LINECTL_TEST_POSTGRES_DSN"] = args.dsn
    os.environ["LINECTL_REQUIRE_POSTGRES"] = "1"
    root = Path(tempfile.mkdtemp(prefix="linectl-failover-"))
    try:
        with contextlib.ExitStack() as stack:
            url = args.mqtt_url or stack.enter_context(private_broker(root))
            (root / "run").mkdir()
            result = asyncio.run(run(args, root / "run", url))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\n".join(result.lines()))
    print("reproduce: python -m bench.failover " + shlex.join(sys.argv[1:]))
    if args.keep:
        print(f"files and logs: {root}")
    clean = result.figures.clean() and result.figures.completed == result.figures.orders
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()

"""Wall time of ``linectl demo``: the command as a user runs it, a few times per broker.

Runs ``linectl demo --orders N --own-broker KIND`` (each run a process of its own, its report in
a temporary file) ``--runs`` times for each broker kind asked for, and prints per kind the wall
time the demo reports (median, p99 and the slowest run), the time scale it chose, the line time
the orders took and whether every order completed. A run that fails is shown with its exit code.

    python bench/demo_wall.py [--orders 1000] [--runs 3] [--brokers mosquitto,embedded]
        [--time-scale X]

The figures depend on what else the machine runs at the time: say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(orders: int, broker: str, time_scale: float | None) -> dict[str, object]:
    """One demo as a separate process; its report, or its exit code when it failed."""
    with tempfile.TemporaryDirectory(prefix="demo-wall-") as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable,
            "-m",
            "controller.app.cli",
            "demo",
            "--orders",
            str(orders),
            "--own-broker",
            broker,
            "--report",
            str(report),
            "--timeout",
            "900",
        ]
        if time_scale is not None:
            command += ["--time-scale", str(time_scale)]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        if done.returncode != 0 or not report.exists():
            return {"exit": done.returncode, "process_seconds": elapsed}
        data = json.loads(report.read_text())
        return {
            "exit": 0,
            "process_seconds": elapsed,
            "wall_seconds": data["wall_seconds"],
            "time_scale": data["time_scale"],
            "line_hours": data["kpi"]["summary"]["window_hours"],
            "completed": data["by_status"]["completed"],
            "broker": data["mqtt_broker"],
        }


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--brokers", default="mosquitto", help="comma-separated: mosquitto,embedded"
    )
    parser.add_argument("--time-scale", type=float, default=None, help="default: the demo's")
    args = parser.parse_args()
    for broker in args.brokers.split(","):
        runs = [one_run(args.orders, broker, args.time_scale) for _ in range(args.runs)]
        for i, run in enumerate(runs, 1):
            print(f"{broker} run {i}: {json.dumps(run)}", flush=True)
        good = [r for r in runs if r["exit"] == 0]
        walls = [float(r["wall_seconds"]) for r in good]  # type: ignore[arg-type]
        if not walls:
            print(f"{broker}: no run completed")
            continue
        print(
            f"{broker}: {len(good)}/{len(runs)} runs completed {args.orders} orders at "
            f"x{good[0]['time_scale']}: wall median {statistics.median(walls):.1f} s, "
            f"p99 {p99(walls):.1f} s, max {max(walls):.1f} s; line time median "
            f"{statistics.median(float(r['line_hours']) for r in good):.2f} h"  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    main()

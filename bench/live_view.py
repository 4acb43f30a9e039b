"""The live line page on a large line: what the controller spends per snapshot and whether a
browser keeps up with the stream.

The line is generated: a ``--columns`` x ``--rows`` grid of map nodes 3 m apart with
``--robots`` robots, the reference line's conveyor (24 zones, 10 chutes) and AS/RS (2 aisles).
A stand-in backend moves every robot a little on each look (each has two reserved nodes, a
planned way of three more, and one in five waits for a node another holds) and puts a tote on
every third zone, so every snapshot differs from the last: the worst case for the stream. The
real API (``create_app``) serves it with uvicorn on loopback, and headless Chromium (the system's,
driven by Playwright) opens ``/ui`` and follows ``GET /v1/line/stream?interval=...``.

Prints: the snapshot's size; the controller's time to build and serialise one snapshot (median,
p99); in the browser, snapshots received per second against the rate sent, and the page's time
to draw one (median, p99, max; the page's own ``render``); and the command line.

    python bench/live_view.py [--robots 100] [--interval 0.5] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shlex
import shutil
import statistics
import sys
import time
from typing import Any, cast

from api import ApiBackend, create_app
from api.routes_line import render_line
from controller.app.http import ApiServer
from controller.linefile.loader import load_reference
from controller.orders.model import OrderStatus
from controller.service import line_view as views
from kernel.config.model import LineConfig
from kernel.config.robots import MapEdge, MapNode, Robot, StorageLocation

SPACING = 3.0  # metres between grid nodes


def grid_line(columns: int, rows: int, robots: int) -> LineConfig:
    """The reference line with a grid map of ``columns`` x ``rows`` nodes and ``robots`` robots."""
    line = load_reference(env={})
    nodes = [
        MapNode(id=f"N{c:02d}{r:02d}", x=c * SPACING, y=r * SPACING)
        for c in range(columns)
        for r in range(rows)
    ]
    edges = [
        MapEdge(start=f"N{c:02d}{r:02d}", end=f"N{c + dc:02d}{r + dr:02d}")
        for c in range(columns)
        for r in range(rows)
        for dc, dr in ((1, 0), (0, 1))
        if c + dc < columns and r + dr < rows
    ]
    locations = [
        StorageLocation(id=f"L{n.id}{side}", node=n.id) for n in nodes[columns:] for side in "AB"
    ]
    model = line.robots.fleet[0].model
    fleet = [
        Robot(serial=f"R{i:03d}", model=model, home=nodes[i % len(nodes)].id) for i in range(robots)
    ]
    inductions = [
        line.robots.inductions[0].model_copy(update={"node": nodes[0].id}),
        line.robots.inductions[1].model_copy(update={"node": nodes[-1].id}),
    ]
    area = line.robots.model_copy(
        update={
            "nodes": nodes,
            "edges": edges,
            "storage_locations": locations,
            "chargers": [line.robots.chargers[0].model_copy(update={"node": nodes[1].id})],
            "inductions": inductions,
            "fleet": fleet,
        }
    )
    return line.model_copy(update={"robots": area})


class MovingLine:
    """A stand-in backend: the view of a busy line, every robot moved a little on each look."""

    def __init__(self, config: LineConfig) -> None:
        self.config = config
        self.looks = 0
        self._nodes = [n.id for n in config.robots.nodes]
        self._xy = [(n.x, n.y) for n in config.robots.nodes]

    def controller(self) -> dict[str, Any]:
        return {"role": "active", "failover": False, "instance": None, "term": None, "active": None}

    def line_view(self) -> dict[str, Any]:
        self.looks += 1
        step = self.looks
        n = len(self._nodes)
        robots = []
        for i, r in enumerate(self.config.robots.fleet):
            at = (i * 7 + step // 10) % n
            nxt = (at + 1) % n
            x0, y0 = self._xy[at]
            x1, y1 = self._xy[nxt]
            share = (step % 10) / 10
            robots.append(
                {
                    "serial": r.serial,
                    "manufacturer": "linectl-sim",
                    "version": r.version,
                    "connection": "ONLINE",
                    "operating_mode": "AUTOMATIC",
                    "available": True,
                    "busy": i % 3 != 0,
                    "order_id": f"job-{i}-{step // 50}",
                    "last_node_id": self._nodes[at],
                    "x": x0 + (x1 - x0) * share,
                    "y": y0 + (y1 - y0) * share,
                    "driving": True,
                    "battery": 100 - (step + i) % 70,
                    "charging": i % 17 == 0,
                    "paused": False,
                    "errors": [],
                    "factsheet_problems": [],
                    "traffic": {
                        "known": True,
                        "base": [self._nodes[at], self._nodes[nxt]],
                        "horizon": [self._nodes[(at + k) % n] for k in (2, 3, 4)],
                        "waiting_for": {
                            "node": self._nodes[(at + 2) % n],
                            "holder": "R000",
                            "seconds": 3.5,
                        }
                        if i % 5 == 0
                        else None,
                    },
                    "carrying": [
                        {"order_id": f"O-{i}-{k}", "tote": f"T-{i}-{k}"} for k in range(2)
                    ],
                }
            )
        zones = [
            {
                "zone_id": z.id,
                "running": True,
                "occupied": (j + step) % 3 == 0,
                "item_id": f"C1-{j + step:06d}" if (j + step) % 3 == 0 else None,
                "tote": None,
                "order_id": None,
                "chute": None,
                "jammed": False,
                "held": False,
            }
            for j, z in enumerate(self.config.conveyor.zones)
        ]
        return {
            "line_id": self.config.line.id,
            "conveyors": [
                {
                    "conveyor_id": "C1",
                    "connected": True,
                    "state": "Execute",
                    "available": True,
                    "chutes": [
                        {"chute_id": c.id, "full": False, "enabled": True, "count": step % 30}
                        for c in self.config.conveyor.sorter.chutes
                    ],
                    "jammed_zones": [],
                    "zones": zones,
                }
            ],
            "cranes": [],
            "robots": robots,
            "orders_queued": 500,
            "orders": views.orders({OrderStatus.ACCEPTED: 500}, None, [], 500),
            "controller": self.controller(),
        }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


INSTRUMENT = """
() => {
  window.__draws = [];
  const original = render;
  render = (view) => {
    const t0 = performance.now();
    original(view);
    window.__draws.push(performance.now() - t0);
  };
}
"""


async def browser_run(url: str, interval: float, duration: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    executable = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    if executable is None:
        raise SystemExit("no Chromium installed (apt-get install chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = await browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{url}/ui?interval={interval}")
        await page.wait_for_selector("#link.ok", timeout=20_000)
        await page.evaluate(INSTRUMENT)
        await asyncio.sleep(2)  # warm-up
        await page.evaluate("() => { window.__draws = []; }")
        t0 = time.monotonic()
        await asyncio.sleep(duration)
        draws = cast(list[float], await page.evaluate("() => window.__draws"))
        elapsed = time.monotonic() - t0
        robots = await page.eval_on_selector_all("#robots g[data-robot]", "gs => gs.length")
        await browser.close()
    return {"draws": draws, "elapsed": elapsed, "robots_drawn": robots, "errors": errors}


async def main(args: argparse.Namespace) -> None:
    config = grid_line(args.columns, args.rows, args.robots)
    backend = MovingLine(config)
    typed = cast(ApiBackend, backend)
    # the controller's side: build and serialise a snapshot
    builds = []
    size = 0
    for _ in range(200):
        t0 = time.perf_counter()
        size = len(render_line(typed).data.encode())
        builds.append((time.perf_counter() - t0) * 1000)
    app = create_app(typed)
    server = ApiServer(app, "127.0.0.1", 0, freeze_heap=False)
    started = asyncio.Event()
    task = asyncio.create_task(server.serve(started))
    await started.wait()
    try:
        result = await browser_run(server.url, args.interval, args.duration)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    draws = result["draws"]
    sent_rate = 1 / args.interval
    print(f"line: {args.robots} robots on a {args.columns}x{args.rows} grid, 24 zones, 10 chutes")
    print(f"snapshot: {size / 1024:.1f} KiB of JSON")
    print(
        f"controller, build + serialise one snapshot: median {statistics.median(builds):.2f} ms, "
        f"p99 {percentile(builds, 0.99):.2f} ms"
    )
    print(
        f"browser: {len(draws) / result['elapsed']:.2f} snapshots/s drawn of {sent_rate:.2f}/s "
        f"sent ({len(draws) / result['elapsed'] / sent_rate:.2f}), "
        f"{result['robots_drawn']} robots on the plan"
    )
    if draws:
        print(
            f"browser, draw one snapshot: median {statistics.median(draws):.1f} ms, "
            f"p99 {percentile(draws, 0.99):.1f} ms, max {max(draws):.1f} ms "
            f"(budget at this rate: {args.interval * 1000:.0f} ms)"
        )
    print(
        f"page errors: {len(result['errors'])}"
        + (f" {result['errors'][:3]}" if result["errors"] else "")
    )
    print("command: python " + shlex.join(["bench/live_view.py", *sys.argv[1:]]))
    print(json.dumps({"size_bytes": size, "draws": len(draws)}))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--robots", type=int, default=100)
    p.add_argument("--columns", type=int, default=20)
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.5, help="stream interval, s (>= 0.2)")
    p.add_argument("--duration", type=float, default=20.0, help="measured wall seconds")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))

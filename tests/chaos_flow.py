"""The order flow of a chaos run: its orders, sent over HTTP while parts are down, and the wait
for every order to end. Used by the chaos test and by ``bench/chaos.py``."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.chaos_figures import TERMINAL, fetch_orders
from tests.chaos_line import ChaosLine

Bodies = dict[str, dict[str, Any]]  # order id -> the order as PUT
# the SKUs stocked along the first aisle the robots serve: their trips do not cross the whole map
ONE_AISLE = ["SKU-0019", "SKU-0020", "SKU-0021", "SKU-0022", "SKU-0023", "SKU-0024"]


def one_aisle_orders(n: int, seed: int, carriers: list[str], now: datetime) -> Bodies:
    """``n`` B2C orders of 1-2 lines of 1-2 units from the SKUs of the first aisle."""
    rng = random.Random(seed)
    out: Bodies = {}
    for i in range(n):
        skus = rng.sample(ONE_AISLE, rng.choice((1, 2)))
        out[f"CH-{i:04d}"] = {
            "type": "b2c",
            "due_at": (now + timedelta(hours=3)).isoformat(),
            "destination": carriers[i % len(carriers)],
            "lines": [
                {"line_id": str(k + 1), "sku": sku, "quantity": rng.choice((1, 2))}
                for k, sku in enumerate(skus)
            ],
        }
    return out


# a fast mover kept low and topped up from the AS/RS (reference line: below 20 of 24 units):
# orders for it start replenishments, so cranes have commands to carry out under the faults
REPLENISHED = "SKU-0027"


def with_replenishments(orders: Bodies, n: int, carriers: list[str], now: datetime) -> Bodies:
    """``orders`` with ``n`` one-line orders of 2 units of :data:`REPLENISHED` first."""
    first: Bodies = {
        f"CH-R{i}": {
            "type": "b2c",
            "due_at": (now + timedelta(hours=3)).isoformat(),
            "destination": carriers[i % len(carriers)],
            "lines": [{"line_id": "1", "sku": REPLENISHED, "quantity": 2}],
        }
        for i in range(n)
    }
    return {**first, **orders}


def units_picked_by_robots(body: dict[str, Any]) -> dict[str, int]:
    """What a robot picks for the order: its lines counted in units (not cases)."""
    out: dict[str, int] = {}
    for line in body["lines"]:
        if line.get("uom", "each") == "each":
            out[line["sku"]] = out.get(line["sku"], 0) + int(line["quantity"])
    return out


async def put_orders(chaos: ChaosLine, orders: Bodies, spread: float) -> None:
    """Every order in over HTTP, evenly over ``spread`` wall seconds (a transport error or a
    5xx is retried: the API may be down)."""
    start = time.monotonic()
    async with chaos.line.http() as http:
        for i, (order_id, body) in enumerate(orders.items()):
            await asyncio.sleep(max(0.0, start + spread * i / len(orders) - time.monotonic()))
            while True:
                with contextlib.suppress(httpx.TransportError):
                    response = await http.put(f"/v1/orders/{order_id}", json=body)
                    if response.status_code in (200, 201):
                        break
                    assert response.status_code >= 500, (order_id, response.text)
                await asyncio.sleep(0.5)


async def order_statuses(chaos: ChaosLine, order_ids: list[str]) -> dict[str, str] | None:
    """Each order's status, or None while the API does not answer."""
    try:
        async with chaos.line.http() as http:
            return {
                o: (v or {}).get("status", "missing")
                for o, v in (await fetch_orders(http, order_ids)).items()
            }
    except httpx.TransportError:
        return None


async def settle(chaos: ChaosLine, order_ids: list[str], within: float) -> bool:
    """Wait (bounded) until every order is terminal and no robot carries a tote."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        statuses = await order_statuses(chaos, order_ids)
        if (
            statuses is not None
            and all(s in TERMINAL for s in statuses.values())
            and not chaos.watch.totes_on_robots()
        ):
            return True
        await asyncio.sleep(1.0)
    return False

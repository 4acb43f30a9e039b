"""A WMS workload generator: B2C and B2B orders sent to linectl over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from kernel.config.model import ChuteKind, LineConfig

log = logging.getLogger(__name__)


@dataclass
class WmsResult:
    sent: int = 0
    created: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, int, str]] = field(default_factory=list)  # id, status, detail
    order_ids: list[str] = field(default_factory=list)


class WmsGenerator:
    """Makes plausible orders for a line and PUTs them, ``concurrency`` at a time."""

    def __init__(
        self,
        config: LineConfig,
        base_url: str,
        token: str | None,
        *,
        seed: int = 7,
        b2b_share: float = 0.2,
        prefix: str = "WMS",
        case_share: float = 0.4,
        stock_margin: float = 0.15,
    ) -> None:
        self.config = config
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.rng = random.Random(seed)
        self.b2b_share = b2b_share
        self.prefix = prefix
        # a share of B2B orders also asks for full cases of a SKU the AS/RS holds (served
        # from rack totes); drawn from a generator of its own so the rest stays as it was
        self.case_share = case_share
        self.case_rng = random.Random(seed + 1)
        self.stock_rng = random.Random(seed + 2)
        # a WMS orders what the line holds: units left at pick locations per SKU (with what
        # the AS/RS holds for the locations it replenishes), and in AS/RS totes for cases;
        # ``stock_margin`` of the loose units is kept back for the units a void robot trip
        # takes to the reject chute (picked once more for its order)
        replenished = {e.sku for e in config.stock if e.replenish_below > 0}
        self.loose: dict[str, int] = {}
        for e in config.stock:
            self.loose[e.sku] = self.loose.get(e.sku, 0) + e.quantity
        self.in_totes: dict[str, int] = {}
        for t in config.asrs.totes:
            if t.sku in replenished:
                self.loose[t.sku] = self.loose.get(t.sku, 0) + t.quantity
            else:
                self.in_totes[t.sku] = self.in_totes.get(t.sku, 0) + t.quantity
        self.loose = {k: int(v * (1 - stock_margin)) for k, v in self.loose.items()}
        self.case_qty = {k.sku: k.case_quantity for k in config.skus}
        self.case_skus: Sequence[str] = sorted(self.in_totes)
        stocked = {s.sku for s in config.stock if s.quantity > 0}
        self.skus: Sequence[str] = sorted(stocked) or [s.sku for s in config.skus]
        chutes = {c.id: c.kind for c in config.conveyor.sorter.chutes}
        plan = config.conveyor.sorter.sort_plan
        kinds = {d: {chutes.get(c) for c in cs} for d, cs in plan.items()}
        self.carriers = sorted(d for d, k in kinds.items() if k == {ChuteKind.CARRIER})
        self.customers = sorted(d for d, k in kinds.items() if k == {ChuteKind.B2B})

    def make_order(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        if self.customers and rng.random() < self.b2b_share:
            n_lines = rng.randint(2, 4)
            skus = rng.sample(list(self.skus), n_lines)
            order: dict[str, Any] = {
                "type": "b2b",
                "priority": rng.randint(3, 7),
                "due_at": (now + timedelta(hours=rng.uniform(1, 6))).isoformat(),
                "deliver_from": (now - timedelta(hours=1)).isoformat(),
                "deliver_until": (now + timedelta(hours=24)).isoformat(),
                "destination": rng.choice(self.customers),
                "lines": [
                    {
                        "line_id": str((i + 1) * 10),
                        "sku": sku,
                        "quantity": rng.randint(4, 24),
                        "uom": "each",
                    }
                    for i, sku in enumerate(skus)
                ],
                "handling": {
                    "label_template": "b2b-standard",
                    "packaging": rng.choice(["carton-40", "carton-60", "pallet-eur"]),
                    "instructions": "Check every unit against the delivery note.",
                },
            }
            order["lines"] = self._in_stock(order["lines"])
            if self.case_skus and self.case_rng.random() < self.case_share:
                sku = self.case_rng.choice(list(self.case_skus))
                cases = self.case_rng.randint(1, 2)
                units = cases * self.case_qty.get(sku, 1)
                if self.in_totes.get(sku, 0) >= units:
                    self.in_totes[sku] -= units
                    lines = [ln for ln in order["lines"] if ln["sku"] != sku]
                    line = {"line_id": str((n_lines + 1) * 10), "sku": sku, "quantity": cases}
                    lines.append({**line, "uom": "case"})
                    order["lines"] = lines
            return order
        n_lines = rng.choice([1, 1, 1, 2, 2, 3])
        skus = rng.sample(list(self.skus), n_lines)
        lines = [
            {"line_id": str(i + 1), "sku": sku, "quantity": rng.randint(1, 3), "uom": "each"}
            for i, sku in enumerate(skus)
        ]
        return {
            "type": "b2c",
            "priority": rng.randint(3, 7),
            "due_at": (now + timedelta(minutes=rng.uniform(60, 240))).isoformat(),
            "destination": rng.choice(self.carriers),
            "lines": self._in_stock(lines),
        }

    def _in_stock(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The lines with what is left at the pick locations taken off; a SKU without enough
        left is swapped for one that has it (drawn from a generator of its own)."""
        kept: list[dict[str, Any]] = []
        for ln in lines:
            sku, quantity = ln["sku"], ln["quantity"]
            if self.loose.get(sku, 0) < quantity:
                taken = {k["sku"] for k in lines} | {k["sku"] for k in kept}
                others = [
                    k for k in self.skus if k not in taken and self.loose.get(k, 0) >= quantity
                ]
                if not others:
                    continue
                sku = self.stock_rng.choice(others)
            self.loose[sku] -= quantity
            kept.append({**ln, "sku": sku})
        if not kept:
            raise RuntimeError("the line holds too little stock for another order")
        return kept

    async def send(
        self, count: int, now: datetime, *, concurrency: int = 8, start: int = 1
    ) -> WmsResult:
        result = WmsResult()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        orders = [(f"{self.prefix}-{start + i:06d}", self.make_order(now)) for i in range(count)]
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for item in orders:
            queue.put_nowait(item)
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30) as http:

            async def worker() -> None:
                while not queue.empty():
                    order_id, body = queue.get_nowait()
                    resp = await http.put(f"/v1/orders/{order_id}", json=body)
                    result.sent += 1
                    if resp.status_code == 201:
                        result.created += 1
                        result.order_ids.append(order_id)
                    elif resp.status_code == 200:
                        result.duplicates += 1
                        result.order_ids.append(order_id)
                    else:
                        result.rejected.append((order_id, resp.status_code, _detail(resp)))

            async with asyncio.TaskGroup() as tg:
                for i in range(concurrency):
                    tg.create_task(worker(), name=f"wms.sender[{i}]")
        if result.rejected:
            log.warning("orders rejected by the API", extra={"count": len(result.rejected)})
        return result


def _detail(resp: httpx.Response) -> str:
    """Why an order was refused: the problem's detail, or the start of an answer that is not
    one (another server than linectl at that URL), on one line."""
    try:
        answer = resp.json() if resp.content else {}
    except ValueError:
        return " ".join(resp.text.split())[:200]
    return str(answer.get("detail", resp.text) if isinstance(answer, dict) else answer)

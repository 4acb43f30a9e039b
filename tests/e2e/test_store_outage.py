"""The order store's disk fills up while the whole line works, and is freed again.

The line runs in-process on real protocols with its store on a small disk of its own (a real
``ENOSPC``, no simulated failure). While the disk is full the controller keeps running: totes on
the conveyor are still sorted, their order events wait in memory, robots and their events wait
for the ledger; ``/readyz`` says why it is not ready, the metrics show it, the line is held by
the store and new orders get a 503. Once the disk is freed everything waiting is written, in
order, and every order completes with a history that makes sense.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.orders.model import OrderStatus
from kernel.config.model import LineConfig
from tests.e2e.test_lifecycle import Line, running_line, settled
from tests.small_disk import small_disk

pytestmark = pytest.mark.e2e

ORDERS = {
    "F-1": ("SKU-0002", "DHL"),
    "F-2": ("SKU-0010", "UPS"),
    "F-3": ("SKU-0020", "GLS"),
    "F-4": ("SKU-0005", "DHL"),
    "F-5": ("SKU-0015", "UPS"),
    "F-6": ("SKU-0025", "GLS"),
}
# an order's statuses only go forward on a line where no robot fails
RANK = {
    s: i
    for i, s in enumerate(
        [
            OrderStatus.ACCEPTED,
            OrderStatus.RELEASED,
            OrderStatus.PICKING,
            OrderStatus.IN_TRANSIT,
            OrderStatus.SORTED,
            OrderStatus.COMPLETED,
        ]
    )
}

REQUEUED = {"robot_gave_way", "robot_action_failed", "robot_lost", "robot_trip_ended_without_drop"}


async def eventually(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.02)


async def on_hand(line: Line, sku: str) -> int:
    """On hand in the database (the truth), not the controller's view of it."""
    return sum(r.on_hand for r in await line.service.inventory.rows(sku=sku))


def total(line: Line, name: str) -> float:
    """A metric summed over its labels."""
    return sum(
        sample.value
        for metric in line.service.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == name
    )


def sample(line: Line, name: str, **labels: str) -> float | None:
    return line.service.metrics.registry.get_sample_value(name, labels)


async def test_a_full_disk_holds_the_line_loses_nothing_and_every_order_completes_once_freed(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", megabytes=64) as disk:
        async with running_line(reference_line, mqtt_url, interface_name, disk.path) as line:
            svc = line.service
            skus = sorted({sku for sku, _ in ORDERS.values()} | {"SKU-0003"})
            before = {sku: await on_hand(line, sku) for sku in skus}
            for order_id, (sku, carrier) in ORDERS.items():
                await line.put(order_id, **line.b2c(sku, destination=carrier))
            await line.until("F-1", lambda o, s: "picked" in s, within=60)
            disk.fill()

            # the store fails, the controller goes on: order events wait in memory
            await eventually(
                lambda: svc.store_health.failing is not None and svc.store_health.backlog > 0,
                "events wait for the store",
            )
            ready = await line.http.get("/readyz")
            assert ready.status_code == 503
            detail = ready.json()["detail"]
            assert detail.startswith("Not ready: store: writes failing since"), detail
            assert "database or disk is full" in detail
            assert sample(line, "linectl_store_available") == 0
            assert (sample(line, "linectl_store_backlog") or 0) > 0
            view = (await line.http.get("/v1/line")).json()
            assert view["store_hold"].startswith("store: writes failing since")
            dispatcher = svc.orchestrator.dispatcher
            assert dispatcher.store_held is not None and not dispatcher.held  # no operator hold
            asrs = svc.orchestrator.asrs
            assert asrs is not None and asrs.held  # no new crane command either
            refused = await line.http.put("/v1/orders/F-late", json=line.b2c("SKU-0003"))
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            # the line goes on: totes are scanned and diverted; their sortation is recorded
            # after the picks and drops the robots reported before, which wait for the ledger
            sortation = svc.orchestrator.sortation
            await eventually(
                lambda: sortation.deferred() > 0, "the line goes on while the disk is full"
            )
            assert svc._intake_open  # the controller runs: no task ended the task group
            assert total(line, "linectl_store_write_failures_total") >= 1

            disk.free()
            await eventually(
                lambda: (
                    svc.store_health.failing is None
                    and svc.journal.size == 0
                    and sortation.deferred() == 0
                ),
                "what waited is written",
            )
            assert (await line.http.get("/readyz")).status_code == 200
            assert sample(line, "linectl_store_available") == 1
            assert (await line.http.get("/v1/line")).json()["store_hold"] is None
            assert dispatcher.store_held is None and not asrs.held
            await line.put("F-late", **line.b2c("SKU-0003"))

            booked: dict[str, int] = dict.fromkeys(skus, 0)
            for order_id in [*ORDERS, "F-late"]:
                # a robot's report of its drop waits behind its picks' ledger rows, so the
                # conveyor may sort the tote first: the drop is then recorded late, as ever
                order, steps = await line.until(
                    order_id, lambda o, s: settled(o, s) and "dropped" in s, within=90
                )
                assert order.status is OrderStatus.COMPLETED, (order_id, steps)
                history = await svc.store.history(order_id)
                assert [e.seq for e in history] == sorted(e.seq for e in history)
                # statuses only go forward, but for a trip given to another robot (traffic
                # control may end a deadlock that way): then the order starts over
                ranks: list[int] = []
                for e in history:
                    if e.type in REQUEUED:
                        assert e.status is OrderStatus.ACCEPTED, (order_id, steps)
                        assert ranks == sorted(ranks), (order_id, steps)
                        ranks = []
                    ranks.append(RANK[e.status])
                assert ranks == sorted(ranks), (order_id, steps)
                for once in ("accepted", "sorted", "completed"):
                    assert steps.count(once) == 1, (order_id, once, steps)
                assert order.picked == {"1": 1}, (
                    order_id,
                    [(e.type, e.status.value, e.data) for e in history],
                )
                sku = ORDERS[order_id][0] if order_id in ORDERS else "SKU-0003"
                booked[sku] += sum(e.data["quantity"] for e in history if e.type == "picked")
            # the ledger adds up: every pick recorded is booked once (a tote of a trip given
            # away goes to the reject chute with its unit), nothing is left reserved
            for sku in skus:
                assert before[sku] - await on_hand(line, sku) == booked[sku], sku
                assert sum(r.reserved for r in await svc.inventory.rows(sku=sku)) == 0, sku

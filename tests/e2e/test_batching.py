"""B2C batching on the whole line: several small orders on one robot trip, one tote each."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.orders.model import OrderIn, OrderStatus
from controller.service.service import LineService
from kernel.config.model import LineConfig
from tests.e2e.test_lifecycle import running_line, settled

pytestmark = pytest.mark.e2e

# SKU-0001/0002 sit at L01A/L01B (node G01), SKU-0025/0026 at L31A/L31B (node G31)
BATCH = {"BA": "SKU-0001", "BB": "SKU-0002", "BC": "SKU-0025", "BD": "SKU-0026"}


async def queue_four_small_orders(svc: LineService) -> None:
    """Four small B2C orders already in the store when the controller starts."""
    due = svc.clock.utcnow() + timedelta(hours=1)
    for order_id, sku in BATCH.items():
        body = OrderIn.model_validate(
            {
                "type": "b2c",
                "due_at": due.isoformat(),
                "destination": "GLS",
                "lines": [{"line_id": "1", "sku": sku, "quantity": 1}],
            }
        )
        await svc.store.create_order(order_id, body, svc.clock.utcnow())


async def test_small_orders_share_a_robot_trip_and_each_completes(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    async with running_line(
        reference_line, mqtt_url, interface_name, tmp_path, seed=queue_four_small_orders
    ) as line:
        jobs = {}
        totes = set()
        for order_id in BATCH:
            order, _ = await line.until(order_id, settled, within=60)
            assert order.status is OrderStatus.COMPLETED
            history = await line.service.store.history(order_id)
            assigned = next(e for e in history if e.type == "robot_assigned")
            jobs[order_id] = (assigned.data["robot"], assigned.data["job"])
            totes.add(assigned.data["tote"])
            sorted_at = next(e for e in history if e.type == "sorted")
            assert sorted_at.data["chute"] == "CH-GLS"
        assert len(totes) == 4  # one tote per order
        assert len(set(jobs.values())) == 1, jobs  # one robot, one VDA 5050 order
        assigned = next(
            e for e in await line.service.store.history("BA") if e.type == "robot_assigned"
        )
        assert assigned.data["orders_on_trip"] == 4


async def test_cancelling_one_order_of_a_batch_leaves_the_others_running(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    async with running_line(
        reference_line, mqtt_url, interface_name, tmp_path, seed=queue_four_small_orders
    ) as line:
        await line.until("BA", lambda o, s: o.status is not OrderStatus.ACCEPTED)
        assert (await line.cancel("BC")).status_code == 202
        cancelled, steps = await line.until("BC", settled, within=60)
        assert cancelled.status is OrderStatus.CANCELLED
        assert "cancel_on_batch_trip" in steps
        history = await line.service.store.history("BC")
        assert next(e for e in history if e.type == "cancelled").data["chute"] == "REJECT"
        for order_id in ("BA", "BB", "BD"):
            order, _ = await line.until(order_id, settled, within=60)
            assert order.status is OrderStatus.COMPLETED

"""Stock on the whole simulated line: a completed order takes its units off on-hand through the
robot's pick confirmation; pick failures are short picks that end in ``exception`` with the
reason, and leave on-hand and reservations consistent."""

from __future__ import annotations

import pytest

from controller.orders import OrderStatus
from tests.e2e.test_lifecycle import Line, settled

pytestmark = pytest.mark.e2e


async def stock(line: Line, sku: str) -> dict[str, int]:
    resp = await line.http.get("/v1/inventory", params={"sku": sku})
    assert resp.status_code == 200, resp.text
    [row] = resp.json()["skus"]
    return {k: row[k] for k in ("on_hand", "reserved", "available")}


async def test_completed_order_takes_its_units_off_on_hand(line: Line) -> None:
    before = await stock(line, "SKU-0008")
    await line.put("S1", **line.b2c("SKU-0008"))
    order, steps = await line.until("S1", settled, within=60)
    assert order.status is OrderStatus.COMPLETED, steps
    after = await stock(line, "SKU-0008")
    assert after == {**before, "on_hand": before["on_hand"] - 1, "available": after["on_hand"]}
    ledger = await line.http.get("/v1/inventory/movements", params={"sku": "SKU-0008"})
    picks = [m for m in ledger.json()["movements"] if m["kind"] == "robot_pick_confirmed"]
    assert [(m["order_id"], m["delta"]) for m in picks] == [("S1", -1)]


async def test_failing_picks_are_short_picks_and_the_order_stops_in_exception(
    line: Line,
) -> None:
    before = await stock(line, "SKU-0008")
    for robot in line.service.config.robots.fleet:
        for _ in range(3):  # every attempt fails, whichever robot gets it
            line.sim.robots.fail_action(robot.serial, "pick")
    await line.put("S2", **line.b2c("SKU-0008"))
    order, steps = await line.until("S2", lambda o, s: o.status is OrderStatus.EXCEPTION, within=90)
    assert order.waiting_reason is not None
    assert "short pick: SKU SKU-0008 at " in order.waiting_reason
    assert "picked 0 of 1" in order.waiting_reason and "gave up after 3" in order.waiting_reason
    assert steps.count("robot_action_failed") == 3
    events = (await line.http.get("/v1/inventory/events")).json()["events"]
    shorts = [e for e in events if e["type"] == "short_pick"]
    assert len(shorts) == 3 and {e["data"]["order_id"] for e in shorts} == {"S2"}
    # nothing was confirmed taken, and nothing stays reserved for the order
    assert await stock(line, "SKU-0008") == before

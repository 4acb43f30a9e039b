"""Stock on the whole simulated line: a completed order takes its units off on-hand through the
robot's pick confirmation; a pick the robot reports as a stock shortage is a short pick that ends
in ``exception`` with the reason, any other failed pick is a fault of the robot that leaves the
stock as it was; either way on-hand and reservations stay consistent."""

from __future__ import annotations

import pytest

from controller.orders.model import OrderStatus
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


async def test_picks_failing_by_robot_faults_leave_the_stock_and_count_against_the_robots(
    line: Line,
) -> None:
    before = await stock(line, "SKU-0008")
    for robot in line.service.config.robots.fleet:
        for _ in range(3):  # every attempt fails, whichever robot gets it
            line.sim.robots.fail_action(robot.serial, "pick", "load already picked")
    await line.put("S2", **line.b2c("SKU-0008"))
    order, steps = await line.until("S2", lambda o, s: o.status is OrderStatus.EXCEPTION, within=90)
    assert order.waiting_reason is not None
    assert "pick failed on robot" in order.waiting_reason
    assert (
        "load already picked" in order.waiting_reason and "gave up after 3" in order.waiting_reason
    )
    assert "short pick" not in order.waiting_reason
    assert steps.count("robot_action_failed") == 3
    events = (await line.http.get("/v1/inventory/events")).json()["events"]
    assert [e for e in events if e["type"] == "short_pick"] == []
    # nothing was confirmed taken or booked short, and nothing stays reserved for the order
    assert await stock(line, "SKU-0008") == before
    ledger = await line.http.get("/v1/inventory/movements", params={"sku": "SKU-0008"})
    assert [m for m in ledger.json()["movements"] if m.get("order_id") == "S2"] == []
    faults = sum(
        line.service.metrics.registry.get_sample_value(
            "linectl_robot_faults_total", {"robot": r.serial, "kind": "pick"}
        )
        or 0
        for r in line.service.config.robots.fleet
    )
    assert faults == 3


async def test_a_pick_the_robot_reports_as_a_shortage_is_booked_short(line: Line) -> None:
    before = await stock(line, "SKU-0008")
    shortage = line.service.config.robot_model("R01").pick.shortage_results[0]
    for robot in line.service.config.robots.fleet:
        line.sim.robots.fail_action(robot.serial, "pick", shortage)
    await line.put("S3", **line.b2c("SKU-0008"))
    order, steps = await line.until("S3", lambda o, s: o.status is OrderStatus.EXCEPTION, within=90)
    assert order.waiting_reason is not None
    assert "short pick: SKU SKU-0008 at " in order.waiting_reason
    assert "picked 0 of 1" in order.waiting_reason
    assert steps.count("short_pick") == 1 and "robot_action_failed" not in steps
    events = (await line.http.get("/v1/inventory/events")).json()["events"]
    shorts = [e for e in events if e["type"] == "short_pick"]
    assert len(shorts) == 1 and shorts[0]["data"]["order_id"] == "S3"
    # on-hand stays as it was (nothing was taken); the reservation was closed as short
    assert await stock(line, "SKU-0008") == before
    for robot in line.service.config.robots.fleet:
        assert not line.service.metrics.registry.get_sample_value(
            "linectl_robot_faults_total", {"robot": robot.serial, "kind": "pick"}
        )

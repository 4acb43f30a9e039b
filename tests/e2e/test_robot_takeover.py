"""A controller killed (or stopped) while robots pick takes them over when it starts again.

Every part of the line runs as a process of its own (:mod:`tests.line_processes`); the robots
keep working on their orders while no controller runs. The controller is killed with SIGKILL (or
stopped with SIGTERM) while robots are between picks, left down a moment, and started again on
the same store. It must take each robot over: book what it did meanwhile, stop it, finish its
trips into the same totes. Checked from outside the controller: every order completes, no tote is
left on a robot (their own reports on the broker), no order line was picked twice (the pick
actions the robots executed) and the stock ledger books each line's units exactly once.
"""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from tests.line_processes import LineProcesses, RobotWatch, line_processes, until

pytestmark = pytest.mark.e2e
# two lines each, from SKUs stocked in one aisle only: a robot is often between its picks when
# the controller goes down, and the robots' ways do not cross (traffic control's handling of
# robots that block each other is not what is tested here)
ORDERS = {
    "TK-1": ("DHL", [("SKU-0019", 1), ("SKU-0022", 2)]),
    "TK-2": ("UPS", [("SKU-0020", 1), ("SKU-0023", 1)]),
    "TK-3": ("GLS", [("SKU-0021", 2), ("SKU-0024", 1)]),
    "TK-4": ("DHL", [("SKU-0019", 1), ("SKU-0024", 1)]),
}
TIME_SCALE = 20.0


async def put_orders(http: httpx.AsyncClient) -> None:
    due = (ScaledClock(TIME_SCALE).utcnow() + timedelta(hours=3)).isoformat()
    for order_id, (destination, lines) in ORDERS.items():
        body = {
            "type": "b2c",
            "due_at": due,
            "destination": destination,
            "lines": [
                {"line_id": str(i + 1), "sku": sku, "quantity": qty}
                for i, (sku, qty) in enumerate(lines)
            ],
        }
        assert (await http.put(f"/v1/orders/{order_id}", json=body)).status_code == 201


async def orders(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {o: (await http.get(f"/v1/orders/{o}")).json() for o in ORDERS}


async def kill_while_picking(line: LineProcesses, sig: signal.Signals) -> None:
    """Stop the controller once a robot booked a pick of an order it has not dropped yet."""
    async with line.http() as http:
        await put_orders(http)

        async def mid_trip() -> bool:
            # a pick booked and one still to do: the robot has its drop (and a pick) ahead of
            # it, beyond the way traffic control released, so it cannot finish meanwhile
            return any(
                o["status"] == "picking" and 0 < _picks_done(o) < _picks_assigned(o)
                for o in (await orders(http)).values()
            )

        await until("a robot is between its picks", mid_trip)
    await line.stop_controller(sig)


def _picks_assigned(order: dict[str, Any]) -> int:
    assigned = [e for e in order["history"] if e["type"] == "robot_assigned"]
    return len(assigned[-1]["data"]["picks"]) if assigned else 0


def _picks_done(order: dict[str, Any]) -> int:
    return sum(e["type"] == "picked" for e in order["history"])


async def settled_after_restart(
    line: LineProcesses, watch: RobotWatch, *, taken_over: bool = True
) -> None:
    # the robots go on meanwhile: each robot carrying totes reports again, standing still (at
    # the end of the way traffic control had released, or done)
    heard = dict(watch.reports)
    loaded = set(watch.totes_on_robots())

    async def standing() -> bool:
        return all(
            watch.reports.get(s, 0) > heard.get(s, 0) and not watch.driving.get(s) for s in loaded
        )

    await until("the loaded robots report standing", standing)
    await line.start_controller()
    async with line.http() as http:

        async def all_terminal() -> bool:
            return all(
                o["status"] in ("completed", "cancelled", "exception")
                for o in (await orders(http)).values()
            )

        await until("every order is terminal", all_terminal, within=50.0)
        final = await orders(http)
        movements = await _pick_movements(http)
        rows = (await http.get("/v1/inventory")).json()
    assert {o: v["status"] for o, v in final.items()} == dict.fromkeys(ORDERS, "completed")
    assert not watch.errors, watch.errors
    taken = any(e["type"] == "robot_taken_over" for o in final.values() for e in o["history"])
    assert taken == taken_over, "the controller went down with no robot mid-trip"

    async def robots_empty() -> bool:
        return not watch.totes_on_robots()

    await until("no tote is left on a robot", robots_empty, within=10.0)

    # no line picked twice: per order, one executed pick per line, all into the order's tote
    executed = watch.executed_picks()
    for order_id, order in final.items():
        totes = {e["data"]["tote"] for e in order["history"] if e["type"] == "robot_assigned"}
        assert len(totes) == 1, f"{order_id} was picked into {totes}"
        picks = next(e for e in order["history"] if e["type"] == "robot_assigned")["data"]["picks"]
        for pk in picks:
            assert executed.get((next(iter(totes)), pk["location"])) == 1, (order_id, pk, executed)
    # the ledger: each line's units booked once, and nothing left reserved
    for order_id, (_, lines) in ORDERS.items():
        booked: dict[str, int] = {}
        for m in movements:
            if m["order_id"] == order_id:
                booked[m["sku"]] = booked.get(m["sku"], 0) - m["delta"]
        assert booked == dict(lines), (order_id, booked)
    assert all(r["reserved"] == 0 for sku in rows["skus"] for r in sku["rows"]), rows


async def _pick_movements(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = (await http.get("/v1/inventory/movements", params={"after": after})).json()
        out += [m for m in page["movements"] if m["kind"] == "robot_pick_confirmed"]
        if page["next_after"] is None:
            return out
        after = page["next_after"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_a_restarted_controller_takes_over_the_robots_trips(
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
    sig: signal.Signals,
) -> None:
    async with line_processes(
        reference_line, mqtt_url, interface_name, tmp_path, time_scale=TIME_SCALE
    ) as (line, watch):
        await line.start_controller()
        await kill_while_picking(line, sig)
        await settled_after_restart(line, watch)


async def test_trips_a_robot_finished_while_no_controller_ran_are_booked(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    """Without traffic control the robots drive their whole orders while the controller is
    down: they pick, drop at the induction and stand idle. The restarted controller books the
    picks and drops from their reports and follows the totes on the conveyor."""
    robots = reference_line.robots.model_copy(
        update={"traffic": reference_line.robots.traffic.model_copy(update={"enabled": False})}
    )
    line_cfg = reference_line.with_overrides(robots=robots)
    async with line_processes(
        line_cfg, mqtt_url, interface_name, tmp_path, time_scale=TIME_SCALE
    ) as (line, watch):
        await line.start_controller()
        await kill_while_picking(line, signal.SIGKILL)

        async def all_dropped() -> bool:
            return not watch.totes_on_robots() and not any(watch.executing.values())

        await until("the robots dropped every tote and stand idle", all_dropped)
        await settled_after_restart(line, watch, taken_over=False)
        booked = [
            r for r in line.controller_log() if r.get("msg") == "robot taken over" and r["trips"]
        ]
        assert booked == [], "every trip was dropped before the restart: nothing to continue"

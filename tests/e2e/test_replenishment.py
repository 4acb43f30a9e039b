"""Replenishment of a robot pick location from the AS/RS on the whole simulated line: robot
picks take the location below its level, a rack tote comes out, rides the conveyor to the
replenishment chute, the put moves its units to the location in one inventory transaction, and
the tote goes back into the rack."""

from __future__ import annotations

from typing import Any

import pytest

from controller.orders.model import OrderStatus
from tests.e2e.test_case_picks import send_back, stock, tote_stored
from tests.e2e.test_controller_restart import until
from tests.e2e.test_lifecycle import Line, settled

pytestmark = pytest.mark.e2e


async def at_location(line: Line, location: str) -> int:
    body = (await line.http.get("/v1/inventory", params={"location": location})).json()
    [loc] = body["locations"]
    return int(loc["on_hand"])


async def test_a_pick_location_running_low_is_replenished_from_a_rack_tote(line: Line) -> None:
    # L32A holds 24 units of SKU-0027 and is topped up to 60 once below 20
    rule = next(s for s in line.service.config.stock if s.location == "L32A")
    assert (rule.quantity, rule.replenish_below, rule.replenish_to) == (24, 20, 60)
    before = await stock(line, "SKU-0027")
    body = line.b2c("SKU-0027")
    body["lines"][0]["quantity"] = 6
    await line.put("R1", **body)
    order, _ = await line.until("R1", settled, within=90)
    assert order.status is OrderStatus.COMPLETED

    tasks: list[dict[str, Any]] = []

    async def at_chute() -> bool:
        nonlocal tasks
        tasks = (await line.http.get("/v1/replenishments")).json()
        return any(t["state"] == "at_station" for t in tasks)

    await until("the replenishment tote is at its chute", at_chute, within=90)
    [task] = tasks
    # 18 units left: 42 to reach 60, from the fuller of the two rack totes (48 units each)
    assert (task["location"], task["sku"], task["station"]) == ("L32A", "SKU-0027", "REPL")
    assert task["tote"] in ("AS-0053", "AS-0054") and task["units"] == 42
    # the tote is not returned before the put
    assert (await line.http.get("/v1/stations/REPL/returns")).json() == []
    too_many = await line.http.post(
        f"/v1/replenishments/{task['id']}/confirmation", json={"put": 43}
    )
    assert too_many.status_code == 409

    resp = await line.http.post(
        f"/v1/replenishments/{task['id']}/confirmation", json={"put": 42, "operator": "op"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": task["id"], "location": "L32A", "put": 42, "short": 0,
                           "applied": True}  # fmt: skip
    again = await line.http.post(f"/v1/replenishments/{task['id']}/confirmation", json={"put": 42})
    assert again.json() == {**resp.json(), "applied": False}  # recorded once

    assert await at_location(line, "L32A") == 60
    # units moved, none created: the SKU's total fell only by the robot's pick
    after = await stock(line, "SKU-0027")
    assert after["on_hand"] == before["on_hand"] - 6 and after["reserved"] == 0
    ledger = (await line.http.get("/v1/inventory/movements", params={"sku": "SKU-0027"})).json()
    moved = [m for m in ledger["movements"] if m["ref"] == f"{task['id']}-put"]
    assert sorted((m["kind"], m["delta"]) for m in moved) == [
        ("put_confirmed", 42),
        ("tote_pick_confirmed", -42),
    ]

    await send_back(line, "REPL", task["tote"])
    await tote_stored(line, task["tote"])
    assert (await line.http.get("/v1/replenishments")).json() == []

"""B2B case picks served from the AS/RS on the whole simulated line: rack totes retrieved by the
crane simulator, carried by the conveyor simulator to the order's station, counted there (the
cases leave the tote's stock through the verification), sent back and stored again."""

from __future__ import annotations

from typing import Any

import pytest

from controller.orders.model import OrderStatus
from routing.rack import BadLocation, parse_location
from tests.e2e.test_controller_restart import until
from tests.e2e.test_lifecycle import Line, settled

pytestmark = pytest.mark.e2e


def case_order(line: Line, sku: str, cases: int, *each: str) -> dict[str, Any]:
    body = line.b2b(*each)
    body["lines"].append({"line_id": "90", "sku": sku, "quantity": cases, "uom": "case"})
    return body


async def stock(line: Line, sku: str) -> dict[str, int]:
    resp = await line.http.get("/v1/inventory", params={"sku": sku})
    assert resp.status_code == 200, resp.text
    [row] = resp.json()["skus"]
    return {k: row[k] for k in ("on_hand", "reserved", "available")}


def in_rack(location: str | None) -> bool:
    try:
        return location is not None and bool(parse_location(location).aisle)
    except BadLocation:
        return False


async def tote_stored(line: Line, tote: str, within: float = 60) -> str:
    """Wait until the inventory has ``tote`` at a rack location again."""
    inventory = line.service.orchestrator.inventory

    async def stored() -> bool:
        return in_rack(inventory.tote_location(tote))

    await until(f"tote {tote} is back in the rack", stored, within)
    where = inventory.tote_location(tote)
    assert where is not None
    return where


async def verify(line: Line, station: str, order_id: str) -> dict[str, Any]:
    [task] = [
        t
        for t in (await line.http.get(f"/v1/stations/{station}/tasks")).json()
        if t["order_id"] == order_id
    ]
    counted = [
        {"line_id": ln["line_id"], "sku": ln["sku"], "quantity": ln["quantity"]}
        for ln in task["lines"]
    ]
    resp = await line.http.post(
        f"/v1/stations/{station}/tasks/{order_id}/verification",
        json={"operator": "op1", "lines": counted},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "completed", resp.json()
    return dict(task)


async def send_back(line: Line, station: str, tote: str) -> str:
    """The operator's part: report the return, put the tote on the return conveyor."""
    returns = (await line.http.get(f"/v1/stations/{station}/returns")).json()
    [entry] = [r for r in returns if r["tote"] == tote]
    assert entry["aisle"] and not entry["sent"]
    resp = await line.http.post(f"/v1/stations/{station}/returns/{tote}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["sent"] is True
    again = await line.http.post(f"/v1/stations/{station}/returns/{tote}")
    assert again.json() == resp.json()  # reported twice: the same answer
    await line.sim.return_tote(tote, entry["aisle"])
    return str(entry["aisle"])


async def test_case_order_is_served_from_the_asrs_and_the_tote_goes_back(line: Line) -> None:
    before = await stock(line, "SKU-0001")
    await line.put("C1", **case_order(line, "SKU-0001", 2))
    order, steps = await line.until("C1", lambda o, s: o.step == "at_station", within=90)
    assert order.status is OrderStatus.SORTED
    assert "robot_assigned" not in steps  # no robot for a case-only order
    for expected in ("case_pick_released", "case_tote_retrieved", "tote_at_station", "sorted"):
        assert expected in steps, steps
    # 24 units (2 cases of 12) reserved in one rack tote: the smaller of two equal ones by id
    held = {**before, "reserved": 24, "available": before["available"] - 24}
    assert await stock(line, "SKU-0001") == held
    task = await verify(line, "VAS-1", "C1")
    assert task["totes"] == ["AS-0001"] and task["case_lines"] == ["90"]
    assert [(ln["line_id"], ln["uom"], ln["quantity"]) for ln in task["lines"]] == [
        ("90", "case", 2)
    ]
    order, steps = await line.until("C1", settled)
    assert order.status is OrderStatus.COMPLETED and order.picked == {"90": 2}
    # the counted cases left the tote's stock, through the verification only
    left = before["on_hand"] - 24
    assert await stock(line, "SKU-0001") == {"on_hand": left, "reserved": 0, "available": left}
    ledger = (await line.http.get("/v1/inventory/movements", params={"sku": "SKU-0001"})).json()
    taken = [m for m in ledger["movements"] if m["kind"] == "tote_pick_confirmed"]
    assert [(m["tote"], m["delta"], m["order_id"]) for m in taken] == [("AS-0001", -24, "C1")]

    await send_back(line, "VAS-1", "AS-0001")
    where = await tote_stored(line, "AS-0001")
    assert (await line.http.get("/v1/stations/VAS-1/returns")).json() == []
    rows = (await line.http.get("/v1/inventory", params={"location": where})).json()
    assert rows["locations"][0]["rows"][0]["on_hand"] == 24, rows


async def test_mixed_order_waits_for_the_robot_tote_and_the_asrs_tote(line: Line) -> None:
    await line.put("C2", **case_order(line, "SKU-0002", 1, "SKU-0005"))
    order, steps = await line.until("C2", lambda o, s: o.step == "at_station", within=90)
    assert "robot_assigned" in steps and "case_pick_released" in steps
    assert steps.count("tote_at_station") == 2  # the robot's tote and the AS/RS tote
    task = await verify(line, "VAS-1", "C2")
    assert len(task["totes"]) == 2 and task["totes"][1] == "AS-0003"
    assert [(ln["sku"], ln["uom"], ln["quantity"]) for ln in task["lines"]] == [
        ("SKU-0005", "each", 3),
        ("SKU-0002", "case", 1),
    ]
    order, _ = await line.until("C2", settled)
    assert order.status is OrderStatus.COMPLETED
    assert order.picked == {"10": 3, "90": 1}


async def test_cancelled_case_order_gives_back_its_reservation_and_its_tote(line: Line) -> None:
    before = await stock(line, "SKU-0004")
    await line.put("C3", **case_order(line, "SKU-0004", 1))
    await line.until("C3", lambda o, s: "case_tote_retrieved" in s, within=60)
    assert (await line.cancel("C3")).status_code == 202
    order, _ = await line.until("C3", settled)
    assert order.status is OrderStatus.CANCELLED
    reject = line.service.config.conveyor.sorter.reject_chute
    inventory = line.service.orchestrator.inventory

    async def in_reject_chute() -> bool:
        return inventory.tote_location("AS-0007") == f"STATION:{reject}"

    await until("the tote rode on to the reject chute", in_reject_chute)
    assert await stock(line, "SKU-0004") == before  # nothing taken, nothing held
    await send_back(line, reject, "AS-0007")
    await tote_stored(line, "AS-0007")

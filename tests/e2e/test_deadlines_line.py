"""Every wait bounded, on the whole simulated line: a tote that never reaches the scanner puts
its order in exception with the reason, with the conveyor connected throughout (no reconnect,
no reconciliation involved)."""

from __future__ import annotations

import pytest

from controller.orders.model import OrderStatus
from tests.e2e.test_lifecycle import Line

pytestmark = pytest.mark.e2e


def totes_fall_off_the_induction(line: Line) -> list[str]:
    """From now on a robot's drop at an induction never reaches the belt (the tote falls off
    the side): the robot reports the drop finished, the conveyor never sees the tote."""
    fallen: list[str] = []

    async def fall(serial: str, node_id: str, load_id: str | None) -> None:
        if load_id:
            fallen.append(load_id)

    for robot in line.sim.robots.robots.values():
        robot.state.on_drop = fall
    return fallen


async def test_a_tote_never_scanned_ends_its_order_in_exception_without_a_reconnect(
    line: Line,
) -> None:
    fallen = totes_fall_off_the_induction(line)
    await line.put("LOST-1", **line.b2c("SKU-0012"))
    order, steps = await line.until(
        "LOST-1", lambda o, s: o.status is OrderStatus.EXCEPTION, within=90
    )
    assert "dropped" in steps and steps[-1] == "tote_lost_on_conveyor", steps
    [tote] = fallen
    assert order.waiting_reason is not None
    assert order.waiting_reason.startswith(f"tote {tote} not scanned within")
    [event] = [e for e in await line.service.store.history("LOST-1") if e.type == steps[-1]]
    assert event.data["stage"] == "scan" and event.data["tote"] == tote
    sample = line.service.metrics.registry.get_sample_value
    assert sample("linectl_deadline_exceeded_total", {"stage": "scan"}) == 1
    # the conveyor stayed connected: nothing here came from a reconnect's reconciliation
    assert not sample(
        "linectl_conveyor_safe_state_total", {"conveyor": "C1", "reason": "comms_lost"}
    )
    assert not sample(
        "linectl_conveyor_reconciled_total", {"conveyor": "C1", "action": "tote_lost"}
    )
    view = (await line.http.get("/v1/line")).json()
    assert view["deadlines"]["scan"] == event.data["deadline_seconds"]
    assert all(r["fault_hold_seconds"] is None for r in view["robots"])

"""The whole line with a robot that refuses what linectl's own simulator would take: a
cancelOrder answered with a validation error and no action state (as a third-party vehicle
answered an instantActions message it could not validate)."""

from __future__ import annotations

from typing import Any

import pytest

from controller.orders import OrderStatus
from devices.vda5050.messages import ErrorEntry
from tests.e2e.test_lifecycle import Line, settled

pytestmark = pytest.mark.e2e


def refuse_cancels(line: Line, serial: str) -> list[int]:
    """From now on ``serial`` answers every cancelOrder with a validationError that names the
    instantActions message's headerId (spec 7.1) and reports no action state for it."""
    vehicle = line.sim.robots.robots[serial]
    original = vehicle.handle_instant_actions
    refused: list[int] = []

    def handle(message: dict[str, Any]) -> None:
        if not any(a["actionType"] == "cancelOrder" for a in message["actions"]):
            original(message)
            return
        refused.append(message["headerId"])
        refs = (("topic", "instantActions"), ("headerId", str(message["headerId"])))
        vehicle.reject(ErrorEntry("validationError", "WARNING", "invalid instant actions", refs))

    vehicle.handle_instant_actions = handle  # type: ignore[method-assign]
    return refused


async def test_a_cancel_the_robot_refuses_is_retried_then_the_order_ends_cancelled(
    line: Line,
) -> None:
    await line.put("RC1", **line.b2c("SKU-0001", "SKU-0013", "SKU-0025"))
    await line.until("RC1", lambda o, s: "robot_assigned" in s)
    history = await line.service.store.history("RC1")
    robot = next(e.data["robot"] for e in history if e.type == "robot_assigned")
    refused = refuse_cancels(line, robot)
    await line.until("RC1", lambda o, s: "picked" in s)
    assert (await line.cancel("RC1")).status_code == 202
    order, steps = await line.until("RC1", settled, within=60)
    assert order.status is OrderStatus.CANCELLED, steps
    attempts = line.service.config.robots.cancel_attempts
    assert len(refused) == attempts
    cancelled = next(e for e in await line.service.store.history("RC1") if e.type == "cancelled")
    assert cancelled.data["robot"] == robot and cancelled.data["tote"]
    why = cancelled.data["robot_not_stopped"]
    assert f"cancelOrder failed {attempts} times" in why and "validationError" in why
    # the robot needs an operator and gets no work; its tote is still followed on it
    snapshot = line.service.fleet.snapshot()[robot]
    assert snapshot.attention is not None and "could not be stopped" in snapshot.attention
    assert not snapshot.available
    assert any(
        t.tote == cancelled.data["tote"] for t in line.service.orchestrator.flight.on_robot(robot)
    )
    view = (await line.http.get("/v1/line")).json()
    shown = next(r for r in view["robots"] if r["serial"] == robot)
    assert "could not be stopped" in shown["attention"]

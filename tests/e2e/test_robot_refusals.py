"""The whole line with a robot that refuses what linectl's own simulator would take: a
cancelOrder answered with a validation error and no action state (as a third-party vehicle
answered an instantActions message it could not validate)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from controller.orders.model import OrderStatus
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


async def _polled(line: Line, check: Callable[[], bool], within: float = 30) -> None:
    """Poll ``check`` every half line second until it holds (at most ``within`` wall s)."""
    async with asyncio.timeout(within):
        while not check():
            await line.clock.sleep(0.5)


async def test_a_robot_pushed_off_its_node_gets_no_work_until_it_is_back(line: Line) -> None:
    """An idle robot that stands 2.8 m from its last node would reject any order starting
    there (noRouteError): it is reported as needing manual recovery and given no work."""
    serial = "R01"
    vehicle = line.sim.robots.robots[serial]
    home = (vehicle.x, vehicle.y)
    vehicle.x += 2.8  # pushed along the aisle by hand
    vehicle.changed.set()
    fleet = line.service.fleet
    await _polled(line, lambda: fleet.snapshot()[serial].attention is not None)
    snapshot = fleet.snapshot()[serial]
    assert "2.80 m from its last node" in str(snapshot.attention) and not snapshot.available
    registry = line.service.metrics.registry
    assert registry.get_sample_value("linectl_robots_needing_operator") == 1
    view = (await line.http.get("/v1/line")).json()
    shown = next(r for r in view["robots"] if r["serial"] == serial)
    assert shown["attention"].startswith("needs manual recovery")
    for i in range(3):
        await line.put(f"OFF{i}", **line.b2c("SKU-0001"))
    for i in range(3):
        await line.until(f"OFF{i}", lambda o, s: "robot_assigned" in s, within=60)
        history = await line.service.store.history(f"OFF{i}")
        assert next(e.data["robot"] for e in history if e.type == "robot_assigned") != serial
    vehicle.x, vehicle.y = home  # put back onto its node
    vehicle.changed.set()
    await _polled(line, lambda: fleet.snapshot()[serial].available)
    assert fleet.snapshot()[serial].attention is None

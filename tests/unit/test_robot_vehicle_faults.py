"""One simulated robot under injected faults, on a manual clock and without a broker: FATAL
errors and frozen controllers stop it, MANUAL mode clears and refuses orders, charging works
only on a charger, and actions fail by type."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections.abc import AsyncIterator

from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.vda5050.messages import MessageBuilder
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from simulators.robots.vehicle import SimulatedRobot
from tests.unit.vda5050_spec_support import PICK_TEMPLATE

JsonDict = dict[str, object]


def order(
    config: LineConfig, order_id: str, path: list[str], pick_at: str | None = None
) -> JsonDict:
    nodes = []
    for node_id in path:
        n = config.node(node_id)
        actions = (
            (RobotAction(f"{order_id}-pick", "pick", "HARD", (*PICK_TEMPLATE, ("loadId", "T1"))),)
            if node_id == pick_at
            else ()
        )
        nodes.append(RouteNode(node_id, n.x, n.y, config.node_map_id(n), actions))
    edges = [
        RouteEdge(
            a,
            b,
            math.dist((config.node(a).x, config.node(a).y), (config.node(b).x, config.node(b).y)),
        )
        for a, b in itertools.pairwise(path)
    ]
    builder = MessageBuilder("2.0.0", "linectl-sim", "R01", ManualClock())
    return builder.order(RobotOrder(order_id, tuple(nodes), tuple(edges)))


@contextlib.asynccontextmanager
async def running(config: LineConfig, clock: ManualClock) -> AsyncIterator[SimulatedRobot]:
    robot = SimulatedRobot(config, config.robots.fleet[0], clock)  # R01 at P1
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(robot.run(), name="test.robot")
        await clock.advance(0)  # let the robot's loops start before time moves
        assert clock.pending
        try:
            yield robot
        finally:
            task.cancel()


def errors(robot: SimulatedRobot) -> list[tuple[str, str]]:
    return [(e.error_type, e.level) for e in robot.all_errors()]


async def test_fatal_error_stops_the_robot_mid_edge_until_cleared(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as robot:
        robot.handle_order(order(reference_line, "o1", ["P1", "P2"]))  # 4 m at 1.5 m/s
        await manual_clock.advance(1)
        assert robot.driving
        robot.fatal_error("driveFault", "motor")
        await manual_clock.advance(1)
        stopped_at = robot.x
        assert not robot.driving and 0 < stopped_at < 4
        await manual_clock.advance(30)
        assert robot.x == stopped_at and robot.last_node_id == "P1"
        robot.clear_error()
        await manual_clock.advance(5)
        assert robot.last_node_id == "P2" and not robot.executing()
        assert errors(robot) == []


async def test_frozen_controller_stops_and_resumes(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as robot:
        robot.handle_order(order(reference_line, "o1", ["P1", "P2"]))
        await manual_clock.advance(1)
        robot.freeze(20)
        await manual_clock.advance(1)
        stopped_at = robot.x
        await manual_clock.advance(15)
        assert robot.x == stopped_at and not robot.driving
        await manual_clock.advance(10)
        assert robot.last_node_id == "P2"


async def test_manual_mode_clears_the_order_and_refuses_new_ones(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as robot:
        robot.handle_order(order(reference_line, "o1", ["P1", "G00", "G01"], pick_at="G01"))
        await manual_clock.advance(0.5)
        robot.set_operating_mode("MANUAL")
        await manual_clock.advance(5)
        assert not robot.executing() and robot.last_node_id == "G00"
        assert [(a.status, a.result) for a in robot.actions.values()] == [
            ("FAILED", "operating mode changed to MANUAL")
        ]
        robot.handle_order(order(reference_line, "o2", ["G00", "P1"]))
        assert errors(robot) == [("orderError", "WARNING")]
        assert robot.state_body().operating_mode == "MANUAL"
        robot.set_operating_mode("AUTOMATIC")
        robot.handle_order(order(reference_line, "o2", ["G00", "P1"]))
        assert robot.order_id == "o2" and errors(robot) == []


async def test_charging_on_a_charger_only_and_orders_wait_for_stop_charging(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    def instant(action_id: str, kind: str) -> JsonDict:
        return {"actions": [{"actionId": action_id, "actionType": kind}]}

    async with running(reference_line, manual_clock) as robot:
        robot.handle_instant_actions(instant("c0", "startCharging"))
        assert robot.actions["c0"].status == "FAILED" and not robot.battery.charging
        robot.handle_order(order(reference_line, "o1", ["P1", "G00", "CHG1"]))
        await manual_clock.advance(10)
        assert robot.last_node_id == "CHG1"
        robot.set_battery(50)
        robot.handle_instant_actions(instant("c1", "startCharging"))
        assert robot.actions["c1"].status == "FINISHED" and robot.battery.charging
        await manual_clock.advance(10)
        assert robot.battery.charge > 50
        robot.handle_order(order(reference_line, "o2", ["CHG1", "G00"]))
        assert robot.order_id == "o1"
        assert errors(robot) == [("orderError", "WARNING")]
        robot.handle_instant_actions(instant("c2", "stopCharging"))
        robot.handle_order(order(reference_line, "o2", ["CHG1", "G00"]))
        assert robot.order_id == "o2" and not robot.battery.charging


async def test_empty_battery_is_fatal(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as robot:
        robot.set_battery(5)
        assert errors(robot) == [("batteryLow", "WARNING")]
        robot.set_battery(0)
        assert errors(robot) == [("batteryEmpty", "FATAL")] and robot.fatal()
        robot.handle_order(order(reference_line, "o1", ["P1", "P2"]))
        await manual_clock.advance(10)
        assert robot.last_node_id == "P1"
        robot.set_battery(60)
        await manual_clock.advance(10)
        assert robot.last_node_id == "P2"


async def test_fail_action_by_type(reference_line: LineConfig, manual_clock: ManualClock) -> None:
    async with running(reference_line, manual_clock) as robot:
        robot.fail_action("drop")  # not this order's pick
        robot.fail_action("pick")
        robot.handle_order(order(reference_line, "o1", ["P1", "G00", "G01"], pick_at="G01"))
        await manual_clock.advance(20)
        assert [(a.action_type, a.status) for a in robot.actions.values()] == [("pick", "FAILED")]

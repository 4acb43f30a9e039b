"""RobotTracker without a broker: order updates, factsheet checks, battery and operating mode.

States are built with the same MessageBuilder the simulator uses, so every message here is
schema-valid; tests are named after the spec sections they check.
"""

from __future__ import annotations

from typing import Any

import pytest

from devices.base import (
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotAvailability,
    RobotOrder,
    RobotOrderFinished,
    RouteEdge,
    RouteNode,
)
from devices.vda5050 import schema
from devices.vda5050.factsheet import check_factsheet
from devices.vda5050.messages import (
    ActionState,
    ErrorEntry,
    Load,
    MessageBuilder,
    NodeState,
    StateBody,
)
from devices.vda5050.tracker import RobotTracker
from kernel.clock import ManualClock
from kernel.config.model import ActionTemplate, LineConfig, RobotModel

JsonDict = dict[str, Any]


def _node(node_id: str, x: float, *actions: RobotAction) -> RouteNode:
    return RouteNode(node_id, x, 0.0, "floor-1", actions)


class Robot:
    """A tracker for R04 (VDA 5050 2.1) of the reference line and the robot side's builder."""

    def __init__(self, line: LineConfig, version: str = "2.1.0", time_scale: float = 1.0) -> None:
        robot = next(r for r in line.robots.fleet if r.version == version)
        self.model = line.robots.models[robot.model]
        self.clock = ManualClock(time_scale=time_scale)
        self.tracker = RobotTracker(robot, self.model, self.clock)
        self.master = MessageBuilder(version, self.model.manufacturer, robot.serial, self.clock)
        self.robot = MessageBuilder(version, self.model.manufacturer, robot.serial, self.clock)
        self.version = version

    def online(self) -> None:
        self.tracker.link_up = True
        self.tracker.on_connection(self.robot.connection("ONLINE"))

    def state(self, **body: Any) -> list[Any]:
        message = self.robot.state(StateBody(**body))
        assert schema.validate(self.version, "state", message) == []
        return self.tracker.on_state(message)

    def send(self, order: RobotOrder) -> JsonDict:
        message = self.master.order(order)
        self.tracker.track_order(order, message["nodes"][-1])
        return message

    def send_update(
        self, order_id: str, nodes: list[RouteNode], edges: list[RouteEdge]
    ) -> JsonDict:
        base = self.tracker.base
        assert base is not None
        update_id = base.update_id + 1
        message = self.master.order_update(order_id, update_id, base.node, nodes, edges)
        assert schema.validate(self.version, "order", message) == []
        self.tracker.track_update(order_id, update_id, nodes, message["nodes"][-1])
        return message


PICK = RobotAction("o1-pick", "pick")
DROP = RobotAction("o1-drop", "drop")
FIRST = RobotOrder("o1", (_node("A", 0), _node("B", 1, PICK)), (RouteEdge("A", "B", 1.0),))


def test_6_6_2_order_update_stitches_on_the_last_base_node_unchanged(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    first = r.send(FIRST)
    update = r.send_update("o1", [_node("C", 2, DROP)], [RouteEdge("B", "C", 1.0)])
    assert update["orderUpdateId"] == 1
    assert update["nodes"][0] == first["nodes"][-1]  # the stitching node, pick action and all
    assert [(n["nodeId"], n["sequenceId"]) for n in update["nodes"]] == [("B", 2), ("C", 4)]
    assert [(e["startNodeId"], e["sequenceId"]) for e in update["edges"]] == [("B", 3)]
    assert r.tracker.base is not None and r.tracker.base.node["nodeId"] == "C"


def test_6_6_2_order_update_is_confirmed_only_by_its_order_update_id(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.online()
    r.send(FIRST)
    r.state(order_id="o1", last_node_id="A", node_states=[NodeState("B", 2)])
    assert r.tracker.confirmed("o1")
    r.send_update("o1", [_node("C", 2, DROP)], [RouteEdge("B", "C", 1.0)])
    assert not r.tracker.confirmed("o1")
    # the robot reaches B, picks, and has not seen the update yet: the order is not finished
    events = r.state(
        order_id="o1",
        last_node_id="B",
        last_node_sequence_id=2,
        action_states=[ActionState("o1-pick", "pick", "FINISHED")],
    )
    assert [type(e) for e in events] == [RobotActionFinished]
    assert not r.tracker.confirmed("o1")
    r.state(
        order_id="o1",
        order_update_id=1,
        last_node_id="B",
        last_node_sequence_id=2,
        node_states=[NodeState("C", 4)],
        action_states=[
            ActionState("o1-pick", "pick", "FINISHED"),
            ActionState("o1-drop", "drop", "WAITING"),
        ],
    )
    assert r.tracker.confirmed("o1")
    events = r.state(
        order_id="o1",
        order_update_id=1,
        last_node_id="C",
        last_node_sequence_id=4,
        action_states=[
            ActionState("o1-pick", "pick", "FINISHED"),
            ActionState("o1-drop", "drop", "FINISHED"),
        ],
    )
    assert [type(e) for e in events] == [RobotActionFinished, RobotOrderFinished]


def test_6_6_4_rejected_order_update_fails_only_its_actions_and_restores_the_base(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.online()
    first = r.send(FIRST)
    r.state(order_id="o1", last_node_id="A", node_states=[NodeState("B", 2)])
    r.send_update("o1", [_node("C", 2, DROP)], [RouteEdge("B", "C", 1.0)])
    refused = ErrorEntry(
        "orderUpdateError", "WARNING", "bad", (("orderId", "o1"), ("orderUpdateId", "1"))
    )
    events = r.state(
        order_id="o1", last_node_id="A", node_states=[NodeState("B", 2)], errors=[refused]
    )
    failed = [e for e in events if isinstance(e, RobotActionFailed)]
    assert [e.action_id for e in failed] == ["o1-drop"]
    assert r.tracker.confirmed("o1")
    assert r.tracker.base is not None
    assert (r.tracker.base.update_id, r.tracker.base.node) == (0, first["nodes"][-1])
    # the first order goes on and finishes normally
    events = r.state(
        order_id="o1",
        last_node_id="B",
        last_node_sequence_id=2,
        action_states=[ActionState("o1-pick", "pick", "FINISHED")],
        errors=[refused],
    )
    assert [type(e) for e in events] == [RobotActionFinished, RobotOrderFinished]


def test_6_6_2_update_after_the_order_finished_is_followed_again(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.online()
    r.send(FIRST)
    events = r.state(
        order_id="o1",
        last_node_id="B",
        last_node_sequence_id=2,
        action_states=[ActionState("o1-pick", "pick", "FINISHED")],
    )
    assert RobotOrderFinished in [type(e) for e in events]
    r.send_update("o1", [_node("C", 2, DROP)], [RouteEdge("B", "C", 1.0)])
    assert not r.tracker.confirmed("o1")
    events = r.state(
        order_id="o1",
        order_update_id=1,
        last_node_id="C",
        last_node_sequence_id=4,
        action_states=[
            ActionState("o1-pick", "pick", "FINISHED"),
            ActionState("o1-drop", "drop", "FINISHED"),
        ],
    )
    assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
        (RobotActionFinished, "o1-drop"),
        (RobotOrderFinished, None),
    ]


@pytest.mark.parametrize("mode", ["MANUAL", "SERVICE", "TEACHIN"])
def test_6_10_6_operating_mode_without_master_control_makes_the_robot_unavailable(
    reference_line: LineConfig, mode: str
) -> None:
    r = Robot(reference_line)
    r.online()
    r.state(operating_mode="AUTOMATIC")
    assert r.tracker.availability() == (True, "ok")
    events = r.state(operating_mode=mode)
    assert r.tracker.availability() == (False, f"operating mode {mode}")
    assert [getattr(e, "available", None) for e in events] == [False]
    r.state(operating_mode="SEMIAUTOMATIC")
    assert r.tracker.available


@pytest.mark.parametrize(
    ("time_scale", "silent_after"),
    [(1.0, 30.0), (10.0, 30.0), (80.0, 120.0)],  # 30 line s, and never under 1.5 wall s
)
async def test_a_robot_without_state_goes_stale_after_30_line_seconds_and_1_5_wall_seconds(
    reference_line: LineConfig, time_scale: float, silent_after: float
) -> None:
    r = Robot(reference_line, time_scale=time_scale)
    r.online()
    r.state()
    assert r.tracker.stale_after() == silent_after
    await r.clock.advance(silent_after)
    assert r.tracker.availability() == (True, "ok")
    await r.clock.advance(1.0)
    assert r.tracker.availability() == (False, f"no state for {silent_after + 1:.0f} s")
    r.state()
    assert r.tracker.availability() == (True, "ok")


def test_6_10_6_battery_charge_and_charging_in_the_snapshot(reference_line: LineConfig) -> None:
    r = Robot(reference_line)
    before = r.tracker.snapshot()
    assert (before.battery, before.charging) == (None, None)
    r.online()
    r.state(battery_charge=42.5, charging=True)
    snapshot = r.tracker.snapshot()
    assert (snapshot.battery, snapshot.charging) == (42.5, True)


def _without(factsheet: JsonDict, action_type: str) -> JsonDict:
    actions = factsheet["protocolFeatures"]["agvActions"]
    features = {
        **factsheet["protocolFeatures"],
        "agvActions": [a for a in actions if a["actionType"] != action_type],
    }
    return {**factsheet, "protocolFeatures": features}


def test_6_15_factsheet_that_fits_the_templates_has_no_problems(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    factsheet = r.robot.factsheet(r.model, "series")
    assert check_factsheet(factsheet, r.model).problems == ()
    assert not r.tracker.on_factsheet(factsheet)  # nothing changed: nothing to log


def test_6_15_factsheet_without_drop_is_reported_and_the_robot_not_used(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.online()
    r.state()
    assert r.tracker.available
    factsheet = _without(r.robot.factsheet(r.model, "series"), "drop")
    assert schema.validate("2.1.0", "factsheet", factsheet) == []
    assert r.tracker.on_factsheet(factsheet)
    assert r.tracker.snapshot().factsheet_problems == ("factsheet lists no 'drop' action",)
    assert r.tracker.availability() == (False, "factsheet: factsheet lists no 'drop' action")
    assert not r.tracker.on_factsheet(factsheet)  # the same problems again: logged once


def test_6_15_undeclared_template_parameter_is_reported_but_usable(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    factsheet = r.robot.factsheet(r.model, "series")
    pick = r.model.pick.model_copy(update={"parameters": {**r.model.pick.parameters, "x": 1}})
    model = r.model.model_copy(update={"pick": pick})
    check = check_factsheet(factsheet, model)
    assert check.usable
    assert check.problems == ("'pick' does not declare parameter(s) x",)


def test_6_15_pick_only_as_instant_action_is_not_usable(reference_line: LineConfig) -> None:
    model = RobotModel(manufacturer="m", pick=ActionTemplate(), drop=ActionTemplate())
    factsheet = MessageBuilder("2.1.0", "m", "R", ManualClock()).factsheet(model, "s")
    for action in factsheet["protocolFeatures"]["agvActions"]:
        if action["actionType"] == "pick":
            action["actionScopes"] = ["INSTANT"]
    check = check_factsheet(factsheet, model)
    assert not check.usable
    assert check.problems == ("'pick' is not allowed on nodes (scopes INSTANT)",)


@pytest.mark.parametrize(("version", "asks"), [("2.1.0", True), ("2.0.0", False)])
async def test_6_15_factsheet_request_only_for_2_1_after_the_wait(
    reference_line: LineConfig, version: str, asks: bool
) -> None:
    r = Robot(reference_line, version)
    assert not r.tracker.wants_factsheet(5.0)
    r.online()
    assert not r.tracker.wants_factsheet(5.0)
    await r.clock.advance(5.0)
    assert r.tracker.wants_factsheet(5.0) is asks
    r.tracker.on_factsheet(r.robot.factsheet(r.model, "series"))
    assert not r.tracker.wants_factsheet(5.0)


async def test_state_request_once_per_online_period_until_a_state_arrives(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    assert not r.tracker.wants_state()  # not ONLINE yet
    r.online()
    assert r.tracker.wants_state()  # a controller that just started has no state of it
    r.tracker.state_requested = True
    assert not r.tracker.wants_state()  # asked once
    r.state()
    r.tracker.state_requested = False
    assert not r.tracker.wants_state()  # it reported since it came online
    r.tracker.on_connection(r.robot.connection("CONNECTIONBROKEN"))
    await r.clock.advance(5.0)
    r.online()  # back without a state since: asked again
    assert r.tracker.wants_state()
    r.tracker.state_requested = True
    r.state()
    assert not r.tracker.wants_state()


def test_snapshot_carries_the_order_actions_and_loads_a_take_over_needs(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.online()
    assert not r.tracker.snapshot().reported
    r.state(
        order_id="o1",
        order_update_id=2,
        last_node_id="A",
        node_states=[NodeState("B", 2)],
        action_states=[
            ActionState("o1-pick", "pick", "FINISHED"),
            ActionState("o1-drop", "drop", "WAITING"),
        ],
        loads=[Load("TOTE-1", "tote")],
    )
    snap = r.tracker.snapshot()
    assert snap.reported
    assert (snap.order_id, snap.order_update_id, snap.nodes_left) == ("o1", 2, ("B",))
    assert [(a.action_id, a.status) for a in snap.actions] == [
        ("o1-pick", "FINISHED"),
        ("o1-drop", "WAITING"),
    ]
    assert [ld.load_id for ld in snap.loads] == ["TOTE-1"]
    assert snap.executing
    r.state(order_id="o1", action_states=[ActionState("o1-pick", "pick", "FINISHED")])
    assert not r.tracker.snapshot().executing


def _availability(events: list[Any]) -> list[tuple[bool, str, bool]]:
    return [(e.available, e.reason, e.unheard) for e in events if isinstance(e, RobotAvailability)]


async def test_a_broker_outage_leaves_the_robots_unheard_not_failed(
    reference_line: LineConfig,
) -> None:
    """While the controller's broker link is down, and after it is back until the robot
    reports again (at most the stale time: robots reconnect in their own time), the robot is
    unavailable but *unheard*: nothing is known of it, which is no failure of its own."""
    r = Robot(reference_line)
    r.online()
    assert r.tracker.refresh() == []  # the first link: nothing known yet
    assert _availability(r.state(operating_mode="AUTOMATIC")) == [(True, "ok", False)]

    r.tracker.link_up = False  # the broker connection drops
    assert _availability(r.tracker.refresh()) == [(False, "broker connection down", True)]
    await r.clock.advance(300)
    assert r.tracker.refresh() == []

    r.tracker.link_up = True  # back; the robot has not reconnected yet
    assert r.tracker.refresh() == []
    await r.clock.advance(r.tracker.stale_after() / 2)
    assert r.tracker.refresh() == []
    # still silent after the stale time since the link came back: now it counts against it
    await r.clock.advance(r.tracker.stale_after())
    [(available, reason, unheard)] = _availability(r.tracker.refresh())
    assert (available, unheard) == (False, False) and reason.startswith("no state for")
    # it reports again
    assert _availability(r.state(operating_mode="AUTOMATIC")) == [(True, "ok", False)]

    # a blip: the link is back before the robot's last state is stale, it is available at once
    r.tracker.link_up = False
    assert _availability(r.tracker.refresh()) == [(False, "broker connection down", True)]
    r.tracker.link_up = True
    assert _availability(r.tracker.refresh()) == [(True, "ok", False)]

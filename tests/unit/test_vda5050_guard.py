"""What master control may send one robot, without a broker: the order rate cap, the backoff
after rejections and the operator flag (:mod:`devices.vda5050.guard`), where an idle robot
stands (:mod:`devices.vda5050.placement`), and rejections recognised by the tracker, also when
the robot names only the message's headerId (spec 7.1).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devices.base import (
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotOrder,
    RobotOrderFinished,
    RouteNode,
)
from devices.errors import DeviceUnavailable, Refusal
from devices.vda5050 import schema
from devices.vda5050.guard import GuardSettings, OrderGuard
from devices.vda5050.master.commands import RobotCommands
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.pending import PendingOrders
from devices.vda5050.master.state import MasterState
from devices.vda5050.messages import (
    ErrorEntry,
    MessageBuilder,
    NodeState,
    Pose,
    StateBody,
    node_dict,
)
from devices.vda5050.placement import Misplaced, misplacement
from devices.vda5050.tracker import RobotTracker
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

SETTINGS = GuardSettings(
    max_orders_per_minute=3,
    rejection_backoff=5.0,
    rejection_backoff_max=30.0,
    max_rejections=4,
    cancel_attempts=2,
)


# --- the guard ----------------------------------------------------------------------------------


def test_no_robot_gets_more_new_orders_per_line_minute_than_the_cap() -> None:
    guard = OrderGuard(SETTINGS)
    for t in (0.0, 1.0, 2.0):
        assert guard.refusal(t) is None
        guard.sent(t)
    refusal = guard.refusal(30.0)
    assert refusal is not None and refusal[0] is Refusal.RATE_LIMITED
    assert guard.hold(30.0) is not None
    assert guard.refusal(60.0) is None  # the first order left the window
    guard.sent(60.0)
    assert guard.refusal(60.5) is not None


def test_rejections_back_off_exponentially_up_to_the_maximum_then_need_an_operator() -> None:
    guard = OrderGuard(SETTINGS)
    delays = []
    now = 0.0
    for _ in range(3):
        assert not guard.rejected(now, "noRouteError: first node not within deviation")
        refusal = guard.refusal(now)
        assert refusal is not None and refusal[0] is Refusal.BACKING_OFF
        delays.append(guard.backoff_until - now)
        now = guard.backoff_until
        assert guard.refusal(now) is None
    assert delays == [5.0, 10.0, 20.0]
    assert guard.rejected(now, "noRouteError: again")  # the fourth in a row
    assert guard.backoff_until - now == 30.0  # capped
    refusal = guard.refusal(now + 1000)
    assert refusal is not None and refusal[0] is Refusal.NEEDS_OPERATOR
    assert "rejected 4 orders in a row" in refusal[1] and "noRouteError" in refusal[1]
    assert guard.hold(now) is None  # an operator matter, not a hold that clears by itself
    assert guard.reset() is not None
    assert guard.refusal(now) is None and guard.rejections == 0


def test_an_accepted_order_ends_the_run_of_rejections() -> None:
    guard = OrderGuard(SETTINGS)
    for _ in range(3):
        guard.rejected(0.0, "orderError")
    guard.accepted()
    assert guard.refusal(0.0) is None
    assert not guard.rejected(0.0, "orderError")  # counting starts again


def test_failed_cancels_in_a_row_need_an_operator_a_finished_one_ends_the_run() -> None:
    guard = OrderGuard(SETTINGS)
    assert not guard.cancel_failed("validationError")
    guard.cancel_done()
    assert not guard.cancel_failed("validationError")
    assert guard.cancel_failed("no action state within 10 s")
    assert guard.operator is not None and "could not be stopped" in guard.operator


# --- where the robot stands ---------------------------------------------------------------------

NODES = {"A": (0.0, 0.0, "floor-1"), "B": (4.0, 0.0, "floor-1")}


def _state(**changes: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "lastNodeId": "A",
        "driving": False,
        "nodeStates": [],
        "agvPosition": {"x": 0.1, "y": 0.0, "mapId": "floor-1", "positionInitialized": True},
    }
    state.update(changes)
    return state


def test_an_idle_robot_within_the_deviation_of_its_last_node_can_start_there() -> None:
    assert misplacement(_state(), NODES, 0.5) is None
    assert misplacement(_state(agvPosition=None), NODES, 0.5) is None  # localised by tags


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"agvPosition": {"x": 2.8, "y": 0, "mapId": "floor-1", "positionInitialized": True}},
         Misplaced.OFF_NODE),
        ({"agvPosition": {"x": 0, "y": 0, "mapId": "floor-1", "positionInitialized": False}},
         Misplaced.NOT_LOCALISED),
        ({"agvPosition": {"x": 0, "y": 0, "mapId": "floor-2", "positionInitialized": True}},
         Misplaced.OTHER_MAP),
        ({"lastNodeId": "Z9"}, Misplaced.UNKNOWN_NODE),
        ({"lastNodeId": ""}, Misplaced.NO_NODE),
    ],
)  # fmt: skip
def test_a_robot_where_no_order_can_start_is_misplaced(
    changes: dict[str, Any], kind: Misplaced
) -> None:
    found = misplacement(_state(**changes), NODES, 0.5)
    assert found is not None and found.kind is kind
    assert str(found).startswith("needs manual recovery: ")


def test_a_robot_between_nodes_on_its_way_is_not_misplaced() -> None:
    far = {"x": 2.0, "y": 0, "mapId": "floor-1", "positionInitialized": True}
    assert misplacement(_state(agvPosition=far, driving=True), NODES, 0.5) is None
    paused = _state(agvPosition=far, nodeStates=[{"nodeId": "B"}])
    assert misplacement(paused, NODES, 0.5) is None


# --- the tracker --------------------------------------------------------------------------------


class Robot:
    """R04 (VDA 5050 2.1) of the reference line with the line's map and a small guard."""

    def __init__(self, line: LineConfig) -> None:
        robot = next(r for r in line.robots.fleet if r.version == "2.1.0")
        self.model = line.robots.models[robot.model]
        self.clock = ManualClock()
        nodes = {n.id: (n.x, n.y, line.node_map_id(n)) for n in line.robots.nodes}
        self.home = line.node(robot.home)
        self.tracker = RobotTracker(
            robot, self.model, self.clock, nodes=nodes, guard=OrderGuard(SETTINGS)
        )
        self.master = MessageBuilder("2.1.0", self.model.manufacturer, robot.serial, self.clock)
        self.robot = MessageBuilder("2.1.0", self.model.manufacturer, robot.serial, self.clock)
        self.tracker.link_up = True
        self.tracker.on_connection(self.robot.connection("ONLINE"))

    def state(self, x: float | None = None, **body: Any) -> list[Any]:
        pose = Pose(self.home.x if x is None else x, self.home.y, 0.0, "floor-1")
        body.setdefault("last_node_id", self.home.id)
        message = self.robot.state(StateBody(pose=pose, **body))
        assert schema.validate("2.1.0", "state", message) == []
        return self.tracker.on_state(message)

    def send(self, order_id: str) -> dict[str, Any]:
        node = RouteNode(self.home.id, self.home.x, self.home.y, "floor-1")
        order = RobotOrder(order_id, (node,), ())
        message = self.master.order(order)
        self.tracker.track_order(order, message["nodes"][-1], message["headerId"])
        self.tracker.guard.sent(self.clock.now())
        return message


def test_a_rejection_naming_only_the_header_id_is_recognised_and_backs_off(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.state()
    message = r.send("o1")
    refs = (("topic", "order"), ("headerId", str(message["headerId"])))
    events = r.state(errors=[ErrorEntry("validationError", "WARNING", "bad", refs)])
    assert [type(e) for e in events] == [RobotOrderFinished]
    refusal = r.tracker.guard.refusal(r.clock.now())
    assert refusal is not None and refusal[0] is Refusal.BACKING_OFF
    assert r.tracker.snapshot().order_hold is not None


def test_a_standing_warning_naming_an_old_header_id_does_not_reject_a_new_order(
    reference_line: LineConfig,
) -> None:
    """After a restart master control counts headerIds from 0 again: a warning the robot still
    shows for a message of the previous run may carry the same headerId."""
    r = Robot(reference_line)
    old = ErrorEntry("validationError", "WARNING", "old", (("topic", "order"), ("headerId", "0")))
    r.state(errors=[old])
    message = r.send("o1")
    assert message["headerId"] == 0
    assert r.state(errors=[old]) == []
    assert not r.tracker.confirmed("o1")
    assert r.tracker.guard.rejections == 0


def test_a_rejection_without_order_update_id_rejects_the_order(reference_line: LineConfig) -> None:
    r = Robot(reference_line)
    r.state()
    r.send("o1")
    no_route = ErrorEntry("noRouteError", "WARNING", "not within deviation", (("orderId", "o1"),))
    events = r.state(errors=[no_route])
    assert RobotOrderFinished in [type(e) for e in events]
    assert r.tracker.guard.rejections == 1


def test_rejections_in_a_row_take_the_robot_out_until_it_reconnects(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.state()
    for i in range(SETTINGS.max_rejections):
        r.send(f"o{i}")
        refs = (("orderId", f"o{i}"), ("orderUpdateId", "0"))
        r.state(errors=[ErrorEntry("noRouteError", "WARNING", "no route", refs)])
    snapshot = r.tracker.snapshot()
    assert not snapshot.available
    assert snapshot.attention is not None and "rejected 4 orders in a row" in snapshot.attention
    assert r.tracker.availability()[1].startswith("needs an operator")
    r.tracker.on_connection(r.robot.connection("CONNECTIONBROKEN"))
    r.tracker.on_connection(r.robot.connection("ONLINE"))
    r.state()
    assert r.tracker.snapshot().attention is None and r.tracker.available


def test_an_operator_taking_the_robot_out_of_automatic_and_back_puts_it_into_use(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.tracker.guard.operator = "rejected 4 orders in a row"
    r.state(operating_mode="MANUAL")
    assert r.tracker.guard.operator is not None
    r.state(operating_mode="AUTOMATIC")
    assert r.tracker.guard.operator is None and r.tracker.available


def test_an_idle_robot_off_its_node_needs_recovery_until_it_is_back(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.state()
    assert r.tracker.available
    events = r.state(x=r.home.x + 2.8)
    snapshot = r.tracker.snapshot()
    assert not snapshot.available
    assert snapshot.attention is not None and "2.80 m from its last node" in snapshot.attention
    assert [e.available for e in events if hasattr(e, "available")] == [False]
    # on its way between nodes it is not checked
    r.state(x=r.home.x + 2.8, node_states=[NodeState("G00", 2)], driving=True)
    assert r.tracker.snapshot().attention is None
    r.state(x=r.home.x + 0.3)
    assert r.tracker.available


def test_a_failed_instant_action_is_reported_once_with_the_robots_error(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.state()
    message = r.master.instant_actions([RobotAction("p1", "startPause", "HARD")])
    r.tracker.track_instant([RobotAction("p1", "startPause", "HARD")], message["headerId"])
    refs = (("topic", "instantActions"), ("headerId", str(message["headerId"])))
    invalid = ErrorEntry("validationError", "WARNING", "invalid instant actions", refs)
    events = r.state(errors=[invalid])
    assert [(type(e), e.action_id) for e in events] == [(RobotActionFailed, "p1")]
    assert isinstance(events[0], RobotActionFailed)
    assert events[0].reason == "validationError: invalid instant actions"
    assert r.state(errors=[invalid]) == []
    assert r.tracker.overdue() == []


async def test_an_unanswered_cancel_fails_at_the_deadline_but_is_no_refusal(
    reference_line: LineConfig,
) -> None:
    r = Robot(reference_line)
    r.state()
    cancels = []
    for i in range(SETTINGS.cancel_attempts):
        action = RobotAction(f"c{i}", "cancelOrder", "NONE")
        r.tracker.track_instant([action], i)
        await r.clock.advance(9.0)
        assert r.tracker.overdue() == []
        await r.clock.advance(1.0)
        cancels += r.tracker.overdue()
    assert all(isinstance(e, RobotActionFailed) for e in cancels) and len(cancels) == 2
    assert [e.action_type for e in cancels if isinstance(e, RobotActionFailed)] == [
        "cancelOrder"
    ] * 2
    assert "no action state within 10 s" in str(cancels[0])
    # late on a loaded broker is not refused: the robot is not flagged for it
    assert r.tracker.snapshot().attention is None
    assert r.tracker.guard.failed_cancels == 0


def test_refused_cancels_in_a_row_flag_the_robot(reference_line: LineConfig) -> None:
    r = Robot(reference_line)
    r.state(order_id="o1", node_states=[NodeState("G00", 2)], driving=True)
    for i in range(SETTINGS.cancel_attempts):
        r.tracker.track_instant([RobotAction(f"c{i}", "cancelOrder", "NONE")], i)
        refs = (("actionId", f"c{i}"),)
        error = ErrorEntry("instantActionError", "WARNING", "cannot cancel now", refs)
        events = r.state(
            order_id="o1", node_states=[NodeState("G00", 2)], driving=True, errors=[error]
        )
        assert isinstance(events[0], RobotActionFailed)
    assert "could not be stopped" in str(r.tracker.snapshot().attention)
    assert not r.tracker.available


def test_cancel_with_no_order_to_cancel_counts_as_done(reference_line: LineConfig) -> None:
    r = Robot(reference_line)
    r.state()
    r.tracker.track_instant([RobotAction("c1", "cancelOrder", "NONE")], 5)
    nothing = ErrorEntry("noOrderToCancel", "WARNING", "", (("actionId", "c1"),))
    events = r.state(errors=[nothing])
    assert [type(e) for e in events] == [RobotActionFinished]
    assert r.tracker.guard.failed_cancels == 0


def test_resent_order_is_known_by_its_new_header_id(reference_line: LineConfig) -> None:
    r = Robot(reference_line)
    r.state()
    first = r.send("o1")
    again = r.master.restamp(first, "order")
    assert again["headerId"] == first["headerId"] + 1
    assert {k: v for k, v in again.items() if k not in ("headerId", "timestamp")} == {
        k: v for k, v in first.items() if k not in ("headerId", "timestamp")
    }
    r.tracker.resent("o1", again["headerId"])
    refs = (("topic", "order"), ("headerId", str(again["headerId"])))
    events = r.state(errors=[ErrorEntry("orderError", "WARNING", "", refs)])
    assert RobotOrderFinished in [type(e) for e in events]


def test_a_node_carries_its_allowed_deviation_when_set() -> None:
    node = RouteNode("P1", 0.0, -2.0, "floor-1", deviation=(0.5, 0.35))
    position = node_dict(node, 0)["nodePosition"]
    assert (position["allowedDeviationXY"], position["allowedDeviationTheta"]) == (0.5, 0.35)
    plain = node_dict(RouteNode("P1", 0, -2, "floor-1"), 0)["nodePosition"]
    assert "allowedDeviationXY" not in plain


def test_a_cancel_whose_order_is_gone_counts_as_done_without_its_own_state(
    reference_line: LineConfig,
) -> None:
    """The state that showed the cancel FINISHED was lost (QoS 0), and the robot already runs
    the next order: the cancel did what it was for and does not count against the robot."""
    r = Robot(reference_line)
    r.state(order_id="o1", node_states=[NodeState("G00", 2)], driving=True)
    r.tracker.track_instant([RobotAction("c1", "cancelOrder", "NONE")], 7)
    assert r.state(order_id="o1", node_states=[NodeState("G00", 2)], driving=True) == []
    events = r.state(order_id="o2", node_states=[NodeState("G00", 2)], driving=True)
    assert [(type(e), e.action_id) for e in events] == [(RobotActionFinished, "c1")]
    assert r.tracker.guard.failed_cancels == 0


# --- an answer read before publish() returns ---------------------------------------------------


class _AnsweringClient:
    """A broker client whose robot answers (and whose answer is read) before publish() returns,
    as happens when the client reads ahead while the publish waits for its acknowledgement."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.published: list[dict[str, Any]] = []

    async def publish(self, topic: str, payload: str, qos: int = 0) -> None:
        message = json.loads(payload)
        self.published.append(message)
        self.answer(message)


async def test_a_refusal_read_while_the_cancel_is_still_being_published_counts(
    reference_line: LineConfig,
) -> None:
    state = MasterState.for_fleet(reference_line, ManualClock(), Metrics(), "uagv")
    serial = next(r.serial for r in reference_line.robots.fleet if r.version == "2.1.0")
    tracker = state.trackers[serial]
    model = reference_line.robots.models[tracker.robot.model]
    robot = MessageBuilder("2.1.0", model.manufacturer, serial, ManualClock())
    home = reference_line.node(tracker.robot.home)
    pose = Pose(home.x, home.y, 0.0, "floor-1")
    tracker.link_up = True
    tracker.on_connection(robot.connection("ONLINE"))
    tracker.on_state(robot.state(StateBody(pose=pose, last_node_id=home.id)))
    events: list[Any] = []

    def refuse(message: dict[str, Any]) -> None:
        refs = (("topic", "instantActions"), ("headerId", str(message["headerId"])))
        error = ErrorEntry("validationError", "WARNING", "invalid instant actions", refs)
        body = StateBody(pose=pose, last_node_id=home.id, errors=[error])
        events.extend(tracker.on_state(robot.state(body)))

    client = _AnsweringClient(refuse)
    state.client = client  # type: ignore[assignment]
    commands = RobotCommands(state, MasterOutput(state), PendingOrders(state))
    action_id = await commands.cancel_order(serial)
    assert [(type(e), e.action_id) for e in events] == [(RobotActionFailed, action_id)]
    assert tracker.guard.failed_cancels == 1


async def test_instant_actions_that_could_not_be_published_are_not_followed(
    reference_line: LineConfig,
) -> None:
    state = MasterState.for_fleet(reference_line, ManualClock(), Metrics(), "uagv")
    serial = reference_line.robots.fleet[0].serial
    tracker = state.trackers[serial]
    tracker.link_up = True
    model = reference_line.robots.models[tracker.robot.model]
    robot = MessageBuilder(tracker.version, model.manufacturer, serial, ManualClock())
    tracker.on_connection(robot.connection("ONLINE"))
    commands = RobotCommands(state, MasterOutput(state), PendingOrders(state))
    with pytest.raises(DeviceUnavailable):  # no broker client
        await commands.send_instant_actions(serial, [RobotAction("p1", "startPause", "HARD")])
    assert len(tracker.attend.instants) == 0

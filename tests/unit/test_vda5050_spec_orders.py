"""VDA 5050 2.1, sections 6.6.1 to 6.6.4.3 (orders, order updates, cancellation, rejection) and
6.10.2 (traversal), checked without a broker: the acceptance rules as the pure function
:func:`check_order`, the simulated robot R02 (a 2.1 robot, home P2) on a manual clock, and the
master's :class:`RobotTracker` fed with the robot's own state messages.

Each test is named after the section it checks and quotes the rule in its docstring. Every
order, instant action and state message built here is validated against the 2.1 schema before
it is used; horizons are made by clearing ``released`` on the tail of a built order.

Reference line, R02's neighbourhood: P2 (4, -2) -> G10 (4, 0) -> G11 (4, 3) -> G12 (4, 6), and
G10 -> G20 (8, 0); picker-s drives 1.5 m/s and picks or drops in 3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from controller.clock import ManualClock
from controller.config.model import LineConfig
from devices.base import (
    DeviceEvent,
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotOrder,
    RobotOrderFinished,
    RouteEdge,
    RouteNode,
)
from devices.vda5050 import schema
from devices.vda5050.messages import MessageBuilder
from devices.vda5050.tracker import RobotTracker
from simulators.robots.acceptance import RobotView, Verdict, check_order
from simulators.robots.collisions import Place
from simulators.robots.vehicle import SimulatedRobot

JsonDict = dict[str, Any]
SERIAL = "R02"
VERSION = "2.1.0"
LONG = 60.0  # line seconds: more than any trip here needs


def _pick(action_id: str, load_id: str = "T1") -> RobotAction:
    return RobotAction(action_id, "pick", "HARD", (("loadId", load_id),))


def _drop(action_id: str, load_id: str = "T1") -> RobotAction:
    return RobotAction(action_id, "drop", "HARD", (("loadId", load_id),))


def _valid(topic: str, message: JsonDict) -> JsonDict:
    assert schema.validate(VERSION, topic, message) == []
    return message


def _to_horizon(message: JsonDict, count: int) -> JsonDict:
    """Unrelease the last ``count`` nodes and the edges leading to them (spec 6.6.1)."""
    for item in [*message["nodes"][-count:], *message["edges"][-count:]] if count else []:
        item["released"] = False
    return _valid("order", message)


class Link:
    """R02 on the simulator and master control's view of it, without MQTT in between."""

    def __init__(self, config: LineConfig, clock: ManualClock) -> None:
        self.config = config
        robot = next(r for r in config.robots.fleet if r.serial == SERIAL)
        model = config.robots.models[robot.model]
        assert robot.version == VERSION
        self.robot = SimulatedRobot(config, robot, clock)
        self.tracker = RobotTracker(robot, model, clock)
        self.master = MessageBuilder(VERSION, model.manufacturer, SERIAL, clock)
        self.vehicle = MessageBuilder(VERSION, model.manufacturer, SERIAL, clock)
        self.visited: list[str] = []
        self.robot.on_move = self._moved

    def _moved(self, serial: str, place: Place) -> None:
        self.visited.append(place.describe())

    def _node(self, node_id: str, actions: Mapping[str, Sequence[RobotAction]]) -> RouteNode:
        n = self.config.node(node_id)
        return RouteNode(
            node_id, n.x, n.y, self.config.node_map_id(n), tuple(actions.get(node_id, ()))
        )

    def _edge(self, start: str, end: str) -> RouteEdge:
        a, b = self.config.node(start), self.config.node(end)
        return RouteEdge(start, end, math.dist((a.x, a.y), (b.x, b.y)))

    def order(
        self,
        order_id: str,
        path: list[str],
        actions: Mapping[str, Sequence[RobotAction]] | None = None,
        horizon: int = 0,
    ) -> JsonDict:
        """A new order along ``path``, its last ``horizon`` nodes unreleased, followed by the
        tracker from its last released node."""
        nodes = tuple(self._node(n, actions or {}) for n in path)
        edges = tuple(self._edge(a, b) for a, b in itertools.pairwise(path))
        order = RobotOrder(order_id, nodes, edges)
        message = _to_horizon(self.master.order(order), horizon)
        released = [n for n in message["nodes"] if n["released"]]
        self.tracker.track_order(order, released[-1])
        return message

    def update(
        self,
        order_id: str,
        path: list[str],
        actions: Mapping[str, Sequence[RobotAction]] | None = None,
        horizon: int = 0,
        *,
        stitch: JsonDict | None = None,
        update_id: int | None = None,
    ) -> JsonDict:
        """An update appending ``path`` to the stitching node (by default the tracker's last
        base node, sent unchanged); followed by the tracker unless ids are forced."""
        base = self.tracker.base
        assert base is not None
        forced = stitch is not None or update_id is not None
        stitch = base.node if stitch is None else stitch
        update_id = self.tracker.next_update_id(order_id) if update_id is None else update_id
        nodes = [self._node(n, actions or {}) for n in path]
        edges = [self._edge(a, b) for a, b in itertools.pairwise([stitch["nodeId"], *path])]
        message = self.master.order_update(order_id, update_id, stitch, nodes, edges)
        message = _to_horizon(message, horizon)
        if not forced:
            released = [n for n in message["nodes"] if n["released"]]
            self.tracker.track_update(order_id, update_id, nodes, released[-1])
        return message

    def cancel(self, action_id: str) -> None:
        """Master control sends cancelOrder (spec 6.6.3) and the robot receives it."""
        action = RobotAction(action_id, "cancelOrder", "NONE")
        message = _valid("instantActions", self.master.instant_actions([action]))
        self.tracker.track_instant([action])
        self.robot.handle_instant_actions(message)

    def state(self) -> JsonDict:
        return _valid("state", self.vehicle.state(self.robot.state_body()))

    def report(self) -> list[DeviceEvent]:
        """The robot publishes its state and master control reads it."""
        return self.tracker.on_state(self.state())

    def status(self, action_id: str) -> str:
        return self.robot.actions[action_id].status

    def nodes(self) -> list[tuple[str, int, bool]]:
        return [(n["nodeId"], n["sequenceId"], n["released"]) for n in self.state()["nodeStates"]]

    def errors(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        return [
            (
                e["errorType"],
                e["errorLevel"],
                [(r["referenceKey"], r["referenceValue"]) for r in e["errorReferences"]],
            )
            for e in self.state()["errors"]
        ]


@contextlib.asynccontextmanager
async def running(config: LineConfig, clock: ManualClock) -> AsyncIterator[Link]:
    link = Link(config, clock)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(link.robot.run(), name="test.robot")
        await clock.advance(0)  # let the robot's loops start before time moves
        assert clock.pending
        try:
            yield link
        finally:
            task.cancel()


async def _until(clock: ManualClock, condition: Callable[[], bool]) -> None:
    """Move line time on in small steps until ``condition`` holds (within LONG)."""
    deadline = clock.now() + LONG
    while not condition():
        assert clock.now() < deadline, "condition not reached"
        await clock.advance(0.1)


def _view(config: LineConfig, **changes: Any) -> RobotView:
    """R02 as check_order sees it: idle at P2 after order o1, unless ``changes`` say otherwise."""
    home = config.node("P2")
    view = RobotView(
        serial=SERIAL,
        manufacturer="linectl-sim",
        map_id=config.node_map_id(home),
        supported_node_actions=("pick", "drop"),
        order_id="o1",
        order_update_id=0,
        executing=False,
        last_node_id="P2",
        last_node_sequence_id=0,
        decision_point=None,
        x=home.x,
        y=home.y,
    )
    return dataclasses.replace(view, **changes)


def _refs(verdict: Verdict) -> tuple[str, str, dict[str, str]]:
    assert verdict.kind == "reject" and verdict.error is not None
    return verdict.error.error_type, verdict.error.level, dict(verdict.error.references)


def _link(config: LineConfig) -> Link:
    return Link(config, ManualClock())


# --- 6.6.1 / 6.6.2: acceptance of new orders (check_order) -------------------------------------


def test_6_6_1_first_node_must_be_trivially_reachable(reference_line: LineConfig) -> None:
    """6.6.1: "The first node of an order shall be trivially reachable for the AGV. This means
    either that the AGV is already standing on the node, or that the AGV is in the node's
    deviation range." """
    link = _link(reference_line)
    view = _view(reference_line, order_id="")
    assert check_order(link.order("o2", ["P2", "G10"]), view).kind == "new"
    far = link.order("o3", ["G10", "G11"])
    assert _refs(check_order(far, view)) == (
        "noRouteError",
        "WARNING",
        {"orderId": "o3", "nodeId": "G10", "orderUpdateId": "0"},
    )


def test_6_6_2_new_order_is_rejected_while_the_vehicle_is_executing(
    reference_line: LineConfig,
) -> None:
    """6.6.2, figure 8 step 3: "is vehicle still executing an order or waiting for an update?
    Are nodeStates not empty or are actionStates containing states which are neither 'FAILED'
    nor 'FINISHED'?" """
    link = _link(reference_line)
    new = link.order("o2", ["P2", "G10"])
    busy = _view(reference_line, executing=True, decision_point=("G11", 4))
    assert _refs(check_order(new, busy)) == (
        "orderError",
        "WARNING",
        {"orderId": "o2", "orderUpdateId": "0"},
    )
    assert check_order(new, _view(reference_line)).kind == "new"


def test_6_6_3_1_new_order_may_start_at_a_temporary_node_or_a_wide_deviation_range(
    reference_line: LineConfig,
) -> None:
    """6.6.3.1: "In case of an AGV that can stop in between nodes ... The AGV shall accept both
    methods": a temporary first node where it stands, or the last traversed node with a
    deviation range large enough to hold the AGV."""
    link = _link(reference_line)
    between = _view(reference_line, order_id="", x=4.0, y=-1.0)  # halfway from P2 to G10
    temporary = link.order("o2", ["P2", "G10"])
    temporary["nodes"][0].update(
        nodeId="here", nodePosition={**temporary["nodes"][0]["nodePosition"], "y": -1.0}
    )
    temporary["edges"][0]["startNodeId"] = "here"
    assert check_order(_valid("order", temporary), between).kind == "new"
    narrow = link.order("o3", ["G10", "G11"])  # G10 is 1 m away
    assert _refs(check_order(narrow, between))[0] == "noRouteError"
    wide = link.order("o4", ["G10", "G11"])
    wide["nodes"][0]["nodePosition"]["allowedDeviationXY"] = 1.5
    assert check_order(_valid("order", wide), between).kind == "new"


def test_6_6_1_released_node_after_the_horizon_is_rejected(reference_line: LineConfig) -> None:
    """6.6.1: "After an unreleased edge, no released nodes or edges can follow in the
    sequence." Such an order is malformed (6.6.4.1): "validationError"."""
    link = _link(reference_line)
    order = link.order("o2", ["P2", "G10", "G11"])
    order["nodes"][1]["released"] = False
    for edge in order["edges"]:
        edge["released"] = False
    verdict = check_order(_valid("order", order), _view(reference_line, order_id=""))
    assert _refs(verdict) == (
        "validationError",
        "WARNING",
        {"orderId": "o2", "nodeId": "G11", "orderUpdateId": "0"},
    )


# --- 6.6.2: order updates (check_order) --------------------------------------------------------


def test_6_6_2_update_must_start_at_the_last_base_node(reference_line: LineConfig) -> None:
    """6.6.2, figure 8 step 7: "the order update is only accepted if the first node of the new
    base is equal to the last node of the previous base" (nodeId and sequenceId)."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    driving = _view(reference_line, executing=True, decision_point=("G11", 4))
    good = link.update("o1", ["G12"])
    assert good["nodes"][0] == first["nodes"][-1]
    assert check_order(good, driving).kind == "update"
    from_here = link.update("o1", ["G10"], stitch=first["nodes"][0], update_id=1)
    assert _refs(check_order(from_here, driving)) == (
        "orderUpdateError",
        "WARNING",
        {"orderId": "o1", "nodeId": "P2", "orderUpdateId": "1"},
    )
    later_pass = {**first["nodes"][-1], "sequenceId": 8}  # G11 again, as in a loop
    looped = link.update("o1", ["G12"], stitch=later_pass, update_id=1)
    assert _refs(check_order(looped, driving))[:2] == ("orderUpdateError", "WARNING")


def test_6_6_2_update_of_a_completed_order_continues_from_the_last_traversed_node(
    reference_line: LineConfig,
) -> None:
    """6.6.2, figure 8 step 8: "the first node of the new base needs to match the vehicle's
    lastNodeId as well as lastNodeSequenceId"."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    done = _view(reference_line, last_node_id="G11", last_node_sequence_id=4)
    assert check_order(link.update("o1", ["G12"]), done).kind == "update"
    other_pass = {**first["nodes"][-1], "sequenceId": 0}
    stale = link.update("o1", ["G12"], stitch=other_pass, update_id=1)
    assert _refs(check_order(stale, done))[:2] == ("orderUpdateError", "WARNING")


def test_6_6_4_3_lower_order_update_id_is_rejected(reference_line: LineConfig) -> None:
    """6.6.4.3: "The vehicle reports the warning 'orderUpdateError'"; 7.1: the error references
    hold "orderId and orderUpdateId if error was caused by an order update"."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    view = _view(reference_line, order_update_id=2, executing=True, decision_point=("G11", 4))
    old = link.update("o1", ["G12"], stitch=first["nodes"][-1], update_id=1)
    assert _refs(check_order(old, view)) == (
        "orderUpdateError",
        "WARNING",
        {"orderId": "o1", "orderUpdateId": "1"},
    )


def test_6_6_4_3_same_update_id_is_ignored(reference_line: LineConfig) -> None:
    """6.6.4.3: "If the AGV receives an order with the same orderId and orderUpdateId twice,
    the second order will be ignored." """
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    view = _view(reference_line, order_update_id=1, executing=True, decision_point=("G12", 6))
    # the resent update 1 stitches on G11, which is no longer the decision point: still ignored
    again = link.update("o1", ["G12"], stitch=first["nodes"][-1], update_id=1)
    assert check_order(again, view) == Verdict("duplicate")


# --- 6.6.2 / 6.10.2: the simulated robot driving base and horizon ------------------------------


async def test_6_6_2_vehicle_stops_at_the_decision_point_until_the_base_is_extended(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2: "The AGV shall stop at the decision point if no further nodes and edges are added
    to the base." 6.10.2: traversal removes the node from nodeStates and sets lastNodeId."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], horizon=1))
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["lastNodeSequenceId"], state["driving"]) == (
            "G10",
            2,
            False,
        )
        assert link.nodes() == [("G11", 4, False)]
        assert [(e["edgeId"], e["released"]) for e in state["edgeStates"]] == [("G10-G11-3", False)]
        assert link.robot.executing()
        link.robot.handle_order(link.update("o1", ["G11"]))
        assert link.nodes() == [("G11", 4, True)]
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["lastNodeSequenceId"], state["orderUpdateId"]) == (
            "G11",
            4,
            1,
        )
        assert state["nodeStates"] == [] and state["edgeStates"] == []


async def test_6_6_2_horizon_is_replaced_by_update(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2: "Master control has the option to make changes to the horizon by sending entirely
    different nodes as the new base." """
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11", "G12"], horizon=2))
        await manual_clock.advance(LONG)
        link.robot.handle_order(link.update("o1", ["G20"]))
        assert link.nodes() == [("G20", 4, True)]
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.last_node_seq) == ("G20", 4)
        assert "node G11" not in link.visited and link.visited[-1] == "node G20"
        assert not link.robot.executing()


async def test_6_6_2_replaced_horizon_leaves_no_waiting_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2, figure 8 step 3: "Nodes and edges and the corresponding action states of the order
    horizon are also included inside the state"; once the horizon is replaced and the new base
    done, the vehicle is no longer executing and takes a new order."""
    async with running(reference_line, manual_clock) as link:
        planned = {"G11": [_pick("o1-pick")]}
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], planned, horizon=1))
        await manual_clock.advance(LONG)
        link.robot.handle_order(link.update("o1", ["G20"]))
        await manual_clock.advance(LONG)
        assert link.robot.last_node_id == "G20"
        statuses = [a["actionStatus"] for a in link.state()["actionStates"]]
        assert all(s in ("FINISHED", "FAILED") for s in statuses), statuses
        link.robot.handle_order(link.order("o2", ["G20", "G10"]))
        assert link.robot.order_id == "o2" and link.errors() == []


async def test_6_6_2_stitching_node_keeps_the_content_of_the_first_order(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2: "It is important, that the contents of the stitching node ... are not changed.
    For actions, deviation range, etc., the AGV shall use the instructions provided in the first
    order." """
    async with running(reference_line, manual_clock) as link:
        first = link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]})
        link.robot.handle_order(first)
        await _until(manual_clock, lambda: link.robot.driving)
        changed = {
            **first["nodes"][-1],
            "actions": [dict(first["nodes"][-1]["actions"][0], actionId="other")],
        }
        link.robot.handle_order(
            link.update("o1", ["G12"], {"G12": [_drop("o1-drop")]}, stitch=changed, update_id=1)
        )
        assert link.robot.order_update_id == 1 and link.errors() == []
        await manual_clock.advance(LONG)
        assert {a: s.status for a, s in link.robot.actions.items()} == {
            "o1-pick": "FINISHED",
            "o1-drop": "FINISHED",
        }
        assert link.robot.last_node_id == "G12"


async def test_6_6_4_3_vehicle_keeps_and_continues_the_previous_order(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.3: "Vehicle keeps the previous order in its buffer ... The vehicle continues with
    executing the previous order." """
    async with running(reference_line, manual_clock) as link:
        first = link.order("o1", ["P2", "G10", "G11"])
        link.robot.handle_order(first)
        link.robot.handle_order(link.update("o1", ["G12"]))
        link.robot.handle_order(link.update("o1", ["G11"], stitch=first["nodes"][1], update_id=0))
        assert link.errors() == [
            ("orderUpdateError", "WARNING", [("orderId", "o1"), ("orderUpdateId", "0")])
        ]
        assert (link.robot.order_id, link.robot.order_update_id) == ("o1", 1)
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.last_node_seq) == ("G12", 6)


async def test_6_6_4_3_resent_update_changes_nothing(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.3: "If the AGV receives an order with the same orderId and orderUpdateId twice, the
    second order will be ignored." (Master control resends when the state came too late.)"""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10"]))
        update = link.update("o1", ["G11"], {"G11": [_pick("o1-pick")]})
        link.robot.handle_order(update)
        await manual_clock.advance(LONG)
        assert link.status("o1-pick") == "FINISHED" and not link.robot.executing()
        link.robot.handle_order(update)  # arrives again after the work is done
        assert link.status("o1-pick") == "FINISHED" and not link.robot.executing()
        assert link.nodes() == [] and link.errors() == []


async def test_6_6_2_update_after_the_order_finished_drives_on(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.2, figure 8 step 8: "The order update is now accepted if it continues from the last
    traversed node" - the same orderId with a higher orderUpdateId after the order finished."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10"]))
        await manual_clock.advance(LONG)
        events = link.report()
        assert [type(e) for e in events] == [RobotOrderFinished]
        link.robot.handle_order(link.update("o1", ["G11"], {"G11": [_pick("o1-pick")]}))
        assert link.nodes() == [("G11", 4, True)]
        assert not link.tracker.confirmed("o1")
        link.report()
        assert link.tracker.confirmed("o1")
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFinished, "o1-pick"),
            (RobotOrderFinished, None),
        ]


# --- 6.6.3: cancellation ----------------------------------------------------------------------


async def test_6_6_3_cancel_order_fails_waiting_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: "After receiving the instantAction cancelOrder, the vehicle stops ... If there are
    actions scheduled, these actions shall be cancelled and report 'FAILED' ... The orderId and
    orderUpdateId are kept." """
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
        link.robot.handle_order(link.update("o1", ["G12"], {"G12": [_drop("o1-drop")]}))
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["driving"]) == ("G10", False)  # stops on the next node
        assert (state["orderId"], state["orderUpdateId"]) == ("o1", 1)
        assert state["nodeStates"] == [] and state["edgeStates"] == []
        assert {a["actionId"]: a["actionStatus"] for a in state["actionStates"]} == {
            "o1-pick": "FAILED",
            "o1-drop": "FAILED",
            "c1": "FINISHED",
        }
        assert link.robot.loads == {}


async def test_6_6_3_cancel_order_runs_until_the_running_action_ends(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: "While actions are running, the cancelOrder action shall report 'RUNNING', until
    all actions are cancelled/finished. After all movement of the vehicle and all of its actions
    are stopped, the cancelOrder action status shall report 'FINISHED'." """
    async with running(reference_line, manual_clock) as link:
        at_g10 = {"G10": [_pick("o1-pick"), _drop("o1-drop")]}
        link.robot.handle_order(link.order("o1", ["P2", "G10"], at_g10))
        await _until(manual_clock, lambda: link.status("o1-pick") == "RUNNING")
        link.cancel("c1")
        assert (link.status("c1"), link.status("o1-drop")) == ("RUNNING", "WAITING")
        await manual_clock.advance(LONG)
        assert {a: s.status for a, s in link.robot.actions.items()} == {
            "o1-pick": "FINISHED",  # picking cannot be interrupted: it reports how it ended
            "o1-drop": "FAILED",
            "c1": "FINISHED",
        }


async def test_6_6_3_cancel_while_waiting_for_the_horizon_clears_it(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3 with 6.6.2 step 3: a vehicle holding a horizon is "waiting for an update and
    executing an order"; cancelOrder ends that order at once, horizon included."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], horizon=1))
        await manual_clock.advance(LONG)
        assert link.nodes() == [("G11", 4, False)]
        link.cancel("c1")
        assert link.status("c1") == "FINISHED"
        assert link.nodes() == [] and not link.robot.executing()


async def test_6_6_3_1_new_order_after_cancellation_starts_where_the_vehicle_stands(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3.1: "After the cancellation of an order, the vehicle shall be in a state to receive
    a new order ... the new order has to begin on the node the AGV is now standing on." """
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"]))
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        assert link.robot.last_node_id == "G10"
        link.robot.handle_order(link.order("o2", ["P2", "G10"]))  # where o1 started
        assert link.robot.order_id == "o1"
        assert [e[0] for e in link.errors()] == ["noRouteError"]
        link.robot.handle_order(link.order("o3", ["G10", "G20"]))
        assert (link.robot.order_id, link.robot.order_update_id) == ("o3", 0)
        assert link.errors() == []  # accepting a new order ends the rejection warning
        await manual_clock.advance(LONG)
        assert link.robot.last_node_id == "G20"


async def test_6_6_3_2_cancel_without_order_reports_noOrderToCancel(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3.2: "If the AGV receives a cancelOrder action but, the AGV currently has no order,
    or the previous order was canceled, the cancelOrder action shall be reported as 'FAILED'.
    The AGV shall report a 'noOrderToCancel' error with the errorLevel set to 'WARNING'. The
    actionId of the instantAction shall be passed as an errorReference." """
    async with running(reference_line, manual_clock) as link:
        link.cancel("c0")  # no order yet
        assert link.status("c0") == "FAILED"
        assert link.errors() == [("noOrderToCancel", "WARNING", [("actionId", "c0")])]
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"]))
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        assert link.status("c1") == "FINISHED"
        link.cancel("c2")  # the previous order was cancelled
        assert link.status("c2") == "FAILED"
        assert link.errors() == [("noOrderToCancel", "WARNING", [("actionId", "c2")])]


async def test_6_6_3_cancelled_order_ends_in_the_tracker_with_its_actions_failed(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: scheduled actions "report 'FAILED' in their actionState" and cancelOrder
    "FINISHED": master control reads that as the actions failed and the order over."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
        link.report()
        await _until(manual_clock, lambda: link.robot.driving)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e).__name__, getattr(e, "action_id", None)) for e in events] == [
            ("RobotActionFailed", "o1-pick"),
            ("RobotOrderFinished", None),
            ("RobotActionFinished", "c1"),
        ]
        failed = events[0]
        assert isinstance(failed, RobotActionFailed) and failed.reason == "order cancelled"


# --- 6.6.4: rejection as master control sees it ------------------------------------------------


async def test_6_6_4_2_update_the_vehicle_cannot_perform_fails_only_its_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.2: "Vehicle does NOT take over the new order ... reports the warning 'orderError'
    with the wrong fields as error references"; master control fails the update's actions and
    follows the order as it was, to its end."""
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
        link.report()
        lift = RobotAction("o1-lift", "lift", "HARD")
        link.robot.handle_order(link.update("o1", ["G12"], {"G12": [lift]}))
        assert link.errors() == [
            (
                "orderError",
                "WARNING",
                [("orderId", "o1"), ("actionId", "o1-lift"), ("orderUpdateId", "1")],
            )
        ]
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFailed, "o1-lift")
        ]
        assert link.tracker.confirmed("o1")
        assert link.tracker.base is not None and link.tracker.base.node["nodeId"] == "G11"
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFinished, "o1-pick"),
            (RobotOrderFinished, None),
        ]


async def test_6_6_4_3_rejection_naming_an_older_update_does_not_reject_the_newest(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.3: a late resend with a lower orderUpdateId draws an "orderUpdateError" while the
    vehicle "continues with executing the previous order"; 7.1 names the orderUpdateId it was
    about, so master control does not take it as the rejection of the update it sent since."""
    async with running(reference_line, manual_clock) as link:
        first = link.order("o1", ["P2", "G10", "G11"])
        link.robot.handle_order(first)
        link.report()
        link.robot.handle_order(link.update("o1", ["G12"]))
        link.report()
        assert link.tracker.confirmed("o1")
        link.robot.handle_order(first)  # the first order, resent, arrives late
        assert [e[0] for e in link.errors()] == ["orderUpdateError"]
        second = link.update("o1", ["G13"], {"G13": [_pick("o1-pick")]})  # still on its way
        events = link.report()
        assert not [e for e in events if isinstance(e, RobotActionFailed)]
        assert not link.tracker.confirmed("o1")
        link.robot.handle_order(second)
        link.report()
        assert link.tracker.confirmed("o1") and link.errors() == []
        await manual_clock.advance(LONG)
        assert [(type(e), getattr(e, "action_id", None)) for e in link.report()] == [
            (RobotActionFinished, "o1-pick"),
            (RobotOrderFinished, None),
        ]


def _rejected_update_then_retry(link: Link) -> JsonDict:
    """Order o1 to G11 with a pick; update 1 asks for a lift the robot cannot do and is
    rejected; master control sends update 1 again, now with a drop."""
    link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"], {"G11": [_pick("o1-pick")]}))
    link.report()
    link.robot.handle_order(link.update("o1", ["G12"], {"G12": [RobotAction("o1-lift", "lift")]}))
    link.report()
    base = link.tracker.base
    assert base is not None and base.update_id == 0
    return link.update("o1", ["G12"], {"G12": [_drop("o1-drop")]})


async def test_6_6_4_2_standing_rejection_warning_does_not_reject_the_retried_update(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.4.2: "The warning shall be reported until the vehicle has accepted a new order", so
    states sent before the retried update arrives still carry the old warning; it must not
    fail the retried update's actions."""
    async with running(reference_line, manual_clock) as link:
        retry = _rejected_update_then_retry(link)
        events = link.report()  # the robot has not received the retry yet
        assert not [e for e in events if isinstance(e, RobotActionFailed)]
        link.robot.handle_order(retry)
        link.report()
        assert link.tracker.confirmed("o1")
        await manual_clock.advance(LONG)
        events = link.report()
        assert [(type(e), getattr(e, "action_id", None)) for e in events] == [
            (RobotActionFinished, "o1-pick"),
            (RobotActionFinished, "o1-drop"),
            (RobotOrderFinished, None),
        ]

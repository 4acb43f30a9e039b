"""What the VDA 5050 2.1 order tests (``test_vda5050_spec_orders_*``) share: the simulated
robot R02 (a 2.1 robot, home P2) wired to master control's :class:`RobotTracker` without a broker
in between, a manual clock to drive it, and the view :func:`check_order` judges orders against.

Every order, instant action and state message built here is validated against the 2.1 schema
before it is used; horizons are made by clearing ``released`` on the tail of a built order.

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

from devices.base import DeviceEvent, RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.vda5050 import schema
from devices.vda5050.messages import MessageBuilder
from devices.vda5050.tracker import RobotTracker
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from simulators.robots.acceptance import RobotView, Verdict
from simulators.robots.capabilities import capabilities
from simulators.robots.collisions import Place
from simulators.robots.vehicle import SimulatedRobot

JsonDict = dict[str, Any]
SERIAL = "R02"
VERSION = "2.1.0"
LONG = 60.0  # line seconds: more than any trip here needs


# the parameters of picker-s's pick and drop templates in the reference line
PICK_TEMPLATE = (("stationType", "shelf"), ("loadType", "tote"), ("lhd", "lhd1"))
DROP_TEMPLATE = (("stationType", "conveyor"), ("loadType", "tote"), ("lhd", "lhd1"))


def _pick(action_id: str, load_id: str = "T1") -> RobotAction:
    return RobotAction(action_id, "pick", "HARD", (*PICK_TEMPLATE, ("loadId", load_id)))


def _drop(action_id: str, load_id: str = "T1") -> RobotAction:
    return RobotAction(action_id, "drop", "HARD", (*DROP_TEMPLATE, ("loadId", load_id)))


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
        capabilities=capabilities(config.robot_model(SERIAL)),
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

"""The behaviour of one simulated picking robot: taking orders, driving, pick/drop, instant
actions. No MQTT here: :mod:`simulators.robots.peer` carries the messages, this module decides
what they mean and keeps the state the robot reports.

The robot drives node to node in line time (``length / min(model speed, edge maxSpeed)`` per
edge), updating ``lastNodeId``/``lastNodeSequenceId``, ``nodeStates``/``edgeStates`` and its pose
as it goes, and runs each node's actions in order with the duration of the model's action
template (WAITING -> RUNNING -> FINISHED). ``changed`` is set whenever something the state
message reports has changed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from controller.clock import Clock
from controller.config.model import LineConfig, Robot, RobotModel
from devices.vda5050.messages import (
    ActionState,
    EdgeState,
    ErrorEntry,
    Load,
    NodeState,
    Pose,
    StateBody,
    heading,
)
from simulators.robots.acceptance import RobotView, check_order

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
DropHook = Callable[[str, str, str | None], Awaitable[None]]
TERMINAL = frozenset({"FINISHED", "FAILED"})
DRIVE_STEP = 0.5  # line seconds between pose updates while driving
DRAIN_PER_SECOND = 0.005  # battery percent per line second
ORDER_WARNINGS = frozenset(
    {"validationError", "orderError", "noRouteError", "orderUpdateError", "noOrderToCancel"}
)


class SimulatedRobot:
    """One robot's state and behaviour."""

    def __init__(
        self, config: LineConfig, robot: Robot, clock: Clock, on_drop: DropHook | None = None
    ) -> None:
        self.config = config
        self.robot = robot
        self.model: RobotModel = config.robots.models[robot.model]
        self.clock = clock
        self._on_drop = on_drop
        home = config.node(robot.home)
        self.map_id = config.node_map_id(home)
        self.x, self.y, self.theta = home.x, home.y, 0.0
        self.order_id = ""
        self.order_update_id = 0
        self.last_node_id = robot.home
        self.last_node_seq = 0
        self.nodes: deque[JsonDict] = deque()
        self.edges: deque[JsonDict] = deque()
        self.actions: dict[str, ActionState] = {}
        self.errors: list[ErrorEntry] = []
        self.loads: dict[str, Load] = {}
        self.driving = False
        self.paused = False
        self.battery = 100.0
        self.charging = False
        self.velocity = 0.0
        self.changed = asyncio.Event()
        self.factsheet_requested = asyncio.Event()
        self._work = asyncio.Event()
        self._unpaused = asyncio.Event()
        self._unpaused.set()
        self._cancel_action_id: str | None = None
        self._busy = False
        self._fail_next = False

    @property
    def serial(self) -> str:
        return self.robot.serial

    # --- what the robot reports -------------------------------------------------------------

    def pose(self) -> Pose:
        return Pose(self.x, self.y, self.theta, self.map_id)

    def velocity_vector(self) -> tuple[float, float, float]:
        return (self.velocity * math.cos(self.theta), self.velocity * math.sin(self.theta), 0.0)

    def state_body(self) -> StateBody:
        return StateBody(
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_seq,
            node_states=[self._node_state(n) for n in self.nodes],
            edge_states=[
                EdgeState(e["edgeId"], e["sequenceId"], e["released"]) for e in self.edges
            ],
            action_states=list(self.actions.values()),
            driving=self.driving,
            paused=self.paused,
            pose=self.pose(),
            velocity=self.velocity_vector(),
            loads=list(self.loads.values()),
            battery_charge=round(self.battery, 3),
            charging=self.charging,
            errors=list(self.errors),
            map_ids=(self.map_id,),
        )

    @staticmethod
    def _node_state(node: JsonDict) -> NodeState:
        pos = node.get("nodePosition")
        if pos is None:
            return NodeState(node["nodeId"], node["sequenceId"], node["released"])
        return NodeState(
            node["nodeId"], node["sequenceId"], node["released"], pos["x"], pos["y"], pos["mapId"]
        )

    def _touch(self) -> None:
        self.changed.set()

    def executing(self) -> bool:
        return bool(self.nodes) or any(a.status not in TERMINAL for a in self.actions.values())

    def fail_next_action(self) -> None:
        """Scripting hook: the next action the robot starts fails."""
        self._fail_next = True

    # --- orders -----------------------------------------------------------------------------

    def _view(self) -> RobotView:
        released = [n for n in self.nodes if n["released"]]
        decision = (released[-1]["nodeId"], released[-1]["sequenceId"]) if released else None
        return RobotView(
            serial=self.serial,
            manufacturer=self.model.manufacturer,
            map_id=self.map_id,
            supported_node_actions=("pick", "drop"),
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            executing=self.executing(),
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_seq,
            decision_point=decision,
            x=self.x,
            y=self.y,
        )

    def reject(self, error: ErrorEntry) -> None:
        """Report a rejected order (spec 6.6.4) until a new order is accepted."""
        self.errors = [e for e in self.errors if e.error_type != error.error_type] + [error]
        log.info(
            "order rejected",
            extra={"serial": self.serial, "error_type": error.error_type, "why": error.description},
        )
        self._touch()

    def handle_order(self, order: JsonDict) -> None:
        """Take a schema-valid order (or reject it)."""
        verdict = check_order(order, self._view())
        if verdict.kind == "reject":
            assert verdict.error is not None
            self.reject(verdict.error)
            return
        if verdict.kind == "duplicate":
            return
        nodes: list[JsonDict] = order["nodes"]
        edges: list[JsonDict] = order["edges"]
        self.errors = [e for e in self.errors if e.error_type not in ORDER_WARNINGS]
        if verdict.kind == "new":
            self.order_id = order["orderId"]
            self.actions = {}
            self.nodes.clear()
            self.edges.clear()
            self._cancel_action_id = None
            new_nodes = nodes
        else:
            # order update (spec 6.6.2): the horizon is replaced; the stitching node keeps the
            # content of the first order, so only the nodes after it are appended
            while self.nodes and not self.nodes[-1]["released"]:
                self.nodes.pop()
            while self.edges and not self.edges[-1]["released"]:
                self.edges.pop()
            new_nodes = nodes[1:]
        self.order_update_id = order["orderUpdateId"]
        self.nodes.extend(new_nodes)
        self.edges.extend(edges)
        for node in new_nodes:
            for a in node["actions"]:
                self.actions[a["actionId"]] = ActionState(a["actionId"], a["actionType"], "WAITING")
        log.info(
            "order accepted",
            extra={
                "serial": self.serial,
                "order_id": self.order_id,
                "order_update_id": self.order_update_id,
                "nodes": len(nodes),
            },
        )
        self._work.set()
        self._touch()

    # --- instant actions --------------------------------------------------------------------

    def handle_instant_actions(self, message: JsonDict) -> None:
        for action in message["actions"]:
            action_id, kind = action["actionId"], action["actionType"]
            state = "FINISHED"
            result: str | None = None
            if kind == "cancelOrder":
                if not self.executing() or self._cancel_action_id is not None:
                    state, result = "FAILED", "no order to cancel"
                    self.errors.append(
                        ErrorEntry(
                            "noOrderToCancel",
                            "WARNING",
                            "cancelOrder received without an order",
                            (("actionId", action_id),),
                        )
                    )
                else:
                    state = "RUNNING"
                    self._cancel_action_id = action_id
                    self._unpaused.set()
                    self._work.set()
            elif kind == "factsheetRequest":
                self.factsheet_requested.set()
            elif kind == "stateRequest":
                pass
            elif kind in ("startPause", "stopPause"):
                self.paused = kind == "startPause"
                if self.paused:
                    self._unpaused.clear()
                else:
                    self._unpaused.set()
            elif kind in ("startCharging", "stopCharging"):
                self.charging = kind == "startCharging"
            else:
                state, result = "FAILED", f"instant action {kind!r} is not supported"
            self.actions[action_id] = ActionState(action_id, kind, state, result)  # type: ignore[arg-type]
        if self._cancel_action_id is not None and not self._busy:
            self._finish_cancel()
        self._touch()

    def _finish_cancel(self) -> None:
        cancel_id = self._cancel_action_id
        if cancel_id is None:
            return
        self.nodes.clear()
        self.edges.clear()
        for action_id, a in list(self.actions.items()):
            if a.status not in TERMINAL and action_id != cancel_id:
                self.actions[action_id] = ActionState(
                    action_id, a.action_type, "FAILED", "order cancelled"
                )
        self.actions[cancel_id] = ActionState(cancel_id, "cancelOrder", "FINISHED")
        self._cancel_action_id = None
        self.driving = False
        self.velocity = 0.0
        log.info("order cancelled", extra={"serial": self.serial, "order_id": self.order_id})
        self._touch()

    # --- execution --------------------------------------------------------------------------

    async def drive(self) -> None:
        """Execute released nodes and edges as they arrive; runs until cancelled."""
        while True:
            await self._work.wait()
            self._work.clear()
            self._busy = True
            try:
                while self._cancel_action_id is None and self.nodes and self.nodes[0]["released"]:
                    await self._unpaused.wait()
                    node = self.nodes[0]
                    edge = self.edges[0] if self.edges else None
                    if edge is not None and edge["sequenceId"] == node["sequenceId"] - 1:
                        await self._traverse(edge, node)
                    self._arrive(node)
                    await self._run_actions(node)
            finally:
                self._busy = False
            self._finish_cancel()

    def _target(self, node: JsonDict) -> tuple[float, float]:
        pos = node.get("nodePosition")
        if pos is not None:
            return float(pos["x"]), float(pos["y"])
        n = self.config.node(node["nodeId"])
        return n.x, n.y

    async def _traverse(self, edge: JsonDict, node: JsonDict) -> None:
        x0, y0 = self.x, self.y
        x1, y1 = self._target(node)
        length = float(edge.get("length") or math.hypot(x1 - x0, y1 - y0))
        speed = min(self.model.speed, float(edge.get("maxSpeed") or self.model.speed))
        duration = length / speed
        self.theta = heading(x0, y0, x1, y1, self.theta)
        self.driving, self.velocity = True, speed
        self._touch()
        elapsed = 0.0
        while elapsed < duration:
            if not self._unpaused.is_set():
                self.driving, self.velocity = False, 0.0
                self._touch()
                await self._unpaused.wait()
                self.driving, self.velocity = True, speed
                self._touch()
            step = min(DRIVE_STEP, duration - elapsed)
            await self.clock.sleep(step)
            elapsed += step
            f = elapsed / duration
            self.x, self.y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
            self.drain(step)
        self.x, self.y = x1, y1
        self.driving, self.velocity = False, 0.0

    def _arrive(self, node: JsonDict) -> None:
        """Traversal of ``node`` (spec 6.10.2): drop its state and the edge leading to it."""
        self.nodes.popleft()
        while self.edges and self.edges[0]["sequenceId"] < node["sequenceId"]:
            self.edges.popleft()
        self.last_node_id, self.last_node_seq = node["nodeId"], node["sequenceId"]
        if node.get("nodePosition") is None:
            self.x, self.y = self._target(node)
        self._touch()

    async def _run_actions(self, node: JsonDict) -> None:
        for action in node["actions"]:
            if self._cancel_action_id is not None:
                return
            await self._unpaused.wait()
            await self._run_action(node["nodeId"], action)

    async def _run_action(self, node_id: str, action: JsonDict) -> None:
        action_id, kind = action["actionId"], action["actionType"]
        params = {p["key"]: p["value"] for p in action.get("actionParameters", [])}
        self.actions[action_id] = ActionState(action_id, kind, "RUNNING")
        self._touch()
        template = self.model.pick if kind == "pick" else self.model.drop
        await self.clock.sleep(template.duration)
        failure: str | None
        if self._fail_next:
            self._fail_next, failure = False, "injected failure"
        else:
            failure = self._apply(kind, params)
        if failure is not None:
            self.actions[action_id] = ActionState(action_id, kind, "FAILED", failure)
            self.errors.append(
                ErrorEntry(f"{kind}Failed", "WARNING", failure, (("actionId", action_id),))
            )
        else:
            self.actions[action_id] = ActionState(action_id, kind, "FINISHED")
        self._touch()
        if kind == "drop" and failure is None and self._on_drop is not None:
            load_id = params.get("loadId")
            await self._on_drop(self.serial, node_id, None if load_id is None else str(load_id))

    def _apply(self, kind: str, params: dict[str, Any]) -> str | None:
        """The effect of pick or drop on the loads; a reason if it cannot be done."""
        load_id = params.get("loadId")
        if kind == "pick":
            if len(self.loads) >= self.model.tote_capacity:
                return "no free load position"
            key = str(load_id) if load_id is not None else f"load-{len(self.loads) + 1}"
            lhd = params.get("lhd")
            load_type = params.get("loadType")
            self.loads[key] = Load(
                key,
                None if load_type is None else str(load_type),
                None if lhd is None else str(lhd),
            )
            return None
        if load_id is None:
            if not self.loads:
                return "no load to drop"
            self.loads.pop(next(iter(self.loads)))
            return None
        if str(load_id) not in self.loads:
            return f"load {load_id!r} is not on the vehicle"
        del self.loads[str(load_id)]
        return None

    def drain(self, seconds: float) -> None:
        if self.charging:
            self.battery = min(100.0, self.battery + 10 * DRAIN_PER_SECOND * seconds)
        else:
            self.battery = max(0.0, self.battery - DRAIN_PER_SECOND * seconds)

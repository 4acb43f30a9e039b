"""The behaviour of one simulated picking robot: taking orders, driving, pick/drop, instant
actions and the operating mode. No MQTT here: :mod:`simulators.robots.peer` carries the
messages, this module decides what they mean; :mod:`simulators.robots.state` keeps what the
robot reports.

The robot drives node to node in line time (``length / min(model speed, edge maxSpeed)`` per
edge), updating ``lastNodeId``/``lastNodeSequenceId``, ``nodeStates``/``edgeStates`` and its pose
as it goes, and runs each node's actions in order with the duration of the model's action
template (WAITING -> RUNNING -> FINISHED). ``changed`` is set whenever something the state
message reports has changed.

The robot does not move while it is paused, while its vehicle controller is frozen, or while it
has a FATAL error (an injected one, or an empty battery); it stops where it is, mid-edge if need
be, and drives on once the cause is gone. ``startCharging`` works only on a charger node.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from devices.vda5050.messages import ActionState, heading
from simulators.robots.acceptance import (
    MASTER_CONTROLLED,
    RobotView,
    check_order,
    message_content,
)
from simulators.robots.action_rules import InstantCheck, check_instant_actions
from simulators.robots.collisions import Place
from simulators.robots.loads import apply_load_action
from simulators.robots.profile import StopOnCancel
from simulators.robots.state import INJECTED, OPERATING_MODES, TERMINAL, RobotState

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
DRIVE_STEP = 0.5  # line seconds between pose updates while driving
BATTERY_TICK = 1.0  # line seconds between battery updates while standing
ORDER_WARNINGS = frozenset(
    {
        "validationError",
        "orderError",
        "noRouteError",
        "orderUpdateError",
        "noOrderToCancel",
        "chargingError",
    }
)


class SimulatedRobot(RobotState):
    """One robot's behaviour on top of its :class:`RobotState`."""

    def set_operating_mode(self, mode: str) -> None:
        """Switch the operating mode (spec 6.10.6, table 1). Entering or leaving a mode in which
        master control is not in control clears the order, as the spec requires for MANUAL."""
        if mode not in OPERATING_MODES:
            raise ValueError(f"unknown operating mode {mode!r}; one of {sorted(OPERATING_MODES)}")
        was_controlled = self.operating_mode in MASTER_CONTROLLED
        self.operating_mode = mode
        log.info("operating mode changed", extra={"serial": self.serial, "mode": mode})
        if was_controlled != (mode in MASTER_CONTROLLED) and self.executing():
            self._abort_reason = f"operating mode changed to {mode}"
            self._wake.set()
            if not self._busy:
                self._finish_cancel()
        self._touch()

    # --- orders -----------------------------------------------------------------------------

    def _view(self) -> RobotView:
        released = [n for n in self.nodes if n["released"]]
        decision = (released[-1]["nodeId"], released[-1]["sequenceId"]) if released else None
        horizon = frozenset(
            a["actionId"] for n in self.nodes if not n["released"] for a in n["actions"]
        )
        return RobotView(
            serial=self.serial,
            manufacturer=self.model.manufacturer,
            map_id=self.map_id,
            capabilities=self.capabilities,
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            executing=self.executing(),
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_seq,
            decision_point=decision,
            x=self.x,
            y=self.y,
            theta=self.theta,
            operating_mode=self.operating_mode,
            charging=self.battery.charging,
            profile=self.profile,
            known_action_ids=frozenset(self.actions),
            horizon_action_ids=horizon,
            order_content=self.order_content,
            node_positions=self.node_positions,
        )

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
                for a in self.nodes.pop()["actions"]:
                    self.actions.pop(a["actionId"], None)  # sent again below if still planned
            while self.edges and not self.edges[-1]["released"]:
                self.edges.pop()
            new_nodes = nodes[1:]
        self.order_update_id = order["orderUpdateId"]
        self.order_content = message_content(order)
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
        """Take a schema-valid instantActions message (spec 6.9). The strict profile refuses
        the actions it cannot take, each with a ``validationError`` and no action state."""
        if self.profile.strict:
            check = check_instant_actions(message, self.capabilities, self.actions.keys())
        else:
            check = InstantCheck(tuple(message["actions"]))
        for error in check.rejected:
            self._reject_instant(error)
        for action in check.accepted:
            action_id, kind = action["actionId"], action["actionType"]
            state = "FINISHED"
            result: str | None = None
            if kind == "cancelOrder":
                if not self.executing() or self._cancel_action_id is not None:
                    state, result = "FAILED", "no order to cancel"
                    self._warn("noOrderToCancel", "cancelOrder without an order", action_id)
                else:
                    state = "RUNNING"
                    self._cancel_action_id = action_id
                    self._wake.set()
                    self._work.set()
            elif kind == "factsheetRequest":
                self.factsheet_requested.set()
            elif kind == "stateRequest":
                pass
            elif kind in ("startPause", "stopPause"):
                self.paused = kind == "startPause"
                self._wake.set()
            elif kind == "startCharging":
                result = self._start_charging()
                if result is not None:
                    state = "FAILED"
                    self._warn("chargingError", result, action_id)
            elif kind == "stopCharging":
                self.battery.charging = False
            else:
                state, result = "FAILED", f"instant action {kind!r} is not supported"
            self.actions[action_id] = ActionState(action_id, kind, state, result)  # type: ignore[arg-type]
        if self._cancel_action_id is not None and not self._busy:
            self._finish_cancel()
        self._touch()

    def _start_charging(self) -> str | None:
        """Start charging; why it cannot, if it cannot (spec 6.8, ``startCharging``)."""
        if self.last_node_id not in self.chargers or self.driving:
            return f"not on a charger (at {self.last_node_id})"
        if self.executing():
            return "vehicle is executing an order"
        self.battery.charging = True
        log.info("charging started", extra={"serial": self.serial, "node": self.last_node_id})
        return None

    def _finish_cancel(self) -> None:
        """Complete a cancelOrder, or clear the order on an operating mode change."""
        cancel_id, reason = self._cancel_action_id, self._abort_reason
        if cancel_id is None and reason is None:
            return
        self.nodes.clear()
        self.edges.clear()
        for action_id, a in list(self.actions.items()):
            if a.status not in TERMINAL and action_id != cancel_id:
                self.actions[action_id] = ActionState(
                    action_id, a.action_type, "FAILED", reason or "order cancelled"
                )
        if cancel_id is not None:
            self.actions[cancel_id] = ActionState(cancel_id, "cancelOrder", "FINISHED")
        self._cancel_action_id = self._abort_reason = None
        self.driving = False
        self.velocity = 0.0
        log.info(
            "order cleared",
            extra={"serial": self.serial, "order_id": self.order_id, "why": reason or "cancel"},
        )
        self._touch()

    # --- execution --------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive and keep the battery until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._drive(), name=f"robot[{self.serial}].drive")
            tg.create_task(self._keep_battery(), name=f"robot[{self.serial}].battery")

    async def _keep_battery(self) -> None:
        while True:
            await self.clock.sleep(BATTERY_TICK)
            if self.driving:
                continue  # driving drains in _traverse
            was_empty = self.battery.empty
            if self.battery.stand(BATTERY_TICK):
                log.info("charging finished: battery full", extra={"serial": self.serial})
                self._touch()
            if was_empty != self.battery.empty:
                self._wake.set()
                self._touch()

    def _blocked(self, *, moving: bool) -> bool:
        """Whether the robot must stand still. A pending cancel overrides a pause so that the
        robot reaches the node where the cancel completes."""
        if self.fatal() or self.frozen.active:
            return True
        return self.paused and not (moving and self._stopping())

    async def _hold(self, *, moving: bool) -> None:
        """Wait until the robot may move (or, standing on a node, until it is cancelled)."""
        while self._blocked(moving=moving):
            if not moving and self._stopping():
                return
            self._wake.clear()
            if self.frozen.active:
                await self.frozen.cleared()
            else:
                await self._wake.wait()

    async def _drive(self) -> None:
        """Execute released nodes and edges as they arrive."""
        while True:
            await self._work.wait()
            self._work.clear()
            self._busy = True
            try:
                while not self._stopping() and self.nodes and self.nodes[0]["released"]:
                    await self._hold(moving=False)
                    if self._stopping():
                        break
                    node = self.nodes[0]
                    edge = self.edges[0] if self.edges else None
                    if edge is not None and edge["sequenceId"] != node["sequenceId"] - 1:
                        edge = None  # the first node of an order: nothing to drive
                    if edge is not None and not await self._traverse(edge, node):
                        break  # stopped on the edge
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

    def _stops_on_edge(self) -> bool:
        return self._stopping() and self.profile.stop_on_cancel is StopOnCancel.IMMEDIATELY

    async def _traverse(self, edge: JsonDict, node: JsonDict) -> bool:
        """Drive ``edge`` to ``node``; False when the robot stopped on the edge (a cancel with
        ``stop_on_cancel: immediately``), where it stays with the last node it passed."""
        x0, y0 = self.x, self.y
        x1, y1 = self._target(node)
        length = float(edge.get("length") or math.hypot(x1 - x0, y1 - y0))
        speed = min(self.model.speed, float(edge.get("maxSpeed") or self.model.speed))
        duration = length / speed
        self.theta = heading(x0, y0, x1, y1, self.theta)
        self.driving, self.velocity = True, speed
        self._moved(Place.edge(edge["startNodeId"], edge["endNodeId"]))
        self._touch()
        elapsed = 0.0
        while elapsed < duration:
            if not self._stops_on_edge() and self._blocked(moving=True):
                self.driving, self.velocity = False, 0.0
                self._touch()
                await self._hold(moving=True)
                self.driving, self.velocity = True, speed
                self._touch()
            if self._stops_on_edge():
                self.driving, self.velocity = False, 0.0
                log.info(
                    "stopped between nodes",
                    extra={"serial": self.serial, "edge": edge["edgeId"], "x": self.x, "y": self.y},
                )
                self._touch()
                return False
            step = min(DRIVE_STEP, duration - elapsed)
            await self.clock.sleep(step)
            elapsed += step
            f = elapsed / duration
            self.x, self.y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
            self.battery.drive(step)
        self.x, self.y = x1, y1
        self.driving, self.velocity = False, 0.0
        return True

    def _arrive(self, node: JsonDict) -> None:
        """Traversal of ``node`` (spec 6.10.2): drop its state and the edge leading to it."""
        self.nodes.popleft()
        while self.edges and self.edges[0]["sequenceId"] < node["sequenceId"]:
            self.edges.popleft()
        self.last_node_id, self.last_node_seq = node["nodeId"], node["sequenceId"]
        if node.get("nodePosition") is None:
            self.x, self.y = self._target(node)
        self._moved(Place.node(node["nodeId"]))
        self._touch()

    async def _run_actions(self, node: JsonDict) -> None:
        for action in node["actions"]:
            await self._hold(moving=False)
            if self._stopping():
                return
            await self._run_action(node["nodeId"], action)

    def _injected_failure(self, kind: str) -> str | None:
        if self._fail_next:
            self._fail_next = False
            return INJECTED
        for i, (action_type, result) in enumerate(self._fail_types):
            if action_type == kind:
                del self._fail_types[i]
                return result
        return None

    async def _run_action(self, node_id: str, action: JsonDict) -> None:
        action_id, kind = action["actionId"], action["actionType"]
        params = {p["key"]: p["value"] for p in action.get("actionParameters", [])}
        self.actions[action_id] = ActionState(action_id, kind, "RUNNING")
        self._touch()
        template = self.model.pick if kind == "pick" else self.model.drop
        await self.clock.sleep(template.duration)
        failure = self._injected_failure(kind)
        if failure is None:
            failure = apply_load_action(self.loads, kind, params, self.model.tote_capacity)
        if failure is not None:
            self.actions[action_id] = ActionState(action_id, kind, "FAILED", failure)
            self._warn(f"{kind}Failed", failure, action_id)
        else:
            self.actions[action_id] = ActionState(action_id, kind, "FINISHED")
        self._touch()
        if kind == "drop" and failure is None and self._on_drop is not None:
            load_id = params.get("loadId")
            await self._on_drop(self.serial, node_id, None if load_id is None else str(load_id))

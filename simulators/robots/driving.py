"""How one simulated robot executes its order: driving node to node in line time, running each
node's actions, keeping its battery, and standing still while paused, frozen or in a FATAL
error (mid-edge if need be) until the cause is gone.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from devices.vda5050.messages import ActionState, heading
from simulators.robots.collisions import Place
from simulators.robots.loads import apply_load_action
from simulators.robots.orders import OrderIntake
from simulators.robots.profile import StopOnCancel
from simulators.robots.state import INJECTED, RobotState

log = logging.getLogger("simulators.robots.vehicle")  # the robot's behaviour logs under one name

JsonDict = dict[str, Any]
DRIVE_STEP = 0.5  # line seconds between pose updates while driving
BATTERY_TICK = 1.0  # line seconds between battery updates while standing


class Driver:
    """Executes the released part of a robot's order, as it arrives."""

    def __init__(self, state: RobotState, orders: OrderIntake) -> None:
        self.state = state
        self._orders = orders

    async def run(self) -> None:
        """Drive and keep the battery until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._drive(), name=f"robot[{self.state.serial}].drive")
            tg.create_task(self._keep_battery(), name=f"robot[{self.state.serial}].battery")

    async def _keep_battery(self) -> None:
        while True:
            await self.state.clock.sleep(BATTERY_TICK)
            if self.state.driving:
                continue  # driving drains in _traverse
            was_empty, level = self.state.battery.empty, self._battery_level()
            if self.state.battery.stand(BATTERY_TICK):
                log.info("charging finished: battery full", extra={"serial": self.state.serial})
                self.state.touch()
            if was_empty != self.state.battery.empty:
                self.state.wake.set()
            if level != self._battery_level():
                self.state.touch()

    def _battery_level(self) -> tuple[bool, bool]:
        """Low and empty: a change is a warning or an error coming or going, which the state
        reports at once (spec 6.10)."""
        return self.state.battery.low, self.state.battery.empty

    def _blocked(self, *, moving: bool) -> bool:
        """Whether the robot must stand still. A pending cancel overrides a pause so that the
        robot reaches the node where the cancel completes."""
        if self.state.fatal() or self.state.frozen.active:
            return True
        return self.state.paused and not (moving and self.state.stopping())

    async def _hold(self, *, moving: bool) -> None:
        """Wait until the robot may move (or, standing on a node, until it is cancelled)."""
        while self._blocked(moving=moving):
            if not moving and self.state.stopping():
                return
            self.state.wake.clear()
            if self.state.frozen.active:
                await self.state.frozen.cleared()
            else:
                await self.state.wake.wait()

    async def _drive(self) -> None:
        """Execute released nodes and edges as they arrive."""
        while True:
            await self.state.work.wait()
            self.state.work.clear()
            self.state.busy = True
            try:
                while (
                    not self.state.stopping()
                    and self.state.nodes
                    and self.state.nodes[0]["released"]
                ):
                    await self._hold(moving=False)
                    if self.state.stopping():
                        break
                    node = self.state.nodes[0]
                    edge = self.state.edges[0] if self.state.edges else None
                    if edge is not None and edge["sequenceId"] != node["sequenceId"] - 1:
                        edge = None  # the first node of an order: nothing to drive
                    if edge is not None and not await self._traverse(edge, node):
                        break  # stopped on the edge
                    self._arrive(node)
                    await self._run_actions(node)
            finally:
                self.state.busy = False
            self._orders.finish_cancel()

    def _target(self, node: JsonDict) -> tuple[float, float]:
        pos = node.get("nodePosition")
        if pos is not None:
            return float(pos["x"]), float(pos["y"])
        n = self.state.config.node(node["nodeId"])
        return n.x, n.y

    def _stops_on_edge(self) -> bool:
        return (
            self.state.stopping() and self.state.profile.stop_on_cancel is StopOnCancel.IMMEDIATELY
        )

    async def _traverse(self, edge: JsonDict, node: JsonDict) -> bool:
        """Drive ``edge`` to ``node``; False when the robot stopped on the edge (a cancel with
        ``stop_on_cancel: immediately``), where it stays with the last node it passed."""
        x0, y0 = self.state.x, self.state.y
        x1, y1 = self._target(node)
        length = float(edge.get("length") or math.hypot(x1 - x0, y1 - y0))
        speed = min(self.state.model.speed, float(edge.get("maxSpeed") or self.state.model.speed))
        duration = length / speed
        self.state.theta = heading(x0, y0, x1, y1, self.state.theta)
        self.state.driving, self.state.velocity = True, speed
        self.state.moved(Place.edge(edge["startNodeId"], edge["endNodeId"]))
        self.state.touch()
        elapsed = 0.0
        while elapsed < duration:
            if not self._stops_on_edge() and self._blocked(moving=True):
                self.state.driving, self.state.velocity = False, 0.0
                self.state.touch()
                await self._hold(moving=True)
                self.state.driving, self.state.velocity = True, speed
                self.state.touch()
            if self._stops_on_edge():
                self.state.driving, self.state.velocity = False, 0.0
                log.info(
                    "stopped between nodes",
                    extra={
                        "serial": self.state.serial,
                        "edge": edge["edgeId"],
                        "x": self.state.x,
                        "y": self.state.y,
                    },
                )
                self.state.touch()
                return False
            step = min(DRIVE_STEP, duration - elapsed)
            await self.state.clock.sleep(step)
            elapsed += step
            f = elapsed / duration
            self.state.x, self.state.y = x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
            level = self._battery_level()
            self.state.battery.drive(step)
            if level != self._battery_level():
                self.state.touch()
        self.state.x, self.state.y = x1, y1
        self.state.driving, self.state.velocity = False, 0.0
        return True

    def _arrive(self, node: JsonDict) -> None:
        """Traversal of ``node`` (spec 6.10.2): drop its state and the edge leading to it."""
        self.state.nodes.popleft()
        while self.state.edges and self.state.edges[0]["sequenceId"] < node["sequenceId"]:
            self.state.edges.popleft()
        self.state.last_node_id, self.state.last_node_seq = node["nodeId"], node["sequenceId"]
        if node.get("nodePosition") is None:
            self.state.x, self.state.y = self._target(node)
        self.state.moved(Place.node(node["nodeId"]))
        self.state.touch()

    async def _run_actions(self, node: JsonDict) -> None:
        for action in node["actions"]:
            await self._hold(moving=False)
            if self.state.stopping():
                return
            await self._run_action(node["nodeId"], action)

    def _injected_failure(self, kind: str) -> str | None:
        if self.state.fail_next:
            self.state.fail_next = False
            return INJECTED
        for i, (action_type, result) in enumerate(self.state.fail_types):
            if action_type == kind:
                del self.state.fail_types[i]
                return result
        return None

    async def _run_action(self, node_id: str, action: JsonDict) -> None:
        action_id, kind = action["actionId"], action["actionType"]
        params = {p["key"]: p["value"] for p in action.get("actionParameters", [])}
        self.state.actions[action_id] = ActionState(action_id, kind, "RUNNING")
        self.state.touch()
        template = self.state.model.pick if kind == "pick" else self.state.model.drop
        await self.state.clock.sleep(template.duration)
        failure = self._injected_failure(kind)
        if failure is None:
            failure = apply_load_action(
                self.state.loads, kind, params, self.state.model.tote_capacity
            )
        if failure is not None:
            self.state.actions[action_id] = ActionState(action_id, kind, "FAILED", failure)
            self.state.warn(f"{kind}Failed", failure, action_id)
        else:
            self.state.actions[action_id] = ActionState(action_id, kind, "FINISHED")
        self.state.touch()
        if kind == "drop" and failure is None and self.state.on_drop is not None:
            load_id = params.get("loadId")
            await self.state.on_drop(
                self.state.serial, node_id, None if load_id is None else str(load_id)
            )

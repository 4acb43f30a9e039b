"""Where the robots stand, as traffic control takes it from their state messages.

A robot is known to traffic control once it has reported a node (``lastNodeId``). Robots that
reached a node of their base free the nodes behind them. A robot driving on along its base frees
the node it last reached as soon as it reports a position ``robots.traffic.clearance`` metres
from it. One that reports a node held by another robot, or a node off its base, is logged and
kept where it was last known until its order ends.
"""

from __future__ import annotations

import logging
import math

from controller.robots.traffic.state import TrafficFleetState
from devices import base as dev
from routing import traffic

log = logging.getLogger("controller.robots.traffic.fleet")  # traffic control logs under one name


class RobotPositions:
    """Takes the robots' reported nodes into the planner's state."""

    def __init__(self, shared: TrafficFleetState) -> None:
        self.shared = shared

    def sync(self) -> bool:
        """Take the robots' reported nodes into the state; True if anything changed."""
        shared = self.shared
        changed = False
        known = set(shared.planner.serials())
        leaving: list[str] = []  # driven clear of their node: freed together, in one step
        reached: dict[str, str] = {}  # reached a node of their base: advanced together ...
        for serial, snap in shared.fleet.robot_positions().items():
            node = snap.last_node_id
            if not node or not shared.roadmap.has(node):
                continue
            if serial not in known:
                self._advance(reached)  # ... before a robot is placed, in the order reported
                changed |= self.place(serial, node)
                continue
            plan = shared.planner.robot(serial)
            if node == plan.node:
                if self._clear_of(plan, snap):
                    leaving.append(serial)
                continue
            if node in plan.route[1 : plan.released]:
                reached[serial] = node
                shared.logged.off_base.discard(serial)
                changed = True
            elif plan.idle and serial not in shared.jobs:
                self._advance(reached)
                changed |= self.place(serial, node)  # moved by hand while idle
            elif serial not in shared.logged.off_base:
                shared.logged.off_base.add(serial)
                log.error(
                    "robot reported a node off its released route",
                    extra={"robot": serial, "node": node, "base": list(plan.base)},
                )
        self._advance(reached)
        if leaving:
            shared.planner = traffic.advance(shared.planner, {}, left=leaving)
            changed = True
        return changed

    def _advance(self, reached: dict[str, str]) -> None:
        """Robots that reached a node of their base move on, in one planner step (each robot's
        step frees only its own nodes, so together they give what one by one would)."""
        if reached:
            self.shared.planner = traffic.advance(self.shared.planner, reached)
            reached.clear()

    def _clear_of(self, plan: traffic.RobotPlan, snap: dev.RobotPosition) -> bool:
        """The robot drives on along its base and reports a position ``clearance`` metres or
        more from the node it last reached (not yet freed)."""
        clearance = self.shared.settings.clearance
        if clearance is None or not plan.may_leave or not snap.driving:
            return False
        if snap.x is None or snap.y is None:
            return False
        node = self.shared.roadmap.node(plan.node)
        return math.hypot(snap.x - node.x, snap.y - node.y) >= clearance

    def place(self, serial: str, node: str) -> bool:
        """Put the robot on ``node`` with nothing else reserved for it; False (and logged once)
        when another robot holds that node."""
        shared = self.shared
        placed = traffic.place(shared.planner, serial, node)
        if isinstance(placed, traffic.Conflict):
            if serial not in shared.logged.conflicts:
                shared.logged.conflicts.add(serial)
                log.error(
                    "robot reports a node reserved for another robot; not used until it moves",
                    extra={"robot": serial, "node": node, "holder": placed.holder},
                )
            return False
        shared.logged.conflicts.discard(serial)
        shared.planner = placed
        return True

    def stay(self, serial: str) -> None:
        """The robot keeps only the node it stands on in the plan (its order did not go out)."""
        self.place(serial, self.shared.planner.robot(serial).node)

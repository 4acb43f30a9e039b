"""How one simulated robot takes what master control sends: orders and order updates (spec
6.6), instant actions (spec 6.9) and operating mode changes (spec 6.10.6). No MQTT here:
:mod:`simulators.robots.peer` carries the messages, this module decides what they mean.
"""

from __future__ import annotations

import logging
from typing import Any

from devices.vda5050.messages import ActionState
from simulators.robots.acceptance import (
    MASTER_CONTROLLED,
    RobotView,
    check_order,
    message_content,
)
from simulators.robots.action_rules import InstantCheck, check_instant_actions
from simulators.robots.state import OPERATING_MODES, TERMINAL, RobotState

log = logging.getLogger("simulators.robots.vehicle")  # the robot's behaviour logs under one name

JsonDict = dict[str, Any]
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


class OrderIntake:
    """Takes orders, instant actions and operating mode changes into a robot's state."""

    def __init__(self, state: RobotState) -> None:
        self.state = state

    def set_operating_mode(self, mode: str) -> None:
        """Switch the operating mode (spec 6.10.6, table 1). Entering or leaving a mode in which
        master control is not in control clears the order, as the spec requires for MANUAL."""
        if mode not in OPERATING_MODES:
            raise ValueError(f"unknown operating mode {mode!r}; one of {sorted(OPERATING_MODES)}")
        was_controlled = self.state.operating_mode in MASTER_CONTROLLED
        self.state.operating_mode = mode
        log.info("operating mode changed", extra={"serial": self.state.serial, "mode": mode})
        if was_controlled != (mode in MASTER_CONTROLLED) and self.state.executing():
            self.state.abort_reason = f"operating mode changed to {mode}"
            self.state.wake.set()
            if not self.state.busy:
                self.finish_cancel()
        self.state.touch()

    # --- orders -----------------------------------------------------------------------------

    def _view(self) -> RobotView:
        released = [n for n in self.state.nodes if n["released"]]
        decision = (released[-1]["nodeId"], released[-1]["sequenceId"]) if released else None
        horizon = frozenset(
            a["actionId"] for n in self.state.nodes if not n["released"] for a in n["actions"]
        )
        return RobotView(
            serial=self.state.serial,
            manufacturer=self.state.model.manufacturer,
            map_id=self.state.map_id,
            capabilities=self.state.capabilities,
            order_id=self.state.order_id,
            order_update_id=self.state.order_update_id,
            executing=self.state.executing(),
            last_node_id=self.state.last_node_id,
            last_node_sequence_id=self.state.last_node_seq,
            decision_point=decision,
            x=self.state.x,
            y=self.state.y,
            theta=self.state.theta,
            operating_mode=self.state.operating_mode,
            charging=self.state.battery.charging,
            profile=self.state.profile,
            known_action_ids=frozenset(self.state.actions),
            horizon_action_ids=horizon,
            order_content=self.state.order_content,
            node_positions=self.state.node_positions,
        )

    def handle_order(self, order: JsonDict) -> None:
        """Take a schema-valid order (or reject it)."""
        verdict = check_order(order, self._view())
        if verdict.kind == "reject":
            assert verdict.error is not None
            self.state.reject(verdict.error)
            return
        if verdict.kind == "duplicate":
            return
        nodes: list[JsonDict] = order["nodes"]
        edges: list[JsonDict] = order["edges"]
        self.state.errors = [e for e in self.state.errors if e.error_type not in ORDER_WARNINGS]
        if verdict.kind == "new":
            self.state.order_id = order["orderId"]
            self.state.actions = {}
            self.state.nodes.clear()
            self.state.edges.clear()
            self.state.cancel_action_id = None
            new_nodes = nodes
        else:
            # order update (spec 6.6.2): the horizon is replaced; the stitching node keeps the
            # content of the first order, so only the nodes after it are appended
            while self.state.nodes and not self.state.nodes[-1]["released"]:
                for a in self.state.nodes.pop()["actions"]:
                    self.state.actions.pop(a["actionId"], None)  # sent again below if still planned
            while self.state.edges and not self.state.edges[-1]["released"]:
                self.state.edges.pop()
            new_nodes = nodes[1:]
        self.state.order_update_id = order["orderUpdateId"]
        self.state.order_content = message_content(order)
        self.state.nodes.extend(new_nodes)
        self.state.edges.extend(edges)
        for node in new_nodes:
            for a in node["actions"]:
                self.state.actions[a["actionId"]] = ActionState(
                    a["actionId"], a["actionType"], "WAITING"
                )
        log.info(
            "order accepted",
            extra={
                "serial": self.state.serial,
                "order_id": self.state.order_id,
                "order_update_id": self.state.order_update_id,
                "nodes": len(nodes),
            },
        )
        self.state.work.set()
        self.state.touch()

    # --- instant actions --------------------------------------------------------------------

    def handle_instant_actions(self, message: JsonDict) -> None:
        """Take a schema-valid instantActions message (spec 6.9). The strict profile refuses
        the actions it cannot take, each with a ``validationError`` and no action state."""
        if self.state.profile.strict:
            check = check_instant_actions(
                message, self.state.capabilities, self.state.actions.keys()
            )
        else:
            check = InstantCheck(tuple(message["actions"]))
        for error in check.rejected:
            self.state.reject_instant(error)
        for action in check.accepted:
            action_id, kind = action["actionId"], action["actionType"]
            state = "FINISHED"
            result: str | None = None
            if kind == "cancelOrder":
                if not self.state.executing() or self.state.cancel_action_id is not None:
                    state, result = "FAILED", "no order to cancel"
                    self.state.warn("noOrderToCancel", "cancelOrder without an order", action_id)
                else:
                    state = "RUNNING"
                    self.state.cancel_action_id = action_id
                    self.state.wake.set()
                    self.state.work.set()
            elif kind == "factsheetRequest":
                self.state.factsheet_requested.set()
            elif kind == "stateRequest":
                pass
            elif kind in ("startPause", "stopPause"):
                self.state.paused = kind == "startPause"
                self.state.wake.set()
            elif kind == "startCharging":
                result = self._start_charging()
                if result is not None:
                    state = "FAILED"
                    self.state.warn("chargingError", result, action_id)
            elif kind == "stopCharging":
                self.state.battery.charging = False
            else:
                state, result = "FAILED", f"instant action {kind!r} is not supported"
            self.state.actions[action_id] = ActionState(action_id, kind, state, result)  # type: ignore[arg-type]
        if self.state.cancel_action_id is not None and not self.state.busy:
            self.finish_cancel()
        self.state.touch()

    def _start_charging(self) -> str | None:
        """Start charging; why it cannot, if it cannot (spec 6.8, ``startCharging``)."""
        if self.state.last_node_id not in self.state.chargers or self.state.driving:
            return f"not on a charger (at {self.state.last_node_id})"
        if self.state.executing():
            return "vehicle is executing an order"
        self.state.battery.charging = True
        log.info(
            "charging started", extra={"serial": self.state.serial, "node": self.state.last_node_id}
        )
        return None

    def finish_cancel(self) -> None:
        """Complete a cancelOrder, or clear the order on an operating mode change."""
        cancel_id, reason = self.state.cancel_action_id, self.state.abort_reason
        if cancel_id is None and reason is None:
            return
        self.state.nodes.clear()
        self.state.edges.clear()
        for action_id, a in list(self.state.actions.items()):
            if a.status not in TERMINAL and action_id != cancel_id:
                self.state.actions[action_id] = ActionState(
                    action_id, a.action_type, "FAILED", reason or "order cancelled"
                )
        if cancel_id is not None:
            self.state.actions[cancel_id] = ActionState(cancel_id, "cancelOrder", "FINISHED")
        self.state.cancel_action_id = self.state.abort_reason = None
        self.state.driving = False
        self.state.velocity = 0.0
        log.info(
            "order cleared",
            extra={
                "serial": self.state.serial,
                "order_id": self.state.order_id,
                "why": reason or "cancel",
            },
        )
        self.state.touch()

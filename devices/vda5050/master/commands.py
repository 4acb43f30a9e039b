"""What VDA 5050 master control commands robots to do: orders, order updates, instant actions
and cancelling.

Every new order passes one choke point, :meth:`RobotCommands.send_order`: it is refused with
:class:`~devices.errors.OrderRefused` (a typed reason, counted in
``linectl_robot_orders_refused_total``) when the robot needs an operator, is backing off after
a rejection, has had ``robots.max_orders_per_minute`` new orders in the last line minute, or
when the order does not start at the robot's ``lastNodeId``. The first node carries the robot
model's ``allowedDeviationXY``/``allowedDeviationTheta``. An order or update is validated and
posted (queued for the broker client without waiting for it to be written: a traffic round
sends all its updates without waiting in between) and resent until the robot's state shows it;
its ``orderUpdateId`` is counted by the robot's tracker.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.errors import CommandRejected, DeviceUnavailable, OrderRefused, Refusal
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.pending import PendingOrders
from devices.vda5050.master.state import MasterState
from devices.vda5050.tracker import RobotTracker

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name


class RobotCommands:
    """What the controller commands robots to do, checked and published."""

    def __init__(self, state: MasterState, output: MasterOutput, pending: PendingOrders) -> None:
        self._state = state
        self._output = output
        self._pending = pending

    async def send_order(self, serial: str, order: RobotOrder) -> None:
        """Publish ``order`` to ``serial``; it is resent until the robot's state shows it.

        Raises OrderRefused when it may not go out now (see the module docstring),
        DeviceUnavailable when the robot or the broker cannot be reached. It returns once the
        order is queued for the broker client; one lost on the way is resent."""
        tracker = self._state.tracker(serial)
        now = self._state.clock.now()
        attention = tracker.attention()
        if attention is not None:
            self._refuse(serial, Refusal.NEEDS_OPERATOR, attention)
        refusal = tracker.guard.refusal(now)
        if refusal is not None:
            self._refuse(serial, *refusal)
        available, reason = tracker.availability()
        if not available:
            raise DeviceUnavailable(f"robot {serial} is not available: {reason}")
        _check_base(order.nodes, order.edges, first_released=True)
        standing = (tracker.state or {}).get("lastNodeId") or None
        if standing is not None and order.nodes[0].node_id != standing:
            self._refuse(
                serial,
                Refusal.NOT_AT_START,
                f"the order starts at {order.nodes[0].node_id}, the robot stands at {standing}",
            )
        order = _from_where_it_stands(order, tracker)
        message = self._state.builders[serial].order(order)
        tracker.track_order(order, _last_released(message), message["headerId"])
        tracker.guard.sent(now)
        try:
            self._output.post(serial, "order", message)
        except BaseException:
            tracker.untrack(order.order_id)
            tracker.guard.unsent()
            raise
        self._pending.follow(serial, order.order_id, message)
        log.info("order sent", extra={"serial": serial, "order_id": order.order_id})

    def _refuse(self, serial: str, reason: Refusal, detail: str) -> None:
        self._state.metrics.robot_orders_refused.labels(reason.value).inc()
        raise OrderRefused(serial, reason, detail)

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[RouteNode],
        edges: Sequence[RouteEdge],
    ) -> int:
        """Extend order ``order_id`` of ``serial`` (spec 6.6.2) and return its orderUpdateId.

        ``nodes`` are the new nodes, ``edges`` lead from the last base node sent so far (the
        stitching node, resent unchanged) through them. Released nodes come first; the rest
        replaces the horizon sent before (an update may carry only a new horizon). Allowed
        once the state has shown the previous order or update, also after the order finished;
        raises CommandRejected when the update does not stitch on, DeviceUnavailable when it
        cannot be sent.
        """
        tracker = self._state.tracker(serial)
        base = tracker.base
        if base is None or base.order_id != order_id:
            raise CommandRejected(f"robot {serial} has no order {order_id!r} to update")
        if tracker.pending_update(order_id):
            raise CommandRejected(
                f"order {order_id!r} update {base.update_id} is not yet confirmed by {serial}"
            )
        path = [base.node["nodeId"], *(n.node_id for n in nodes)]
        if (
            not nodes
            or len(edges) != len(nodes)
            or any((e.start, e.end) != (path[i], path[i + 1]) for i, e in enumerate(edges))
        ):
            raise CommandRejected(
                f"an update of {order_id!r} needs one edge from {path[0]!r} to each new node"
            )
        _check_base(nodes, edges, first_released=False)
        available, reason = tracker.availability()
        if not available:
            raise DeviceUnavailable(f"robot {serial} is not available: {reason}")
        update_id = tracker.next_update_id(order_id)
        message = self._state.builders[serial].order_update(
            order_id, update_id, base.node, nodes, edges
        )
        tracker.track_update(
            order_id, update_id, nodes, _last_released(message), message["headerId"]
        )
        try:
            self._output.post(serial, "order", message)
        except BaseException:
            tracker.untrack_update(order_id)
            raise
        self._pending.follow(serial, order_id, message)
        log.info(
            "order update sent",
            extra={"serial": serial, "order_id": order_id, "order_update_id": update_id},
        )
        return update_id

    async def send_instant_actions(self, serial: str, actions: Sequence[RobotAction]) -> None:
        """Publish instant actions (``cancelOrder``, ``startPause``, ...) to ``serial``; their
        outcome arrives as RobotActionFinished / RobotActionFailed events."""
        tracker = self._state.tracker(serial)
        if tracker.connection != "ONLINE":
            raise DeviceUnavailable(f"robot {serial} is {tracker.connection}")
        message = self._state.builders[serial].instant_actions(actions)
        # followed before it goes out: the robot's answer may be read while publish() waits
        tracker.track_instant(list(actions), message["headerId"])
        try:
            await self._output.publish(serial, "instantActions", message)
        except BaseException:
            tracker.untrack_instant(message["headerId"])
            raise

    async def cancel_order(self, serial: str) -> str:
        """Send ``cancelOrder``; returns the action id to follow in the events.

        The order is not resent or updated after this: the robot keeps a cancelled order's
        ids (spec 6.6.3), so a late update stitching on where it stopped would start it again.
        """
        action_id = f"cancel-{uuid.uuid4().hex[:12]}"
        await self.send_instant_actions(serial, [RobotAction(action_id, "cancelOrder", "NONE")])
        self._pending.forget(serial)
        self._state.trackers[serial].cancelled()
        return action_id


def _check_base(
    nodes: Sequence[RouteNode], edges: Sequence[RouteEdge], *, first_released: bool
) -> None:
    """Released nodes first, then the horizon (spec 6.6.1); an edge is released exactly when
    the node it leads to is."""
    if first_released and (not nodes or not nodes[0].released):
        raise CommandRejected("the first node of an order must be released")
    flags = [n.released for n in nodes]
    if flags != sorted(flags, reverse=True):
        raise CommandRejected("a released node follows the horizon")
    ends = nodes[1:] if first_released else nodes
    if any(e.released != n.released for e, n in zip(edges, ends, strict=False)):
        raise CommandRejected("an edge must be released exactly when its end node is")


def _from_where_it_stands(order: RobotOrder, tracker: RobotTracker) -> RobotOrder:
    """The order with the robot model's allowed deviation on its first node (spec 6.6.3.1:
    the robot stands within it and counts the node as traversed)."""
    deviation = (tracker.model.allowed_deviation_xy, tracker.model.allowed_deviation_theta)
    first = dataclasses.replace(order.nodes[0], deviation=deviation)
    return dataclasses.replace(order, nodes=(first, *order.nodes[1:]))


def _last_released(message: dict[str, Any]) -> dict[str, Any]:
    """The order's decision point: its last released node, as sent."""
    released: list[dict[str, Any]] = [n for n in message["nodes"] if n["released"]]
    return released[-1]

"""Whether a simulated robot takes an order: the acceptance process of VDA 5050 (spec 6.6.2,
figure 8) and the rejection rules of spec 6.6.4, as a pure function of the order and the robot's
view of itself.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from devices.vda5050.messages import ErrorEntry

JsonDict = dict[str, Any]
Kind = Literal["new", "update", "duplicate", "reject"]
DEFAULT_DEVIATION_XY = 0.1  # metres; how close the robot must be to a start node it is not on
MASTER_CONTROLLED = frozenset({"AUTOMATIC", "SEMIAUTOMATIC"})


@dataclass(frozen=True)
class RobotView:
    """What the acceptance check needs to know about the robot."""

    serial: str
    manufacturer: str
    map_id: str
    supported_node_actions: Collection[str]
    order_id: str
    order_update_id: int
    executing: bool  # nodeStates not empty or some actionState not FINISHED/FAILED
    last_node_id: str
    last_node_sequence_id: int
    decision_point: tuple[str, int] | None  # last released node still ahead, if any
    x: float
    y: float
    operating_mode: str = "AUTOMATIC"
    charging: bool = False


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    error: ErrorEntry | None = None


def _reject(error_type: str, description: str, order: JsonDict, **refs: str) -> Verdict:
    references = [("orderId", str(order.get("orderId", "")))]
    references += [(k, v) for k, v in refs.items()]
    if "orderUpdateId" in order:
        references.append(("orderUpdateId", str(order["orderUpdateId"])))
    return Verdict("reject", ErrorEntry(error_type, "WARNING", description, tuple(references)))


def _structure(order: JsonDict, view: RobotView) -> Verdict | None:
    """Problems in the order itself (spec 6.6.4.1, 6.6.4.2), whatever the robot is doing."""
    if order["serialNumber"] != view.serial or order["manufacturer"] != view.manufacturer:
        return _reject("validationError", "order addressed to another vehicle", order)
    nodes: list[JsonDict] = order["nodes"]
    edges: list[JsonDict] = order["edges"]
    if not nodes:
        return _reject("validationError", "order has no nodes", order)
    if len(edges) != len(nodes) - 1:
        return _reject("validationError", "an order needs one edge between each two nodes", order)
    released_seen_false = False
    for i, node in enumerate(nodes):
        seq = node["sequenceId"]
        if seq % 2 != 0 or (i and seq != nodes[i - 1]["sequenceId"] + 2):
            return _reject(
                "validationError",
                "node sequenceIds must be even and consecutive",
                order,
                nodeId=node["nodeId"],
            )
        if node["released"] and released_seen_false:
            return _reject(
                "validationError",
                "a released node follows the horizon",
                order,
                nodeId=node["nodeId"],
            )
        released_seen_false = released_seen_false or not node["released"]
        position = node.get("nodePosition")
        if position is not None and position["mapId"] != view.map_id:
            return _reject(
                "orderError", f"unknown map {position['mapId']!r}", order, nodeId=node["nodeId"]
            )
        for action in node["actions"]:
            if action["actionType"] not in view.supported_node_actions:
                return _reject(
                    "orderError",
                    f"action {action['actionType']!r} is not supported on nodes",
                    order,
                    actionId=action["actionId"],
                )
    if not nodes[0]["released"]:
        return _reject("validationError", "the first node must be released", order)
    for i, edge in enumerate(edges):
        start, end = nodes[i], nodes[i + 1]
        if (
            edge["sequenceId"] != start["sequenceId"] + 1
            or edge["startNodeId"] != start["nodeId"]
            or edge["endNodeId"] != end["nodeId"]
        ):
            return _reject(
                "validationError",
                "edge does not join its neighbouring nodes",
                order,
                edgeId=edge["edgeId"],
            )
        if edge["released"] and not end["released"]:
            return _reject(
                "validationError",
                "a released edge leads into the horizon",
                order,
                edgeId=edge["edgeId"],
            )
        if edge["actions"]:
            return _reject(
                "orderError", "edge actions are not supported", order, edgeId=edge["edgeId"]
            )
        if "trajectory" in edge:
            return _reject(
                "orderError", "trajectories are not supported", order, edgeId=edge["edgeId"]
            )
    return None


def _close_to_start(node: JsonDict, view: RobotView) -> bool:
    if node["nodeId"] == view.last_node_id:
        return True
    position = node.get("nodePosition")
    if position is None:
        return False
    allowed = max(float(position.get("allowedDeviationXY", 0.0)), DEFAULT_DEVIATION_XY)
    return math.hypot(position["x"] - view.x, position["y"] - view.y) <= allowed


def check_order(order: JsonDict, view: RobotView) -> Verdict:
    """Decide on a schema-valid order: take it as new, stitch it as an update, ignore it as a
    resent duplicate, or reject it with the warning the spec prescribes."""
    problem = _structure(order, view)
    if problem is not None:
        return problem
    if view.operating_mode not in MASTER_CONTROLLED:
        # spec 6.10.6, table 1: master control is not in control of the vehicle
        return _reject("orderError", f"vehicle is in {view.operating_mode} mode", order)
    if view.charging:
        # spec 6.8: stopCharging deactivates charging so that a new order can be sent
        return _reject("orderError", "vehicle is charging; send stopCharging first", order)
    first = order["nodes"][0]
    if order["orderId"] != view.order_id:
        if view.executing:
            return _reject(
                "orderError", f"vehicle is still executing order {view.order_id!r}", order
            )
        if not _close_to_start(first, view):
            return _reject(
                "noRouteError",
                f"first node {first['nodeId']!r} is not where the vehicle stands "
                f"({view.last_node_id!r})",
                order,
                nodeId=first["nodeId"],
            )
        return Verdict("new")
    if order["orderUpdateId"] < view.order_update_id:
        return _reject("orderUpdateError", "orderUpdateId is older than the current one", order)
    if order["orderUpdateId"] == view.order_update_id:
        return Verdict("duplicate")
    stitch = (first["nodeId"], first["sequenceId"])
    expected = (
        view.decision_point
        if view.executing and view.decision_point is not None
        else (view.last_node_id, view.last_node_sequence_id)
    )
    if stitch != expected:
        return _reject(
            "orderUpdateError",
            f"update does not start at the last base node {expected[0]!r}/{expected[1]}",
            order,
            nodeId=first["nodeId"],
        )
    return Verdict("update")

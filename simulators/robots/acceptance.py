"""Whether a simulated robot takes an order: the acceptance process of VDA 5050 (spec 6.6.2,
figure 8) and the rejection rules of spec 6.6.4, as a pure function of the order and the robot's
view of itself.

What the robot accepts depends on its :class:`~simulators.robots.profile.VehicleProfile`; the
strict profile's rules (where the vehicle stands, action ids, action parameters, a repeated
``orderUpdateId`` with other content) are listed there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.vda5050.messages import ErrorEntry
from simulators.robots.action_rules import node_action_problem, repeated_action_id
from simulators.robots.capabilities import Capabilities
from simulators.robots.profile import STRICT, VehicleProfile

JsonDict = dict[str, Any]
Kind = Literal["new", "update", "duplicate", "reject"]
MASTER_CONTROLLED = frozenset({"AUTOMATIC", "SEMIAUTOMATIC"})


@dataclass(frozen=True)
class RobotView:
    """What the acceptance check needs to know about the robot."""

    serial: str
    manufacturer: str
    map_id: str
    capabilities: Capabilities
    order_id: str
    order_update_id: int
    executing: bool  # nodeStates not empty or some actionState not FINISHED/FAILED
    last_node_id: str
    last_node_sequence_id: int
    decision_point: tuple[str, int] | None  # last released node still ahead, if any
    x: float
    y: float
    theta: float = 0.0
    operating_mode: str = "AUTOMATIC"
    charging: bool = False
    profile: VehicleProfile = STRICT
    known_action_ids: frozenset[str] = frozenset()  # in actionStates now
    horizon_action_ids: frozenset[str] = frozenset()  # of the horizon an update replaces
    # nodes, edges and zoneSetId of the order message accepted with order_update_id
    order_content: JsonDict | None = None
    # the vehicle's own map, for first nodes sent without nodePosition
    node_positions: Mapping[str, tuple[float, float]] = field(default_factory=dict)


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
        if position is None and node["nodeId"] not in view.node_positions:
            # the vehicle cannot place the node: no route leads there
            return _reject(
                "noRouteError",
                f"node {node['nodeId']!r} has no nodePosition and is not on the vehicle's map",
                order,
                nodeId=node["nodeId"],
            )
        for action in node["actions"]:
            problem = node_action_problem(action, view.capabilities, strict=view.profile.strict)
            if problem is not None:
                return _reject(
                    problem.error_type, problem.description, order, **problem.references()
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
    if view.profile.strict:
        repeated = repeated_action_id(order, ())
        if repeated is not None:
            return _reject("validationError", repeated.description, order, **repeated.references())
    return None


def _angle(a: float, b: float) -> float:
    """The smaller angle between two orientations, in radians."""
    return abs(math.remainder(a - b, math.tau))


def _start_problem(node: JsonDict, view: RobotView) -> str | None:
    """Why the first node of a new order is not trivially reachable (spec 6.6.1: "either ...
    the AGV is already standing on the node, or ... the AGV is in the node's deviation range"),
    or None when it is."""
    position = node.get("nodePosition")
    profile = view.profile
    if not profile.strict:
        if node["nodeId"] == view.last_node_id:
            return None
        if position is None:
            return "it is not the last node and has no position"
        allowed = max(float(position.get("allowedDeviationXY", 0.0)), profile.tolerance_xy)
        distance = math.hypot(position["x"] - view.x, position["y"] - view.y)
        return None if distance <= allowed else f"it is {distance:.2f} m away"
    if position is None:
        mapped = view.node_positions.get(node["nodeId"])
        if mapped is None:
            return "it has no nodePosition and is not on the vehicle's map"
        x, y, given = mapped[0], mapped[1], {}
    else:
        x, y, given = float(position["x"]), float(position["y"]), position
    # spec 6.6.6, allowedDeviationXY: "If = 0.0: no deviation is allowed (no deviation means
    # within the normal tolerance of the AGV manufacturer)"
    allowed = float(given.get("allowedDeviationXY") or 0.0) or profile.tolerance_xy
    distance = math.hypot(x - view.x, y - view.y)
    if distance > allowed:
        return f"the vehicle is {distance:.2f} m from it (allowed {allowed:.2f} m)"
    if "theta" in given:
        allowed_theta = float(given.get("allowedDeviationTheta") or 0.0) or profile.tolerance_theta
        off = _angle(float(given["theta"]), view.theta)
        if off > allowed_theta:
            return (
                f"the vehicle is turned {off:.3f} rad from its theta (allowed {allowed_theta:.3f})"
            )
    return None


def message_content(order: JsonDict) -> JsonDict:
    """What an order message says, without its header."""
    return {"nodes": order["nodes"], "edges": order["edges"], "zoneSetId": order.get("zoneSetId")}


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
    if order["orderId"] != view.order_id:
        return _check_new(order, view)
    return _check_update(order, view)


def _check_new(order: JsonDict, view: RobotView) -> Verdict:
    first = order["nodes"][0]
    if view.executing:
        return _reject("orderError", f"vehicle is still executing order {view.order_id!r}", order)
    if view.profile.strict:
        repeated = repeated_action_id(order, view.known_action_ids)
        if repeated is not None:
            return _reject("validationError", repeated.description, order, **repeated.references())
    why = _start_problem(first, view)
    if why is not None:
        return _reject(
            "noRouteError",
            f"first node {first['nodeId']!r} is not where the vehicle stands "
            f"(last node {view.last_node_id!r}): {why}",
            order,
            nodeId=first["nodeId"],
        )
    return Verdict("new")


def _check_update(order: JsonDict, view: RobotView) -> Verdict:
    first = order["nodes"][0]
    if order["orderUpdateId"] < view.order_update_id:
        return _reject("orderUpdateError", "orderUpdateId is older than the current one", order)
    if order["orderUpdateId"] == view.order_update_id:
        if (
            view.profile.strict
            and view.order_content is not None
            and message_content(order) != view.order_content
        ):
            return _reject(
                "orderUpdateError",
                f"orderUpdateId {view.order_update_id} was received before with other content",
                order,
            )
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
    if view.profile.strict:
        # the stitching node is the one already held; its actions are not new
        added = {"nodes": order["nodes"][1:], "edges": order["edges"]}
        repeated = repeated_action_id(added, view.known_action_ids - view.horizon_action_ids)
        if repeated is not None:
            return _reject("validationError", repeated.description, order, **repeated.references())
    return Verdict("update")

"""Builders for VDA 5050 messages (order, instantActions, connection, state, visualization,
factsheet), shared by the master control and the robot simulator.

A :class:`MessageBuilder` belongs to one robot and one side of the link: it holds the per-topic
``headerId`` counters (spec 6.4: defined per topic, incremented with every sent message) and
stamps ISO 8601 UTC timestamps from the injected clock. Every message it returns validates
against the schema of the robot's protocol version; tests check this for both versions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from kernel.clock import Clock
from kernel.config.model import RobotModel

JsonDict = dict[str, Any]
ConnectionState = Literal["ONLINE", "OFFLINE", "CONNECTIONBROKEN"]


def iso_timestamp(clock: Clock) -> str:
    """``YYYY-MM-DDTHH:mm:ss.fffZ`` in UTC, from the clock."""
    t = clock.utcnow()
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def action_dict(action: RobotAction) -> JsonDict:
    return {
        "actionId": action.action_id,
        "actionType": action.action_type,
        "blockingType": action.blocking_type,
        "actionParameters": [{"key": k, "value": v} for k, v in action.parameters],
    }


def edge_id(start: str, end: str, sequence_id: int) -> str:
    return f"{start}-{end}-{sequence_id}"


def node_dict(node: RouteNode, sequence_id: int) -> JsonDict:
    """An order node, released (base) or not (horizon), with its allowed deviation if set."""
    position: JsonDict = {"x": node.x, "y": node.y, "mapId": node.map_id}
    if node.deviation is not None:
        position["allowedDeviationXY"], position["allowedDeviationTheta"] = node.deviation
    return {
        "nodeId": node.node_id,
        "sequenceId": sequence_id,
        "released": node.released,
        "nodePosition": position,
        "actions": [action_dict(a) for a in node.actions],
    }


def edge_dict(edge: RouteEdge, sequence_id: int) -> JsonDict:
    """An order edge, released (base) or not (horizon)."""
    out: JsonDict = {
        "edgeId": edge_id(edge.start, edge.end, sequence_id),
        "sequenceId": sequence_id,
        "released": edge.released,
        "startNodeId": edge.start,
        "endNodeId": edge.end,
        "length": edge.length,
        "actions": [],
    }
    if edge.max_speed is not None:
        out["maxSpeed"] = edge.max_speed
    return out


# --- parts of a state message -------------------------------------------------------------------


@dataclass(frozen=True)
class NodeState:
    node_id: str
    sequence_id: int
    released: bool = True
    x: float | None = None
    y: float | None = None
    map_id: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "nodeId": self.node_id,
            "sequenceId": self.sequence_id,
            "released": self.released,
        }
        if self.x is not None and self.y is not None and self.map_id is not None:
            out["nodePosition"] = {"x": self.x, "y": self.y, "mapId": self.map_id}
        return out


@dataclass(frozen=True)
class EdgeState:
    edge_id: str
    sequence_id: int
    released: bool = True

    def to_json(self) -> JsonDict:
        return {"edgeId": self.edge_id, "sequenceId": self.sequence_id, "released": self.released}


@dataclass(frozen=True)
class ActionState:
    action_id: str
    action_type: str
    status: Literal["WAITING", "INITIALIZING", "RUNNING", "PAUSED", "FINISHED", "FAILED"]
    result: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {
            "actionId": self.action_id,
            "actionType": self.action_type,
            "actionStatus": self.status,
        }
        if self.result is not None:
            out["resultDescription"] = self.result
        return out


@dataclass(frozen=True)
class ErrorEntry:
    error_type: str
    level: Literal["WARNING", "FATAL"]
    description: str = ""
    references: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> JsonDict:
        return {
            "errorType": self.error_type,
            "errorLevel": self.level,
            "errorDescription": self.description,
            "errorReferences": [
                {"referenceKey": k, "referenceValue": v} for k, v in self.references
            ],
        }


@dataclass(frozen=True)
class Load:
    load_id: str
    load_type: str | None = None
    load_position: str | None = None

    def to_json(self) -> JsonDict:
        out: JsonDict = {"loadId": self.load_id}
        if self.load_type is not None:
            out["loadType"] = self.load_type
        if self.load_position is not None:
            out["loadPosition"] = self.load_position
        return out


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    theta: float
    map_id: str
    initialized: bool = True

    def to_json(self) -> JsonDict:
        return {
            "x": self.x,
            "y": self.y,
            "theta": self.theta,
            "mapId": self.map_id,
            "positionInitialized": self.initialized,
        }


@dataclass(frozen=True)
class StateBody:
    """Everything in a state message apart from the header."""

    order_id: str = ""
    order_update_id: int = 0
    last_node_id: str = ""
    last_node_sequence_id: int = 0
    node_states: Sequence[NodeState] = ()
    edge_states: Sequence[EdgeState] = ()
    action_states: Sequence[ActionState] = ()
    driving: bool = False
    paused: bool = False
    pose: Pose | None = None
    velocity: tuple[float, float, float] | None = None
    loads: Sequence[Load] = ()
    battery_charge: float = 100.0
    charging: bool = False
    operating_mode: str = "AUTOMATIC"
    errors: Sequence[ErrorEntry] = ()
    e_stop: str = "NONE"
    field_violation: bool = False
    map_ids: tuple[str, ...] = field(default_factory=tuple)


def _velocity(v: tuple[float, float, float]) -> JsonDict:
    return {"vx": v[0], "vy": v[1], "omega": v[2]}


class MessageBuilder:
    """Builds the messages one side of one robot's link sends, with per-topic header ids."""

    def __init__(self, version: str, manufacturer: str, serial: str, clock: Clock) -> None:
        self.version = version
        self.manufacturer = manufacturer
        self.serial = serial
        self._clock = clock
        self._header_ids: dict[str, int] = {}

    def header(self, subtopic: str) -> JsonDict:
        header_id = self._header_ids.get(subtopic, -1) + 1
        self._header_ids[subtopic] = header_id % (2**32)
        return {
            "headerId": header_id % (2**32),
            "timestamp": iso_timestamp(self._clock),
            "version": self.version,
            "manufacturer": self.manufacturer,
            "serialNumber": self.serial,
        }

    # --- master control -> robot -----------------------------------------------------------

    def order(self, order: RobotOrder, order_update_id: int = 0) -> JsonDict:
        """A new order: nodes get sequenceIds 0, 2, 4, ..., edges 1, 3, ...; base then horizon."""
        nodes = [node_dict(n, 2 * i) for i, n in enumerate(order.nodes)]
        edges = [edge_dict(e, 2 * i + 1) for i, e in enumerate(order.edges)]
        return {
            **self.header("order"),
            "orderId": order.order_id,
            "orderUpdateId": order_update_id,
            "nodes": nodes,
            "edges": edges,
        }

    def order_update(
        self,
        order_id: str,
        order_update_id: int,
        stitch: JsonDict,
        nodes: Sequence[RouteNode],
        edges: Sequence[RouteEdge],
    ) -> JsonDict:
        """An order update (spec 6.6.2): ``stitch`` is the last base node exactly as it was sent
        before (its content must not change), followed by the new nodes; sequenceIds continue
        from the stitching node's."""
        first = int(stitch["sequenceId"])
        return {
            **self.header("order"),
            "orderId": order_id,
            "orderUpdateId": order_update_id,
            "nodes": [stitch, *(node_dict(n, first + 2 * (i + 1)) for i, n in enumerate(nodes))],
            "edges": [edge_dict(e, first + 2 * i + 1) for i, e in enumerate(edges)],
        }

    def restamp(self, message: JsonDict, subtopic: str) -> JsonDict:
        """``message`` again with a new header (the next headerId of ``subtopic`` and the time
        now): a resent message is a new message (spec 6.4), its content unchanged."""
        return {**message, **self.header(subtopic)}

    def instant_actions(self, actions: Iterable[RobotAction]) -> JsonDict:
        return {**self.header("instantActions"), "actions": [action_dict(a) for a in actions]}

    # --- robot -> master control -----------------------------------------------------------

    def connection(self, state: ConnectionState) -> JsonDict:
        return {**self.header("connection"), "connectionState": state}

    def state(self, body: StateBody) -> JsonDict:
        out: JsonDict = {
            **self.header("state"),
            "orderId": body.order_id,
            "orderUpdateId": body.order_update_id,
            "lastNodeId": body.last_node_id,
            "lastNodeSequenceId": body.last_node_sequence_id,
            "nodeStates": [n.to_json() for n in body.node_states],
            "edgeStates": [e.to_json() for e in body.edge_states],
            "driving": body.driving,
            "paused": body.paused,
            "actionStates": [a.to_json() for a in body.action_states],
            "batteryState": {"batteryCharge": body.battery_charge, "charging": body.charging},
            "operatingMode": body.operating_mode,
            "errors": [e.to_json() for e in body.errors],
            "safetyState": {"eStop": body.e_stop, "fieldViolation": body.field_violation},
            "loads": [ld.to_json() for ld in body.loads],
        }
        if body.pose is not None:
            out["agvPosition"] = body.pose.to_json()
        if body.velocity is not None:
            out["velocity"] = _velocity(body.velocity)
        if self.version != "2.0.0" and body.map_ids:
            out["maps"] = [
                {"mapId": m, "mapVersion": "1", "mapStatus": "ENABLED"} for m in body.map_ids
            ]
        return out

    def visualization(
        self, pose: Pose | None, velocity: tuple[float, float, float] | None = None
    ) -> JsonDict:
        out = self.header("visualization")
        if pose is not None:
            out["agvPosition"] = pose.to_json()
        if velocity is not None:
            out["velocity"] = _velocity(velocity)
        return out

    def factsheet(
        self,
        model: RobotModel,
        series_name: str,
        *,
        state_interval: float = 1.0,
        visualization_interval: float = 1.0,
    ) -> JsonDict:
        """The type description of a robot of ``model`` (spec 6.15), which sends a state at
        least every ``state_interval`` seconds and a visualization every
        ``visualization_interval`` seconds.

        ``blockingTypes`` is left out of the action list: the official schemas declare it as an
        array whose value must be one of three strings, which no array satisfies.
        """

        def template_params(params: dict[str, Any], extra: Sequence[str]) -> list[JsonDict]:
            keys = [*params.keys(), *(k for k in extra if k not in params)]
            return [{"key": k, "valueDataType": "STRING"} for k in keys]

        def instant(action_type: str) -> JsonDict:
            return {"actionType": action_type, "actionScopes": ["INSTANT"]}

        physical: JsonDict = {
            "speedMin": 0.0,
            "speedMax": model.speed,
            "accelerationMax": 1.0,
            "decelerationMax": 1.0,
            "heightMax": 0.5,
            "width": 0.8,
            "length": 1.2,
        }
        if self.version == "2.0.0":
            physical["heightMin"] = 0.3
        return {
            **self.header("factsheet"),
            "typeSpecification": {
                "seriesName": series_name,
                "agvKinematic": "DIFF",
                "agvClass": "CARRIER",
                "maxLoadMass": 25.0 * model.tote_capacity,
                "localizationTypes": ["NATURAL"],
                "navigationTypes": ["AUTONOMOUS"],
            },
            "physicalParameters": physical,
            "protocolLimits": {
                "maxStringLens": {},
                "maxArrayLens": {},
                "timing": {
                    "minOrderInterval": 0.1,
                    "minStateInterval": 0.1,
                    "defaultStateInterval": state_interval,
                    "visualizationInterval": visualization_interval,
                },
            },
            "protocolFeatures": {
                "optionalParameters": [],
                "agvActions": [
                    {
                        "actionType": "pick",
                        "actionScopes": ["NODE"],
                        "actionParameters": template_params(model.pick.parameters, ["loadId"]),
                    },
                    {
                        "actionType": "drop",
                        "actionScopes": ["NODE"],
                        "actionParameters": template_params(model.drop.parameters, ["loadId"]),
                    },
                    *(
                        instant(t)
                        for t in (
                            "cancelOrder",
                            "factsheetRequest",
                            "stateRequest",
                            "startPause",
                            "stopPause",
                        )
                    ),
                ],
            },
            "agvGeometry": {},
            "loadSpecification": {
                "loadPositions": sorted(
                    {str(model.pick.parameters.get("lhd", "lhd1"))}
                    | {str(model.drop.parameters.get("lhd", "lhd1"))}
                ),
            },
        }


def heading(x0: float, y0: float, x1: float, y1: float, default: float = 0.0) -> float:
    """The heading (radians, -pi..pi) from one point to another."""
    if x0 == x1 and y0 == y1:
        return default
    return math.atan2(y1 - y0, x1 - x0)

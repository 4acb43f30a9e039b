"""Where an idle robot stands, compared with its ``lastNodeId``: can a new order start there?

A new order starts at the robot's ``lastNodeId`` with the model's allowed deviation (spec
6.6.3.1: the first node is the last traversed node, with a deviation range the robot is
within). That only works when the robot really stands there: a robot that stopped between
nodes after a cancel, was pushed away, lost its localisation or reports a node that is not on
the map would reject every such order (``noRouteError``). :func:`misplacement` says what is
wrong, as a typed value; the tracker reports such a robot as needing manual recovery.

A robot that reports no ``agvPosition`` (the field is optional; vehicles localised on nodes by
tags) is taken to stand on its ``lastNodeId``. A robot that is driving, or still has nodes of
its order to go, is not checked: it is between nodes by design.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

NodePlaces = Mapping[str, tuple[float, float, str]]  # node id -> (x, y, mapId)
# allowedDeviationXY 0 means "the vehicle's own tolerance" (spec 6.6.6): a few centimetres
TOLERANCE = 0.05


class Misplaced(StrEnum):
    NOT_LOCALISED = "not_localised"  # agvPosition.positionInitialized false
    UNKNOWN_NODE = "unknown_node"  # lastNodeId is not a node of the line's map
    NO_NODE = "no_node"  # lastNodeId empty while the robot reports where it stands
    OFF_NODE = "off_node"  # farther than allowedDeviationXY from its lastNodeId
    OTHER_MAP = "other_map"  # on another map than its lastNodeId


@dataclass(frozen=True)
class Misplacement:
    kind: Misplaced
    detail: str

    def __str__(self) -> str:
        return f"needs manual recovery: {self.detail}"


def misplacement(
    state: Mapping[str, Any], nodes: NodePlaces, deviation: float
) -> Misplacement | None:
    """What keeps a new order from starting where the robot stands, or None."""
    pose = state.get("agvPosition")
    last = state.get("lastNodeId") or ""
    if pose is not None and not pose["positionInitialized"]:
        return Misplacement(Misplaced.NOT_LOCALISED, "position not initialised")
    if last and last not in nodes:
        return Misplacement(Misplaced.UNKNOWN_NODE, f"last node {last!r} is not on the map")
    if pose is None or state.get("driving") or state.get("nodeStates"):
        return None
    if not last:
        return Misplacement(
            Misplaced.NO_NODE, f"stands at ({pose['x']:.2f}, {pose['y']:.2f}) on no node"
        )
    x, y, map_id = nodes[last]
    if pose["mapId"] != map_id:
        return Misplacement(
            Misplaced.OTHER_MAP, f"on map {pose['mapId']!r}, its last node {last} on {map_id!r}"
        )
    distance = math.hypot(pose["x"] - x, pose["y"] - y)
    if distance > max(deviation, TOLERANCE):
        return Misplacement(
            Misplaced.OFF_NODE,
            f"stands {distance:.2f} m from its last node {last} (allowed {deviation:.2f} m)",
        )
    return None

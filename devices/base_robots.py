"""What crosses the robot seam: orders and their routes, the robot snapshot, and the events a
robot fleet reports (actions finished or failed, orders finished, availability).

Plain frozen values, used by :class:`devices.base.RobotFleet` and importable from
:mod:`devices.base` with every other value of the device seams.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class RobotAction:
    """An action at a node: ``pick`` or ``drop`` (or any vendor action) with its parameters."""

    action_id: str
    action_type: str
    blocking_type: Literal["NONE", "SOFT", "HARD"] = "HARD"
    parameters: tuple[tuple[str, str | float | int | bool], ...] = ()


@dataclass(frozen=True)
class RouteNode:
    node_id: str
    x: float
    y: float
    map_id: str
    actions: tuple[RobotAction, ...] = ()
    released: bool = True  # False: horizon (planned, not yet to be driven; VDA 5050 6.6.1)
    # nodePosition.allowedDeviationXY / allowedDeviationTheta (metres, radians); None: not sent
    deviation: tuple[float, float] | None = None


@dataclass(frozen=True)
class RouteEdge:
    start: str
    end: str
    length: float
    max_speed: float | None = None
    released: bool = True


@dataclass(frozen=True)
class RobotOrder:
    """A trip for one robot: nodes in driving order (the first is where the robot stands).

    The released nodes (the base) come first; the rest, if any, is the horizon."""

    order_id: str
    nodes: tuple[RouteNode, ...]
    edges: tuple[RouteEdge, ...]


@dataclass(frozen=True)
class ActionStatus:
    """One entry of the robot's ``actionStates``: how far an action of its order got."""

    action_id: str
    action_type: str
    status: str  # WAITING, INITIALIZING, RUNNING, PAUSED, FINISHED or FAILED
    result: str | None = None  # resultDescription


@dataclass(frozen=True)
class RobotLoad:
    """One entry of the robot's ``loads``: a tote (or other load) it carries."""

    load_id: str | None
    load_type: str | None = None
    load_position: str | None = None


@dataclass(frozen=True, slots=True)
class RobotPosition:
    """Where a robot last reported standing: the part of :class:`RobotSnapshot` that traffic
    control reads on every tick, without the rest (cheap to take for a large fleet)."""

    last_node_id: str | None
    x: float | None
    y: float | None
    driving: bool


def positions_of(snapshots: Mapping[str, RobotSnapshot]) -> dict[str, RobotPosition]:
    """The positions in ``snapshots`` (for fleets that have no cheaper way to tell them)."""
    return {
        serial: RobotPosition(s.last_node_id, s.x, s.y, s.driving)
        for serial, s in snapshots.items()
    }


def snapshots_in(
    snapshots: Mapping[str, RobotSnapshot], serials: Iterable[str]
) -> dict[str, RobotSnapshot]:
    """The snapshots of ``serials`` in ``snapshots`` (for fleets that have no cheaper way to
    take a few)."""
    return {s: snap for s in serials if (snap := snapshots.get(s)) is not None}


@dataclass(frozen=True)
class RobotSnapshot:
    """What the controller knows about one robot right now."""

    serial: str
    manufacturer: str
    version: str
    connection: Literal["ONLINE", "OFFLINE", "CONNECTIONBROKEN", "UNKNOWN"]
    operating_mode: str | None
    last_node_id: str | None
    x: float | None
    y: float | None
    driving: bool
    order_id: str | None
    battery: float | None
    errors: tuple[str, ...]
    state_age: float | None  # line seconds since the last state message, None if never
    available: bool  # online, AUTOMATIC, no FATAL error, state fresh, factsheet allows picking
    charging: bool | None = None  # None until a state message arrived
    paused: bool = False  # startPause in effect (VDA 5050 state.paused)
    # what the robot's factsheet lacks for picking (pick/drop action or template parameters)
    factsheet_problems: tuple[str, ...] = ()
    # what a controller taking over needs from the last state message: the order's update,
    # the node ids still to traverse, the actions' states and the loads on board
    order_update_id: int = 0
    nodes_left: tuple[str, ...] = ()
    edges_left: int = 0
    actions: tuple[ActionStatus, ...] = ()
    loads: tuple[RobotLoad, ...] = ()

    @property
    def reported(self) -> bool:
        """A state message arrived since master control started."""
        return self.state_age is not None

    @property
    def executing(self) -> bool:
        """The robot's order still has nodes, edges or actions to do."""
        return bool(self.nodes_left or self.edges_left) or any(
            a.status not in ("FINISHED", "FAILED") for a in self.actions
        )

    # why the robot needs an operator before it works again (off its node, orders or cancels
    # rejected again and again); such a robot is not available
    attention: str | None = None
    # why no new order may be sent to it right now (backing off after a rejection, order rate
    # cap reached); it clears by itself
    order_hold: str | None = None


@dataclass(frozen=True)
class RobotActionFinished:
    serial: str
    order_id: str
    action_id: str
    action_type: str
    node_id: str
    at: datetime


@dataclass(frozen=True)
class RobotActionFailed:
    serial: str
    order_id: str
    action_id: str
    action_type: str
    node_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class RobotOrderFinished:
    """Every node of the order traversed and every action finished or failed."""

    serial: str
    order_id: str
    at: datetime


@dataclass(frozen=True)
class RobotAvailability:
    serial: str
    available: bool
    reason: str
    at: datetime
    # unavailable only because the controller's own broker link is down: nothing is known of
    # the robot, which may well be working (reported again, unheard=False, once the link is up)
    unheard: bool = False

"""Values of the traffic planner: robot routes with their released base, reservations, decisions.

All frozen; the planner in :mod:`routing.traffic` takes a :class:`TrafficState` and returns a
:class:`TrafficPlan` holding the next state. See that module for the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


@dataclass(frozen=True)
class RobotPlan:
    """One robot's remaining route and how much of it is released.

    ``route[0]`` is the node the robot stands on (VDA 5050 ``lastNodeId``); ``route[:released]``
    is the base (released nodes, the last of them the decision point); the rest is the horizon.
    ``stops`` are route indices (>= 1) where the robot must stop on the way (picks, drops); the
    last node of the route is always a stop. An idle robot has a route of one node.

    ``left``: the robot has driven clear of ``route[0]`` on the edge to ``route[1]`` (it said
    so, or reported a position far enough from it); ``route[0]`` is then no longer reserved
    for it, and another robot may be released onto it.
    """

    serial: str
    route: tuple[str, ...]
    released: int = 1
    stops: tuple[int, ...] = ()
    priority: int = 0  # higher goes first; ties broken by serial
    left: bool = False

    def __post_init__(self) -> None:
        if not self.route:
            raise ValueError(f"{self.serial}: a route needs at least the current node")
        if not 1 <= self.released <= len(self.route):
            raise ValueError(
                f"{self.serial}: released={self.released} outside 1..{len(self.route)}"
            )
        if any(not 1 <= s < len(self.route) for s in self.stops) or list(self.stops) != sorted(
            set(self.stops)
        ):
            raise ValueError(f"{self.serial}: stops {self.stops} must be increasing route indices")
        if self.left and (self.released < 2 or self.route[0] in self.route[1 : self.released]):
            raise ValueError(
                f"{self.serial}: only a robot on an edge of its base, not coming back, has left "
                "its node"
            )

    @property
    def node(self) -> str:
        return self.route[0]

    @property
    def base(self) -> tuple[str, ...]:
        return self.route[: self.released]

    @property
    def may_leave(self) -> bool:
        """Driving on, the robot may free the node it stands on before reaching the next: it
        has a node released ahead and its base does not come back to this one (a U-turn)."""
        return not self.left and self.released > 1 and self.route[0] not in self.base[1:]

    @property
    def held(self) -> tuple[str, ...]:
        """The nodes reserved for the robot: its base, less the node it has driven clear of."""
        return self.route[1 : self.released] if self.left else self.base

    @property
    def horizon(self) -> tuple[str, ...]:
        return self.route[self.released :]

    @property
    def decision_point(self) -> str:
        return self.route[self.released - 1]

    @property
    def idle(self) -> bool:
        """No trip: the robot stays where it is and blocks its node."""
        return len(self.route) == 1

    @property
    def finishing(self) -> bool:
        """The whole route is released: the robot will stop for good at its last node."""
        return self.released == len(self.route)

    @property
    def stopped(self) -> bool:
        """Standing on its decision point: it cannot move until its base is extended."""
        return self.released == 1

    def next_stop(self) -> int:
        """Index of the first stop in the horizon (the last node when no other stop is left)."""
        return next((s for s in self.stops if s >= self.released), len(self.route) - 1)

    def is_stop(self, index: int) -> bool:
        return index == len(self.route) - 1 or index in self.stops


@dataclass(frozen=True)
class Reservations:
    """Node -> serial of the one robot that holds it. Absent nodes are free."""

    holders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def holder(self, node: str) -> str | None:
        return self.holders.get(node)

    def nodes_of(self, serial: str) -> frozenset[str]:
        return frozenset(n for n, s in self.holders.items() if s == serial)

    @staticmethod
    def of(holders: Mapping[str, str]) -> Reservations:
        return Reservations(MappingProxyType(dict(sorted(holders.items()))))


@dataclass(frozen=True)
class TrafficState:
    """Every robot's plan (sorted by serial) and the reservation table."""

    robots: tuple[RobotPlan, ...] = ()
    reservations: Reservations = field(default_factory=Reservations)
    _by_serial: dict[str, RobotPlan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_serial", {r.serial: r for r in self.robots})

    def robot(self, serial: str) -> RobotPlan:
        return self._by_serial[serial]

    def serials(self) -> tuple[str, ...]:
        return tuple(r.serial for r in self.robots)

    def positions(self) -> dict[str, str]:
        return {r.serial: r.node for r in self.robots}

    @staticmethod
    def of(robots: Iterable[RobotPlan], holders: Mapping[str, str]) -> TrafficState:
        return TrafficState(tuple(sorted(robots, key=lambda r: r.serial)), Reservations.of(holders))


@dataclass(frozen=True)
class TrafficPolicy:
    """Tuning of the planner. ``parking``: nodes idle robots are sent to when they block."""

    parking: tuple[str, ...] = ()
    lookahead: int = 2  # keep the base this many nodes ahead of the robot where traffic allows
    detour_ratio: float = 2.0  # accept a detour around an idle robot up to this many times ...
    detour_slack: float = 12.0  # ... the direct length plus this many metres; else move it away


class RerouteReason(StrEnum):
    AROUND_IDLE = "around_idle"  # an idle (or arriving) robot stands on the planned route
    DEADLOCK = "deadlock"  # stopped robots wait on each other in a cycle
    SIDESTEP = "sidestep"  # no way around: step aside so the others (or an evacuee) can pass


@dataclass(frozen=True)
class Release:
    """Extend ``serial``'s base by ``nodes`` (in route order); they are now reserved for it."""

    serial: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Reroute:
    """``serial``'s horizon changed: ``route`` is its whole remaining route (base unchanged)."""

    serial: str
    route: tuple[str, ...]
    stops: tuple[int, ...]
    reason: RerouteReason


@dataclass(frozen=True)
class Evacuation:
    """Idle robot ``serial`` gets a new trip along ``route`` to ``route[-1]`` to free the way for
    ``making_way_for``."""

    serial: str
    route: tuple[str, ...]
    making_way_for: str


@dataclass(frozen=True)
class Wait:
    """``serial`` stands on its decision point and cannot get ``node``, held by ``holder``."""

    serial: str
    node: str
    holder: str


@dataclass(frozen=True)
class TrafficPlan:
    """The decisions of one planning round and the state they lead to."""

    state: TrafficState
    releases: tuple[Release, ...] = ()
    reroutes: tuple[Reroute, ...] = ()
    evacuations: tuple[Evacuation, ...] = ()
    waits: tuple[Wait, ...] = ()

    def changed(self) -> frozenset[str]:
        """Serials whose order must be updated (new base nodes, new horizon or a new trip)."""
        return frozenset(
            [r.serial for r in self.releases]
            + [r.serial for r in self.reroutes]
            + [e.serial for e in self.evacuations]
        )


def violations(state: TrafficState) -> tuple[str, ...]:
    """Broken invariants of ``state`` as readable lines (empty when consistent).

    Every robot holds exactly the nodes of its base (its current node included unless it has
    driven clear of it), no node is in the base of two robots, and no two robots stand on one
    node.
    """
    out: list[str] = []
    owner: dict[str, str] = {}
    for r in state.robots:
        for node in r.held:
            other = owner.setdefault(node, r.serial)
            if other != r.serial:
                out.append(f"{node} is in the base of {other} and of {r.serial}")
        holder = state.reservations.holder(r.node)
        if holder != r.serial and not r.left:
            out.append(f"{r.serial} stands on {r.node}, reserved for {holder}")
    for node, serial in state.reservations.holders.items():
        if owner.get(node) != serial:
            out.append(f"{node} is reserved for {serial} outside its base")
    for node, serial in owner.items():
        if state.reservations.holder(node) != serial:
            out.append(f"{node} is in the base of {serial} but not reserved for it")
    return tuple(dict.fromkeys(out))

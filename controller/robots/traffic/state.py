"""What traffic control knows: its settings, the planner's state, the robot orders it follows,
the waits it shows and its deadlock bookkeeping, in one object every part of it reads and changes.

Every part works on the same :class:`TrafficFleetState`, so that the reservations, the jobs and
the waits never disagree between the rounds, the robot orders and the deadlock handling.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from controller.line import topology
from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import traffic
from routing.roadmap import Roadmap


@dataclasses.dataclass
class Job:
    """A robot order under traffic control: its whole route as it stands now."""

    order_id: str
    nodes: list[dev.RouteNode]  # from the node the robot stood on when the order was sent
    sent_base: int  # nodes[:sent_base] were sent released
    sent_horizon: tuple[str, ...]  # node ids of the horizon in the newest message sent
    cancelled: bool = False  # cancelOrder sent: nothing more is sent for it

    def ids(self) -> tuple[str, ...]:
        return tuple(n.node_id for n in self.nodes)


@dataclasses.dataclass(frozen=True)
class WaitInfo:
    node: str  # waited for
    holder: str
    at: str  # where the robot stands
    since: float  # waiting without moving since (line seconds), whatever node it waits for


@dataclasses.dataclass
class LoggedOnce:
    """What has been logged once and must not be logged again until it changes."""

    conflicts: set[str] = dataclasses.field(default_factory=set)
    off_base: set[str] = dataclasses.field(default_factory=set)
    long_waits: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class TrafficSettings:
    """The line file's ``robots.traffic`` figures traffic control runs by (line seconds)."""

    enabled: bool
    tick: float
    wait_warning: float
    deadlock_after: float
    stall_after: float
    clearance: float | None  # metres from its last node that free it (None: arriving only)


@dataclasses.dataclass
class TrafficFleetState:
    """The settings, the planner's state, the jobs and the waits; the lock guards all of it."""

    fleet: dev.RobotFleet  # the fleet every order goes to
    clock: Clock
    metrics: Metrics
    settings: TrafficSettings
    roadmap: Roadmap
    policy: traffic.TrafficPolicy
    # the planner's state: every known robot's route and the nodes reserved for it
    planner: traffic.TrafficState = dataclasses.field(default_factory=traffic.TrafficState)
    jobs: dict[str, Job] = dataclasses.field(default_factory=dict)  # robot -> its order
    waits: dict[str, WaitInfo] = dataclasses.field(default_factory=dict)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    dirty: bool = True  # something changed that the next tick must plan a round for
    last_round: float = float("-inf")
    logged: LoggedOnce = dataclasses.field(default_factory=LoggedOnce)
    # job: (shortest way left, reached at), to see a robot that makes no progress
    best: dict[str, tuple[int, float]] = dataclasses.field(default_factory=dict)
    # robots whose trip was cancelled to end a deadlock -> line time of the cancel
    giving_way: dict[str, float] = dataclasses.field(default_factory=dict)
    # give-ways by the robot giving way -> (line time, the robots stuck with it): while one is
    # under way, and for ``deadlock_after`` after it, its robots are left to it
    give_ways: dict[str, tuple[float, frozenset[str]]] = dataclasses.field(default_factory=dict)
    # robots that gave way lately -> line time: passed over when the same robots are stuck again
    gave_way: dict[str, float] = dataclasses.field(default_factory=dict)
    # robots that gave way stay out of work this long, so that they can be moved aside
    # instead of being sent straight back into the same jam
    resting: dict[str, float] = dataclasses.field(default_factory=dict)
    # robots traffic control must not send anywhere for now (being taken over at start)
    held: Callable[[str], bool] = lambda serial: False
    # robots whose last reports the controller has not recorded yet: a new order would erase
    # what the robot remembers of its last one, so none is sent to them meanwhile
    unrecorded: Callable[[str], bool] = lambda serial: False

    @classmethod
    def for_line(
        cls, config: LineConfig, clock: Clock, metrics: Metrics, fleet: dev.RobotFleet
    ) -> TrafficFleetState:
        """The state for ``config``'s roadmap and traffic settings, before any robot is known."""
        settings = config.robots.traffic
        return cls(
            fleet=fleet,
            clock=clock,
            metrics=metrics,
            settings=TrafficSettings(
                enabled=settings.enabled,
                tick=settings.tick,
                wait_warning=settings.wait_warning,
                deadlock_after=settings.deadlock_after,
                stall_after=settings.stall_after,
                clearance=settings.clearance,
            ),
            roadmap=topology.roadmap(config),
            policy=traffic.TrafficPolicy(
                parking=tuple(settings.parking or [r.home for r in config.robots.fleet]),
                lookahead=settings.lookahead,
                detour_ratio=settings.detour_ratio,
                detour_slack=settings.detour_slack,
            ),
        )

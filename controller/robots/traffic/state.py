"""Traffic control's state: the robot orders it follows, the waits it shows, and placing robots.

The base of :class:`controller.robots.traffic.fleet.TrafficFleet`: what the rounds
(:mod:`controller.robots.traffic.rounds`) and the orders (:mod:`controller.robots.traffic.orders`)
share, so that each part reads and changes the same reservations. Every part logs under
``controller.robots.traffic.fleet``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from controller.line import topology
from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import traffic
from routing.roadmap import Roadmap

log = logging.getLogger("controller.robots.traffic.fleet")  # traffic control logs under one name


@dataclasses.dataclass
class _Job:
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
class _Notes:
    """What has been logged once and must not be logged again until it changes."""

    conflicts: set[str] = dataclasses.field(default_factory=set)
    off_base: set[str] = dataclasses.field(default_factory=set)
    long_waits: set[str] = dataclasses.field(default_factory=set)


class TrafficFleetState:
    """What traffic control knows: settings, the planner's state, the jobs and the waits."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        on_errand: Callable[[str, str], None],
        on_deadlock: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._fleet = fleet
        self._clock = clock
        self._metrics = metrics
        self._on_errand = on_errand  # (job id, serial): an evacuation was sent
        self._on_deadlock = on_deadlock  # (serial, why): cancel the robot's trip, requeue
        settings = config.robots.traffic
        self.enabled = settings.enabled
        self._tick = settings.tick
        self._wait_warning = settings.wait_warning
        self._deadlock_after = settings.deadlock_after
        self._stall_after = settings.stall_after
        self._best: dict[str, tuple[int, float]] = {}  # job: (shortest way left, reached at)
        # robots whose trip was cancelled to end a deadlock -> line time of the cancel
        self._giving_way: dict[str, float] = {}
        self._last_give_way = float("-inf")
        # robots that gave way stay out of work this long, so that they can be moved aside
        # instead of being sent straight back into the same jam
        self._resting: dict[str, float] = {}
        self.roadmap: Roadmap = topology.roadmap(config)
        self.policy = traffic.TrafficPolicy(
            parking=tuple(settings.parking or [r.home for r in config.robots.fleet]),
            lookahead=settings.lookahead,
            detour_ratio=settings.detour_ratio,
            detour_slack=settings.detour_slack,
        )
        self.state = traffic.TrafficState()
        self.jobs: dict[str, _Job] = {}
        self.waits: dict[str, WaitInfo] = {}
        self._lock = asyncio.Lock()
        self._dirty = True
        self._last_round = float("-inf")
        self._notes = _Notes()
        # robots traffic control must not send anywhere for now (being taken over at start)
        self.held: Callable[[str], bool] = lambda serial: False

    def _place(self, serial: str, node: str) -> bool:
        placed = traffic.place(self.state, serial, node)
        if isinstance(placed, traffic.Conflict):
            if serial not in self._notes.conflicts:
                self._notes.conflicts.add(serial)
                log.error(
                    "robot reports a node reserved for another robot; not used until it moves",
                    extra={"robot": serial, "node": node, "holder": placed.holder},
                )
            return False
        self._notes.conflicts.discard(serial)
        self.state = placed
        return True

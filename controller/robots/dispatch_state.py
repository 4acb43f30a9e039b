"""The state :class:`~controller.robots.dispatcher.Dispatcher` keeps and the helpers every part of
it uses.

:class:`DispatchState` holds the collaborators (fleet, sorter, inventory, history, the trips in
flight, the case picks), the roadmap and the line's figures taken from the line file, the queue of
orders not yet released, and the robots on their way to a charger. Its helpers are shared by the
release (:mod:`controller.robots.dispatcher`) and the robots' errands
(:mod:`controller.robots.errands`): recording why an order waits, and turning a path and its
actions into a VDA 5050-neutral robot order.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable

from controller.asrs.case_picks.picks import CasePicks
from controller.line import topology
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import ActionRef, InFlight, Trip
from controller.robots.queue import Pending, ReleaseQueue
from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import dispatch

Planned = tuple[Pending, list[dispatch.Pick]]


class DispatchState:
    """What the dispatcher knows, and the helpers that record and build its robot orders."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        history: History,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        sorter: dev.Sorter,
        flight: InFlight,
        inventory: Inventory,
        accepts_trips: Callable[[str], bool] = lambda serial: True,
        case_picks: CasePicks | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.history = history
        self.metrics = metrics
        self.fleet = fleet
        self.sorter = sorter
        self.flight = flight
        self.inventory = inventory
        self.accepts_trips = accepts_trips  # traffic control may hold a robot back for a while
        self.case_picks = case_picks  # B2B case lines served from the AS/RS
        self.roadmap = topology.roadmap(config)
        self.location_node = topology.location_nodes(config)
        self.case_qty = topology.case_quantities(config)
        self.induction_nodes = {i.node: i for i in config.robots.inductions}
        self.pending = ReleaseQueue()
        self.chargers = [c.node for c in config.robots.chargers]
        self.charging: dict[str, str] = {}  # robot -> charger node it goes to or charges at
        self.held = False  # an operator holds the line: no order is released
        # the order store cannot write (why): nothing is released and no waiting is recorded
        self.store_held: str | None = None
        # nothing is dispatched before this says so (the robots' take-over at start)
        self.ready: Callable[[], bool] = lambda: True
        self.before_round: Callable[[], Awaitable[None]] | None = None  # the take-over's poll
        self._continuation_failed: set[str] = set()  # robots told once
        self._return_refused: dict[str, str] = {}  # robot -> why its tote return was not sent
        self._charge_asked: dict[str, float] = {}  # robot -> when startCharging was last sent
        self._seq = 0
        self._wake = asyncio.Event()

    async def _wait(self, p: Pending, reason: str) -> None:
        if p.waiting == reason:
            return
        p.waiting = reason
        p.record = await self.history.record(p.record, "waiting", waiting_reason=reason)

    def _job_order(
        self,
        job_id: str,
        serial: str,
        path: list[str],
        trips: list[Trip],
        *,
        picks: bool = True,
        continued: bool = False,
    ) -> tuple[dev.RobotOrder, dict[str, ActionRef]]:
        """The VDA 5050-neutral robot order: each trip's picks at the first visit of their
        node (into its tote), then one drop per tote at the last node. ``continued``: only the
        picks not yet done, under action ids of their own (a job that finishes trips a robot
        began under an earlier job)."""
        model = self.config.robot_model(serial)
        first_visit: dict[str, int] = {}
        for i, node in enumerate(path):
            first_visit.setdefault(node, i)
        actions: dict[int, list[dev.RobotAction]] = {}
        refs: dict[str, ActionRef] = {}
        suffix = f"-{uuid.uuid4().hex[:6]}" if continued else ""
        for trip in trips if picks else []:
            for k, pk in enumerate(trip.picks):
                if continued and k in trip.picks_done:
                    continue
                action_id = f"{trip.trip_id}-pick-{k}{suffix}"
                params = {**model.pick.parameters, "loadId": trip.tote, "stationName": pk.location}
                actions.setdefault(first_visit[pk.node], []).append(
                    dev.RobotAction(
                        action_id, "pick", model.pick.blocking_type, tuple(params.items())
                    )
                )
                refs[action_id] = ActionRef(trip.trip_id, "pick", k)
        for trip in trips:
            action_id = f"{trip.trip_id}-drop-{uuid.uuid4().hex[:6]}"
            params = {**model.drop.parameters, "loadId": trip.tote}
            actions.setdefault(len(path) - 1, []).append(
                dev.RobotAction(action_id, "drop", model.drop.blocking_type, tuple(params.items()))
            )
            refs[action_id] = ActionRef(trip.trip_id, "drop")
        return self._route(job_id, path, actions), refs

    def _route(
        self, job_id: str, path: list[str], actions: dict[int, list[dev.RobotAction]]
    ) -> dev.RobotOrder:
        nodes = []
        for i, node_id in enumerate(path):
            n = self.roadmap.node(node_id)
            nodes.append(dev.RouteNode(node_id, n.x, n.y, n.map_id, tuple(actions.get(i, ()))))
        edges = tuple(
            dev.RouteEdge(a, b, self.roadmap.length(a, b), self.roadmap.edge(a, b).max_speed)
            for a, b in itertools.pairwise(path)
        )
        return dev.RobotOrder(job_id, tuple(nodes), edges)

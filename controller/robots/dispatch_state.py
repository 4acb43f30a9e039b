"""What the order release and the robots' errands share, and how their robot orders are built.

:class:`DispatchState` holds the collaborators (fleet, sorter, inventory, history, the trips in
flight, the case picks), the roadmap and the line's figures taken from the line file, the queue of
orders not yet released, the robots on their way to a charger, and whether the line is held.
:class:`RobotOrders` turns a path and the trips on it into a VDA 5050-neutral robot order.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Callable

from controller.asrs.case_picks.picks import CasePicks
from controller.line import topology
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.trips import ActionRef, InFlight, Trip
from controller.robots.queue import ReleaseQueue
from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import Induction, LineConfig, RobotModel
from kernel.metrics import Metrics
from routing.roadmap import Roadmap


@dataclasses.dataclass
class DispatchState:
    """What the dispatcher knows: its collaborators, the line's figures, the queue, the robots
    sent to charge, and the holds that stop the release."""

    config: LineConfig
    clock: Clock
    history: History
    metrics: Metrics
    fleet: dev.RobotFleet
    sorter: dev.Sorter
    flight: InFlight
    inventory: Inventory
    accepts_trips: Callable[[str], bool]  # traffic control may hold a robot back for a while
    case_picks: CasePicks | None  # B2B case lines served from the AS/RS
    roadmap: Roadmap
    location_node: dict[str, str]  # pick location -> its node
    case_qty: dict[str, int]  # SKU -> units in a case
    induction_nodes: dict[str, Induction]  # node -> the induction there
    chargers: list[str]  # charger nodes
    pending: ReleaseQueue = dataclasses.field(default_factory=ReleaseQueue)
    # robot -> charger node it goes to or charges at
    charging: dict[str, str] = dataclasses.field(default_factory=dict)
    held: bool = False  # an operator holds the line: no order is released
    # the order store cannot write (why): nothing is released and no waiting is recorded
    store_held: str | None = None
    # robot -> its model (the line file's look-up walks the whole fleet)
    models: dict[str, RobotModel] = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.models = robot_models(self.config)

    @classmethod
    def for_line(
        cls,
        config: LineConfig,
        clock: Clock,
        history: History,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        sorter: dev.Sorter,
        flight: InFlight,
        inventory: Inventory,
        accepts_trips: Callable[[str], bool],
        case_picks: CasePicks | None,
    ) -> DispatchState:
        """The state for ``config``'s roadmap, inductions and chargers, with nothing queued."""
        return cls(
            config=config,
            clock=clock,
            history=history,
            metrics=metrics,
            fleet=fleet,
            sorter=sorter,
            flight=flight,
            inventory=inventory,
            accepts_trips=accepts_trips,
            case_picks=case_picks,
            roadmap=topology.roadmap(config),
            location_node=topology.location_nodes(config),
            case_qty=topology.case_quantities(config),
            induction_nodes={i.node: i for i in config.robots.inductions},
            chargers=[c.node for c in config.robots.chargers],
        )


def robot_models(config: LineConfig) -> dict[str, RobotModel]:
    """Every robot's model, by serial number."""
    return {r.serial: config.robots.models[r.model] for r in config.robots.fleet}


class RobotOrders:
    """Builds the VDA 5050-neutral robot orders the release and the errands send."""

    def __init__(self, config: LineConfig, roadmap: Roadmap) -> None:
        self.config = config
        self.roadmap = roadmap
        self._models = robot_models(config)

    def for_trips(
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
        model = self._models[serial]
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
        return self.route(job_id, path, actions), refs

    def route(
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

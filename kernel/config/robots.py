"""The robot area of the line's configuration: the roadmap, storage locations, chargers,
induction points, the robot models and fleet, and the traffic control settings.

Part of the line's model; everything is importable from :mod:`kernel.config.model`.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, field_validator

from kernel.config.base import Id, NonNegFloat, PositiveFloat, Strict


class MapNode(Strict):
    id: Id
    x: float
    y: float
    map_id: Id | None = None  # defaults to robots.map_id


class MapEdge(Strict):
    start: Id
    end: Id
    bidirectional: bool = True
    max_speed: PositiveFloat | None = None


class StorageLocation(Strict):
    id: Id
    node: Id


class Charger(Strict):
    id: Id
    node: Id


class Induction(Strict):
    id: Id
    node: Id
    zone: Id  # conveyor zone the robot drops onto


class ActionTemplate(Strict):
    duration: NonNegFloat = 2.0
    blocking_type: Literal["NONE", "SOFT", "HARD"] = "HARD"
    parameters: dict[str, str | float | int | bool] = Field(default_factory=dict)


class PickTemplate(ActionTemplate):
    # what a robot of this model reports for a pick that found fewer units than asked for: the
    # failed pick's resultDescription, or the errorType of the error that references it. Only
    # these book a short pick; any other failed pick is a fault of the robot (the stock stays)
    shortage_results: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=lambda: ["stockShortage"]
    )


class RobotModel(Strict):
    manufacturer: Id
    speed: PositiveFloat = 1.5
    tote_capacity: Annotated[int, Field(ge=1, le=64)] = 1
    # an idle robot below charge_below percent goes to a charger and works again at charge_until
    charge_below: Annotated[float, Field(ge=0, le=100)] = 25.0
    charge_until: Annotated[float, Field(gt=0, le=100)] = 90.0
    pick: PickTemplate = PickTemplate()
    drop: ActionTemplate = ActionTemplate()
    # how far (metres, radians) the robot may stand from the first node of a new order; sent
    # as nodePosition.allowedDeviationXY/Theta. An idle robot farther than allowed_deviation_xy
    # from its last node is not given orders: it needs manual recovery onto a node
    allowed_deviation_xy: NonNegFloat = 0.5
    allowed_deviation_theta: Annotated[float, Field(ge=0, le=math.pi)] = 0.35

    @field_validator("pick", mode="before")
    @classmethod
    def _pick_from_plain_template(cls, value: object) -> object:
        """A plain action template is a pick template with the default shortage results."""
        if isinstance(value, ActionTemplate) and not isinstance(value, PickTemplate):
            return value.model_dump()
        return value


class Robot(Strict):
    serial: Id
    model: Id
    version: Literal["2.0.0", "2.1.0"] = "2.0.0"
    home: Id


class Traffic(Strict):
    """Node reservation for the robot fleet (see ``routing.traffic``)."""

    # off: every trip is released whole, for fleets whose own fleet manager keeps them apart
    enabled: bool = True
    # released nodes kept ahead of a robot; more runs smoother but makes deadlocks likelier
    lookahead: Annotated[int, Field(ge=1, le=50)] = 3
    # where idle robots that stand in the way are sent; empty: the robots' home nodes
    parking: list[Id] = Field(default_factory=list)
    detour_ratio: Annotated[float, Field(ge=1.0)] = 2.0  # accepted detour around an idle robot
    detour_slack: NonNegFloat = 12.0  # ... up to ratio x direct length + slack metres
    tick: PositiveFloat = 0.2  # line seconds between checks of the robots' positions
    # a robot driving on along its base frees the node it last reached once it reports a
    # position at least this many metres from it (its footprint has left the node), so the
    # next robot need not wait until it reaches the next node; null: freed only then
    clearance: PositiveFloat | None = 1.0
    wait_warning: PositiveFloat = 60.0  # line seconds a robot waits before it is logged
    # robots waiting on each other in a cycle this long: the lowest-priority one's trip is
    # cancelled and its orders go back to the queue, so the others can pass
    deadlock_after: PositiveFloat = 30.0
    # a robot whose remaining way has not got shorter for this long (it keeps stepping aside
    # and coming back) gives way the same way
    stall_after: PositiveFloat = 120.0


class RobotArea(Strict):
    map_id: Id = "floor-1"
    nodes: list[MapNode]
    edges: list[MapEdge]
    storage_locations: list[StorageLocation]
    chargers: list[Charger] = Field(default_factory=list)
    inductions: list[Induction]
    models: dict[Id, RobotModel]
    fleet: list[Robot]
    # line seconds a robot may stay unavailable before its trip is given to another robot
    failure_grace: PositiveFloat = 20.0
    # a robot whose actions failed this many times in a row (faults, not stock shortages) gets
    # no new trip for fault_hold line seconds
    fault_limit: Annotated[int, Field(ge=1)] = 3
    fault_hold: PositiveFloat = 600.0
    # line seconds the controller waits at start for every reachable robot's first state (its
    # take-over) before it dispatches anything; robots heard from later are taken over then
    takeover_wait: PositiveFloat = 15.0
    # a tote a robot carries at start that no trip accounts for: dropped at the nearest
    # induction (sorted to the reject chute), or held: the robot gets no work until it is
    # unloaded by hand
    stray_totes: Literal["induction", "hold"] = "induction"
    traffic: Traffic = Traffic()
    # new orders (not updates of the current order) master control sends one robot per line
    # minute at most; more are refused and the order waits
    max_orders_per_minute: Annotated[int, Field(ge=1, le=600)] = 20
    # after a robot rejects an order, no new order for rejection_backoff line seconds, doubled
    # with each further rejection in a row up to rejection_backoff_max ...
    rejection_backoff: PositiveFloat = 5.0
    rejection_backoff_max: PositiveFloat = 120.0
    # ... and after this many rejections in a row the robot needs an operator
    max_rejections: Annotated[int, Field(ge=1, le=100)] = 5
    # line seconds an instant action may go without an action state before it counts as failed
    action_deadline: PositiveFloat = 10.0
    # cancelOrder attempts (the first and its retries) before the robot needs an operator
    cancel_attempts: Annotated[int, Field(ge=1, le=20)] = 3

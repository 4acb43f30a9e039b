"""``GET /v1/line``: what technicians see of the line (operator commands: api.routes_operate)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from api import examples
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.line_feed import DEFAULT_INTERVAL, MAX_INTERVAL, MIN_INTERVAL, LineFeed, Rendered
from api.line_feed import line_stream as stream_line
from api.problems import problem_responses
from api.schemas import ControllerOut
from api.sse import EventStreamResponse, StreamExample, event_stream_responses
from api.streams import until_stopping
from controller.service import line_view as views

router = APIRouter(prefix="/v1", tags=["line"])

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]


class TrafficWaitOut(BaseModel):
    node: str
    holder: str = Field(description="The robot that holds the node.")
    seconds: float = Field(description="Line seconds waited so far.")


class RobotTrafficOut(BaseModel):
    known: bool = Field(
        description="The robot has reported a node that traffic control could reserve for it."
    )
    base: list[str] = Field(
        default_factory=list,
        description="Nodes reserved for the robot: where it stands and its released way ahead.",
    )
    horizon: list[str] = Field(
        default_factory=list, description="The rest of its planned way, not yet released."
    )
    waiting_for: TrafficWaitOut | None = None


class CarriedOut(BaseModel):
    order_id: str
    tote: str = Field(description="The order's tote on the robot.")


class RobotOut(BaseModel):
    serial: str
    manufacturer: str
    version: str
    connection: str
    operating_mode: str | None
    available: bool
    busy: bool = Field(description="Carrying out a trip for an order.")
    order_id: str | None = Field(description="The VDA 5050 order the robot reports.")
    last_node_id: str | None
    x: float | None
    y: float | None
    driving: bool
    battery: float | None = Field(description="Battery charge in percent.")
    charging: bool | None = Field(description="On a charger and charging.")
    paused: bool = Field(default=False, description="Paused by an operator (`startPause`).")
    errors: list[str]
    factsheet_problems: list[str] = Field(
        description="Where the robot's factsheet does not fit the configured action templates."
    )
    traffic: RobotTrafficOut | None = Field(
        default=None, description="Node reservations; absent when traffic control is off."
    )
    fault_hold_seconds: float | None = Field(
        default=None,
        description="Line seconds the robot still gets no new trip after `robots.fault_limit` "
        "failed actions in a row; null when it is not held.",
    )
    attention: str | None = Field(
        default=None,
        description="Why the robot needs an operator before it works again: it stands off its "
        "last node or is not localised (manual recovery), or it rejected orders or cancels "
        "again and again. Cleared when it is back on a node, reconnects, leaves automatic "
        "mode and comes back, or is resumed (`POST /v1/robots/{serial}/resume`).",
    )
    order_hold: str | None = Field(
        default=None,
        description="Why no new order may be sent to it right now (backing off after a "
        "rejected order, order rate cap); clears by itself.",
    )
    carrying: list[CarriedOut] = Field(
        default_factory=list,
        description="The orders of the trips the robot is on: their totes are on it, or it "
        "is on its way to pick into them.",
    )


class ChuteOut(BaseModel):
    chute_id: str
    full: bool
    enabled: bool
    count: int


class ZoneOut(BaseModel):
    zone_id: str
    running: bool | None = Field(
        description="The zone's belt runs, as the PLC reports it (false: stopped or held); "
        "null while the conveyor is not connected or does not report it."
    )
    occupied: bool | None = Field(
        description="The zone's photo-eye: an item's front is in the zone; null when unknown."
    )
    item_id: str | None = Field(description="The conveyor's tracking id of the leading item.")
    tote: str | None = Field(description="That item's tote, as the controller tracks it.")
    order_id: str | None = Field(description="The order the tote belongs to.")
    chute: str | None = Field(description="The chute the item is to be diverted to.")
    jammed: bool = Field(description="The zone reports a jam.")
    held: bool = Field(
        description="A jam holds the zone (the jammed zone and the `conveyor.jam_hold_zones` "
        "zones before it) while the conveyor runs."
    )


class ConveyorOut(BaseModel):
    conveyor_id: str
    connected: bool
    state: str = Field(description="PackML state, Unknown while not connected.")
    available: bool
    chutes: list[ChuteOut]
    jammed_zones: list[str] = Field(
        default_factory=list,
        description="Zones reporting a jam; the PLC holds the zones upstream of each.",
    )
    zones: list[ZoneOut] = Field(default_factory=list, description="Every zone in loop order.")


class CraneTransportsOut(BaseModel):
    aisle: str
    waiting_stores: int = Field(description="Totes at the P&D input waiting for a store.")
    waiting_retrieves: int
    check: int = Field(description="Transports lost to a power loss, waiting for the contents.")
    pending: int = Field(description="Commands written, not yet accepted by the crane.")
    sent: int = Field(description="Commands accepted by the crane, not finished.")
    fault_hold: bool
    commands: list[dict[str, Any]]


class CraneOut(BaseModel):
    crane: str
    aisle: str
    connected: bool
    state: str = Field(
        description="Idle, Moving, PickingUp, Depositing or Fault; Unknown while not connected."
    )
    available: bool
    x: float | None = Field(description="Position along the aisle from the P&D point (m).")
    y: float | None = Field(description="Height above the P&D point (m).")
    current_command: str
    queue_length: int
    fault: str
    pd_input: list[str] = Field(
        default_factory=list,
        description="Totes waiting at the aisle's P&D input (to be stored), oldest first.",
    )
    transports: CraneTransportsOut | None = Field(
        default=None, description="The controller's open AS/RS transports of this aisle."
    )


class LineHeldOut(BaseModel):
    by: str = Field(description="The name of the token that held the line.")
    since: datetime


class WaitingOrderOut(BaseModel):
    order_id: str
    type: str = Field(description="`b2c` or `b2b`.")
    priority: int
    due_at: datetime
    created_at: datetime
    destination: str
    waiting_reason: str | None = Field(
        description="Why it waits, as `GET /v1/orders/{order_id}` shows it; null before the "
        "dispatcher first looked at it."
    )


class OrdersSummaryOut(BaseModel):
    by_status: dict[str, int] = Field(
        description="Orders in the store by status, every status listed (terminal ones too)."
    )
    counted_at: datetime | None = Field(
        description="When the store was last counted (every 2 s); null before the first count."
    )
    queued: int = Field(description="Accepted orders not yet released, counted now.")
    oldest_waiting: list[WaitingOrderOut] = Field(
        description="The oldest of the queued orders (up to 10), oldest first."
    )


class LineOut(BaseModel):
    line_id: str
    at: datetime | None = Field(
        default=None,
        description="When the view was taken, on the line's clock (order times are on it too).",
    )
    conveyors: list[ConveyorOut]
    cranes: list[CraneOut] = Field(
        default_factory=list, description="AS/RS stacker cranes, one per aisle."
    )
    robots: list[RobotOut]
    orders_queued: int = Field(description="Accepted orders not yet released to a robot.")
    orders: OrdersSummaryOut | None = Field(
        default=None,
        description="Orders by status and the oldest waiting ones; null on a standby.",
    )
    deadlines: dict[str, float] = Field(
        default_factory=dict,
        description="The deadline of each stage in line seconds (the line file's `deadlines`, "
        "or derived from the line): scan, sort, robot_step, crane_command, station.",
    )
    held: LineHeldOut | None = Field(
        default=None,
        description="Set while an operator holds the line (`POST /v1/line/hold`): by whom and "
        "since when; null when the line is not held.",
    )
    store_hold: str | None = Field(
        default=None,
        description="Set while the order store cannot write (or too many order events wait to "
        "be written): why. No order is released and no crane command sent meanwhile; it ends "
        "by itself when the store writes again.",
    )
    controller: ControllerOut = Field(
        description="This controller's role. A standby commands no device: its conveyors, "
        "cranes and robots are empty; the active controller's API (`controller.active."
        "api_url`) shows the line."
    )


@router.get(
    "/line",
    response_model=LineOut,
    summary="The line now",
    description=(
        "Conveyor PackML state and chutes, the AS/RS cranes, and every robot with its availability."
    ),
    responses={**examples.json_example(examples.LINE), **problem_responses(401, 403)},
)
async def line(backend: Backend, _: Reader) -> LineOut:
    view = backend.line_view()
    return LineOut.model_validate(view)


# --- the plan ---------------------------------------------------------------------------------


class PlanNodeOut(BaseModel):
    id: str
    x: float = Field(description="Metres, the map's frame.")
    y: float
    locations: int = Field(description="Pick locations (storage locations) at the node.")


class PlanEdgeOut(BaseModel):
    start: str
    end: str
    bidirectional: bool


class PlanChargerOut(BaseModel):
    id: str
    node: str


class PlanInductionOut(BaseModel):
    id: str
    node: str
    zone: str = Field(description="The conveyor zone robots drop onto here.")


class PlanRobotOut(BaseModel):
    serial: str
    model: str
    version: str
    home: str


class PlanRobotsOut(BaseModel):
    map_id: str
    nodes: list[PlanNodeOut]
    edges: list[PlanEdgeOut]
    chargers: list[PlanChargerOut]
    inductions: list[PlanInductionOut]
    parking: list[str] = Field(description="Nodes traffic control parks idle robots on.")
    fleet: list[PlanRobotOut]


class PlanZoneOut(BaseModel):
    id: str
    length: float = Field(description="Metres.")


class PlanScannerOut(BaseModel):
    id: str
    zone: str = Field(description="The scanner reads as items leave this zone.")


class PlanDivertOut(BaseModel):
    id: str
    zone: str = Field(description="The divert fires as items leave this zone.")
    chute: str


class PlanChuteOut(BaseModel):
    id: str
    kind: str = Field(description="`carrier`, `b2b`, `reject` or `replenishment`.")
    capacity: int = Field(description="Totes the chute holds.")


class PlanConveyorOut(BaseModel):
    id: str
    belt_speed: float = Field(description="m/s.")
    zones: list[PlanZoneOut] = Field(
        description="In loop order; after the last zone items return to the first."
    )
    scanner: PlanScannerOut
    sorter: str
    diverts: list[PlanDivertOut]
    chutes: list[PlanChuteOut]


class PlanAisleOut(BaseModel):
    id: str
    bays: int
    levels: int
    sides: int
    bay_width: float = Field(description="Metres.")
    level_height: float = Field(description="Metres.")
    pd_zone: str | None = Field(description="The conveyor zone the P&D point feeds.")
    crane: str


class PlanAsrsOut(BaseModel):
    aisles: list[PlanAisleOut]


class PlanOut(BaseModel):
    line_id: str
    name: str
    robots: PlanRobotsOut
    conveyor: PlanConveyorOut
    asrs: PlanAsrsOut


@router.get(
    "/line/plan",
    response_model=PlanOut,
    summary="The line's layout",
    description=(
        "What the line file lays out, for drawing the line: the robots' map (nodes with "
        "coordinates, edges, chargers, inductions, parking nodes, the fleet), the conveyor "
        "loop (zones in travel order, scanner, diverts, chutes) and the AS/RS aisles. It does "
        "not change while the controller runs; `GET /v1/line` and `GET /v1/line/stream` give "
        "the live state."
    ),
    responses=problem_responses(401, 403),
)
async def line_plan(backend: Backend, _: Reader) -> PlanOut:
    return PlanOut.model_validate(views.plan(backend.config))


# --- the live stream --------------------------------------------------------------------------


# the clock readings of a view, which differ on every build: not a change of the line
CLOCK_FIELDS: dict[str, Any] = {"at": True, "orders": {"counted_at": True}}


def render_line(backend: ApiBackend) -> Rendered:
    """``GET /v1/line``'s document as JSON (what the stream sends), and what of it counts as a
    change."""
    view = LineOut.model_validate(backend.line_view())
    return Rendered(key=view.model_dump_json(exclude=CLOCK_FIELDS), data=view.model_dump_json())


def get_line_feed(request: Request) -> LineFeed:
    """The app's shared :class:`~api.line_feed.LineFeed` (a FastAPI dependency)."""
    feed: LineFeed = request.state.line_feed
    return feed


Feed = Annotated[LineFeed, Depends(get_line_feed)]


@router.get(
    "/line/stream",
    summary="The line now, live (Server-Sent Events)",
    description=(
        "A `text/event-stream` of the line view: an `event: line` message whose `data` is "
        "the document `GET /v1/line` answers, at once and then whenever it changed, looked for "
        "every `interval` seconds (every message a whole snapshot: a client that falls behind "
        "skips snapshots, one that reconnects needs nothing else). A comment line is sent "
        "every 15 s when nothing changes. Needs scope `orders:read` unless reads are open. The "
        "live page `/ui` draws it."
    ),
    response_class=EventStreamResponse,
    responses={
        **event_stream_responses(
            LineOut,
            description="The line view now, then each time it changed.",
            examples={"line": StreamExample("line", examples.LINE, summary="The line now")},
            events=["line"],
        ),
        **problem_responses(401, 403, 422),
    },
)
async def line_stream(
    request: Request,
    feed: Feed,
    _: Reader,
    interval: Annotated[
        float,
        Query(
            ge=MIN_INTERVAL,
            le=MAX_INTERVAL,
            description="Wall seconds between looks for a change.",
        ),
    ] = DEFAULT_INTERVAL,
) -> EventStreamResponse:
    return EventStreamResponse(until_stopping(request, stream_line(feed, interval)))

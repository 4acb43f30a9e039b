"""``GET /v1/line``: what technicians see of the line (operator commands: api.routes_operate)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from api import examples
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import problem_responses
from api.schemas import ControllerOut

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


class ChuteOut(BaseModel):
    chute_id: str
    full: bool
    enabled: bool
    count: int


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


class LineOut(BaseModel):
    line_id: str
    conveyors: list[ConveyorOut]
    cranes: list[CraneOut] = Field(
        default_factory=list, description="AS/RS stacker cranes, one per aisle."
    )
    robots: list[RobotOut]
    orders_queued: int = Field(description="Accepted orders not yet released to a robot.")
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

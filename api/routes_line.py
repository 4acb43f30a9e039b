"""``/v1/line``: what technicians see of the line, and operator commands for robots."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import ProblemError, problem_responses
from devices.errors import CommandRejected, DeviceError

router = APIRouter(prefix="/v1", tags=["line"])

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]


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


class LineOut(BaseModel):
    line_id: str
    conveyors: list[ConveyorOut]
    cranes: list[CraneOut] = Field(
        default_factory=list, description="AS/RS stacker cranes, one per aisle."
    )
    robots: list[RobotOut]
    orders_queued: int = Field(description="Accepted orders not yet released to a robot.")


@router.get(
    "/line",
    response_model=LineOut,
    summary="The line now",
    description=(
        "Conveyor PackML state and chutes, the AS/RS cranes, and every robot with its availability."
    ),
    responses=problem_responses(401, 403),
)
async def line(backend: Backend, _: Reader) -> LineOut:
    view = backend.line_view()
    return LineOut.model_validate(view)


RobotId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Command = Literal["pause", "resume", "cancel"]


class CommandOut(BaseModel):
    serial: str
    command: Command
    action_id: str


@router.post(
    "/robots/{serial}/{command}",
    response_model=CommandOut,
    status_code=202,
    summary="Pause, resume or cancel a robot's work",
    description=(
        "`pause`/`resume` send the VDA 5050 instant action `startPause`/`stopPause`; the "
        "robot's answer shows in its state (`GET /v1/line`). `cancel` sends `cancelOrder`: the "
        "orders the robot carried go back to the queue for another robot, and totes with "
        "picked units are brought back to the reject chute."
    ),
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def robot_command(
    serial: RobotId, command: Command, backend: Backend, _: Operator
) -> CommandOut:
    if serial not in {r.serial for r in backend.config.robots.fleet}:
        raise ProblemError(404, f"No robot {serial} on this line", kind="unknown-robot")
    try:
        action_id = await backend.robot_command(serial, command)
    except DeviceError as exc:
        raise ProblemError(503, f"Robot {serial} cannot take the command: {exc}") from None
    return CommandOut(serial=serial, command=command, action_id=action_id)


ConveyorId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
PackMLCommand = Literal[
    "start", "stop", "hold", "unhold", "reset", "suspend", "unsuspend", "abort", "clear"
]


class ConveyorCommandOut(BaseModel):
    conveyor_id: str
    command: PackMLCommand
    state: str = Field(description="The PackML state after the command.")


@router.post(
    "/conveyors/{conveyor_id}/{command}",
    response_model=ConveyorCommandOut,
    summary="Send a PackML command to a conveyor",
    description=(
        "`start`, `stop`, `hold`, `unhold`, `reset`, `suspend`, `unsuspend`, `abort` and "
        "`clear` call the PackML method of the conveyor unit (docs/opcua-model.md) and answer "
        "with the state it is in afterwards. A command the state machine does not accept in "
        "its current state is refused with `409` and changes nothing."
    ),
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def conveyor_command(
    conveyor_id: ConveyorId, command: PackMLCommand, backend: Backend, _: Operator
) -> ConveyorCommandOut:
    if conveyor_id != backend.config.conveyor.id:
        raise ProblemError(404, f"No conveyor {conveyor_id} on this line", kind="unknown-conveyor")
    try:
        state = await backend.conveyor_command(conveyor_id, command.capitalize())
    except CommandRejected as exc:
        raise ProblemError(
            409, f"Conveyor {conveyor_id} refused {command}: {exc}", kind="invalid-state"
        ) from None
    except DeviceError as exc:
        raise ProblemError(503, f"Conveyor {conveyor_id} cannot take the command: {exc}") from None
    return ConveyorCommandOut(conveyor_id=conveyor_id, command=command, state=state)

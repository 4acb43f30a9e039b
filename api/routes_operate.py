"""Operator commands (scope ``line:operate``): hold and resume the line, robot and conveyor
commands, jogging a conveyor zone, checking the devices. Every call, refused or not, is written
to the audit log (:mod:`api.audit`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.audit import AuditedRoute, audited, note
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import ProblemError, problem_responses
from api.routes_line import LineHeldOut
from controller.service.hold import HoldOutcome
from controller.store.audit import AuditResult
from devices.errors import CommandRejected, DeviceError

router = APIRouter(prefix="/v1", tags=["line"], route_class=AuditedRoute)

Backend = Annotated[ApiBackend, Depends(get_backend)]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
RobotSerial = Annotated[
    str,
    Path(pattern=DEVICE_ID_PATTERN, description="The robot's serial number (`robots.fleet`)."),
]
ConveyorId = Annotated[
    str, Path(pattern=DEVICE_ID_PATTERN, description="The conveyor's id (`conveyor.id`).")
]
ZoneId = Annotated[
    str, Path(pattern=DEVICE_ID_PATTERN, description="The zone's id (`conveyor.zones`).")
]


@contextmanager
def device_answers(device: str, what: str) -> Iterator[None]:
    """A device's refusal as 409, a device that cannot be reached as 503."""
    try:
        yield
    except CommandRejected as exc:
        raise ProblemError(409, f"{device} refused {what}: {exc}", kind="invalid-state") from None
    except DeviceError as exc:
        raise ProblemError(503, f"{device} cannot take {what}: {exc}") from None


AUDITED = "Needs scope `line:operate`; every call, refused or not, is in `GET /v1/audit`."


# --- line hold --------------------------------------------------------------------------------


class DeviceOutcomeOut(BaseModel):
    device: str = Field(description="`conveyor:<id>` or `robot:<serial>`.")
    result: Literal["ok", "refused", "unavailable"] = Field(
        description="`ok`: commanded, or already held (resumed); `refused`: the device "
        "answered and refused (for example a conveyor that is stopped); `unavailable`: not "
        "connected."
    )
    detail: str


class HoldOut(BaseModel):
    held: LineHeldOut | None = Field(description="The hold now; null once resumed.")
    changed: bool = Field(description="False when the line already was held (resumed).")
    complete: bool = Field(description="Every device did its part.")
    devices: list[DeviceOutcomeOut]


HOLD_EXAMPLE = {
    "held": {"by": "commissioning", "since": "2030-06-03T08:40:00+00:00"},
    "changed": True,
    "complete": False,
    "devices": [
        {"device": "conveyor:C1", "result": "ok", "detail": "Hold: Held"},
        {"device": "robot:R01", "result": "ok", "detail": "pause sent (pause-5f1c0a2b9d3e)"},
        {"device": "robot:R02", "result": "unavailable", "detail": "robot R02 is OFFLINE"},
    ],
}


def _hold_answer(request: Request, outcome: HoldOutcome) -> HoldOut:
    if not outcome.complete:
        missing = [f"{d.device} {d.result.value}" for d in outcome.devices if d.result != "ok"]
        note(request, AuditResult.FAILED, "not done on: " + ", ".join(missing))
    return HoldOut.model_validate(outcome.document())


@router.post(
    "/line/hold",
    response_model=HoldOut,
    summary="Hold the line",
    description=(
        "Holds the conveyor (PackML `Hold`), pauses every robot (VDA 5050 `startPause`) and "
        "releases no new order (orders waiting show `waiting_reason` `line_held`). Devices "
        "that cannot take the command (offline, or in a state that refuses it) are listed with "
        "their result and the rest is held all the same (`complete` false); holding again "
        "commands what is not held yet and answers `200` with the hold unchanged. The hold "
        "outlives a restart of the controller. " + AUDITED
    ),
    responses={
        200: {"content": {"application/json": {"example": HOLD_EXAMPLE}}},
        **problem_responses(401, 403, 503),
    },
)
@audited("line.hold", "line")
async def hold(request: Request, backend: Backend, who: Operator) -> HoldOut:
    return _hold_answer(request, await backend.line_hold(who.name))


@router.post(
    "/line/resume",
    response_model=HoldOut,
    summary="Resume a held line",
    description=(
        "Unholds the conveyor (PackML `Unhold`), ends the robots' pause (`stopPause`) and "
        "releases orders again; per device as for `hold`. Resuming a line that is not held "
        "answers `200` with `changed` false. " + AUDITED
    ),
    responses=problem_responses(401, 403, 503),
)
@audited("line.resume", "line")
async def resume(request: Request, backend: Backend, who: Operator) -> HoldOut:
    return _hold_answer(request, await backend.line_resume(who.name))


# --- robots -----------------------------------------------------------------------------------


RobotCommand = Literal["pause", "resume", "cancel"]


class CommandOut(BaseModel):
    serial: str
    command: RobotCommand
    action_id: str


@router.post(
    "/robots/{serial}/{command}",
    response_model=CommandOut,
    status_code=202,
    summary="Pause, resume or cancel a robot's work",
    description=(
        "`pause`/`resume` send the VDA 5050 instant action `startPause`/`stopPause`; the "
        "robot's answer shows in its state (`GET /v1/line`). `resume` also puts a robot that "
        "needed an operator (`attention`: orders or cancels rejected again and again) back "
        "into use. `cancel` sends `cancelOrder`: the "
        "orders the robot carried go back to the queue for another robot, and totes with "
        "picked units are brought back to the reject chute. " + AUDITED
    ),
    responses=problem_responses(401, 403, 404, 422, 503),
)
@audited("robot.{command}", "{serial}")
async def robot_command(
    serial: RobotSerial,
    command: Annotated[RobotCommand, Path(description="`pause`, `resume` or `cancel`.")],
    backend: Backend,
    _: Operator,
) -> CommandOut:
    if serial not in {r.serial for r in backend.config.robots.fleet}:
        raise ProblemError(404, f"No robot {serial} on this line", kind="unknown-robot")
    with device_answers(f"Robot {serial}", command):
        action_id = await backend.robot_command(serial, command)
    return CommandOut(serial=serial, command=command, action_id=action_id)


# --- conveyors --------------------------------------------------------------------------------


PackMLCommand = Literal[
    "start", "stop", "hold", "unhold", "reset", "suspend", "unsuspend", "abort", "clear"
]


class ConveyorCommandOut(BaseModel):
    conveyor_id: str
    command: PackMLCommand
    state: str = Field(description="The PackML state after the command.")


def _known_conveyor(backend: ApiBackend, conveyor_id: str) -> None:
    if conveyor_id != backend.config.conveyor.id:
        raise ProblemError(404, f"No conveyor {conveyor_id} on this line", kind="unknown-conveyor")


@router.post(
    "/conveyors/{conveyor_id}/{command}",
    response_model=ConveyorCommandOut,
    summary="Send a PackML command to a conveyor",
    description=(
        "`start`, `stop`, `hold`, `unhold`, `reset`, `suspend`, `unsuspend`, `abort` and "
        "`clear` call the PackML method of the conveyor unit (docs/opcua-model.md) and answer "
        "with the state it is in afterwards. A command the state machine does not accept in "
        "its current state is refused with `409` and changes nothing. " + AUDITED
    ),
    responses=problem_responses(
        401, 403, 404, 409, 422, 503, described={409: "The PackML state refuses the command."}
    ),
)
@audited("conveyor.{command}", "{conveyor_id}")
async def conveyor_command(
    conveyor_id: ConveyorId,
    command: Annotated[PackMLCommand, Path(description="The PackML command to send.")],
    backend: Backend,
    _: Operator,
) -> ConveyorCommandOut:
    _known_conveyor(backend, conveyor_id)
    with device_answers(f"Conveyor {conveyor_id}", command):
        state = await backend.conveyor_command(conveyor_id, command.capitalize())
    return ConveyorCommandOut(conveyor_id=conveyor_id, command=command, state=state)


class JogIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"speed": 0.3, "seconds": 2.0}]},
    )

    speed: float = Field(gt=0, strict=True, description="Belt speed of the zone (m/s).")
    seconds: float = Field(default=2.0, gt=0, strict=True, description="How long the zone runs.")


class JogOut(BaseModel):
    conveyor_id: str
    zone_id: str
    speed: float
    seconds: float


@router.post(
    "/conveyors/{conveyor_id}/zones/{zone_id}/jog",
    response_model=JogOut,
    status_code=202,
    summary="Jog one conveyor zone",
    description=(
        "Runs one zone at `speed` m/s for `seconds` (the PLC's `Jog` method), for "
        "commissioning and clearing a zone by hand; the PLC stops it afterwards. Refused with "
        "`409` when the conveyor does not allow it (unit in `Execute`: hold or stop it first; "
        "zone jammed; speed or time beyond the PLC's limits). " + AUDITED
    ),
    responses=problem_responses(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        503,
        described={404: "No such conveyor or zone.", 409: "The conveyor refused the jog."},
    ),
)
@audited("conveyor.jog", "{conveyor_id}/{zone_id}")
async def jog(
    conveyor_id: ConveyorId,
    zone_id: ZoneId,
    body: Annotated[JogIn, Body()],
    backend: Backend,
    _: Operator,
) -> JogOut:
    _known_conveyor(backend, conveyor_id)
    if zone_id not in {z.id for z in backend.config.conveyor.zones}:
        raise ProblemError(404, f"No zone {zone_id} on conveyor {conveyor_id}", kind="unknown-zone")
    with device_answers(f"Conveyor {conveyor_id}", f"jog of {zone_id}"):
        await backend.conveyor_jog(conveyor_id, zone_id, body.speed, body.seconds)
    return JogOut(conveyor_id=conveyor_id, zone_id=zone_id, speed=body.speed, seconds=body.seconds)


# --- devices check ----------------------------------------------------------------------------


class DevicesCheckOut(BaseModel):
    ok: bool = Field(description="Every device has everything expected, of the right type.")
    devices: list[dict[str, Any]] = Field(
        description="One report per device, as `linectl devices check --json` prints it: "
        "`device`, `address`, `ok`, `facts`, `found`, `findings[]` (`item`, `status`: found, "
        "missing, wrong type, invalid, offline, unreachable, refused, note; `detail`)."
    )


@router.post(
    "/devices/check",
    response_model=DevicesCheckOut,
    summary="Check every device",
    description=(
        "Browses the conveyor's and the cranes' OPC UA servers for every node the line file "
        "implies and listens for each robot's `connection`, `state` and `factsheet` messages "
        "for `wait` seconds, as `linectl devices check` does, from the controller itself. "
        "Answers `200` with `ok` false when something is missing. " + AUDITED
    ),
    responses=problem_responses(401, 403, 422),
)
@audited("devices.check", "line")
async def devices_check(
    request: Request,
    backend: Backend,
    _: Operator,
    wait: Annotated[float, Query(ge=0.1, le=30, description="Seconds to listen to robots.")] = 3.0,
    connect_timeout: Annotated[
        float, Query(ge=0.1, le=30, description="Seconds to reach an OPC UA server.")
    ] = 5.0,
) -> DevicesCheckOut:
    reports = await backend.devices_check(wait, connect_timeout)
    ok = all(r.ok for r in reports)
    if not ok:
        note(
            request,
            AuditResult.FAILED,
            "problems: " + ", ".join(r.device for r in reports if not r.ok),
        )
    return DevicesCheckOut(ok=ok, devices=[r.as_dict() for r in reports])

"""``/v1/stations``: value-added stations read their B2B tasks and report verification counts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.audit import AuditedRoute, audited
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import ProblemError, problem_responses
from controller.asrs.commands import AsrsRequestError
from controller.asrs.returns import ReturnTote
from controller.line.stations import StationTask, UnknownTask
from controller.orders.model import ORDER_ID_PATTERN, Handling, OrderStatus
from routing.verification import Counted

router = APIRouter(prefix="/v1/stations", tags=["stations"], route_class=AuditedRoute)

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]
StationId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$", description="The station's chute id."),
]
OrderId = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="The order's id.")]
ToteId = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="The tote's id.")]


class ExpectedLineOut(BaseModel):
    line_id: str
    sku: str
    uom: str
    quantity: int = Field(
        description="Units that should be in the tote; cases for a line served from AS/RS totes."
    )


class StationTaskOut(BaseModel):
    station_id: str
    order_id: str
    tote: str = Field(description="The first of `totes`.")
    totes: list[str] = Field(
        description="Every tote of the order at the station: the robot's tote first, then the "
        "AS/RS totes its case lines are taken from."
    )
    handling: Handling | None = Field(description="Label template, packaging, instructions.")
    lines: list[ExpectedLineOut]
    case_lines: list[str] = Field(
        description="Lines counted in cases taken from the AS/RS totes; the totes go back "
        "to the rack afterwards (see the station's returns)."
    )
    arrived_at: datetime

    @classmethod
    def of(cls, task: StationTask) -> StationTaskOut:
        return cls(
            station_id=task.station_id,
            order_id=task.order_id,
            tote=task.tote,
            totes=list(task.totes),
            handling=task.handling,
            lines=[ExpectedLineOut(**vars(ln)) for ln in task.lines],
            case_lines=sorted(task.case_lines),
            arrived_at=task.arrived_at,
        )


class CountedLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: Annotated[str, Field(min_length=1, max_length=64)]
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]


class VerificationIn(BaseModel):
    """What the station counted, line by line (scan check of every unit or case)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "operator": "vas-operator-7",
                    "lines": [{"line_id": "10", "sku": "SKU-0003", "quantity": 24}],
                }
            ]
        },
    )

    operator: Annotated[str, Field(min_length=1, max_length=64)] = "unknown"
    lines: Annotated[list[CountedLine], Field(max_length=200)]


class VerificationOut(BaseModel):
    order_id: str
    status: OrderStatus = Field(description="completed, or exception on any mismatch.")
    mismatches: list[str]


class ReturnToteOut(BaseModel):
    tote: str
    station: str
    aisle: str = Field(
        description="The aisle whose P&D input the tote is to be sent to (empty when no "
        "aisle can take it now)."
    )
    sent: bool = Field(description="The operator has put it on the return conveyor.")

    @classmethod
    def of(cls, r: ReturnTote) -> ReturnToteOut:
        return cls(tote=r.tote, station=r.station, aisle=r.aisle, sent=r.sent)


def _station(backend: ApiBackend, station_id: str) -> None:
    if station_id not in {c.id for c in backend.config.conveyor.sorter.chutes}:
        raise ProblemError(404, f"No station {station_id} on this line", kind="unknown-station")


@router.get(
    "/{station_id}/tasks",
    response_model=list[StationTaskOut],
    summary="Open tasks at a station",
    description="B2B totes waiting at the station for packing and verification, oldest first.",
    responses=problem_responses(401, 403, 404, 422),
)
async def station_tasks(station_id: StationId, backend: Backend, _: Reader) -> list[StationTaskOut]:
    _station(backend, station_id)
    return [StationTaskOut.of(t) for t in backend.stations.at(station_id)]


@router.post(
    "/{station_id}/tasks/{order_id}/verification",
    response_model=VerificationOut,
    summary="Report what the station counted",
    description=(
        "Every expected line must be counted with its SKU and exact quantity. A match "
        "completes the order; any mismatch puts it into `exception` with the reason."
    ),
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
)
@audited("station.verification", "{station_id}/{order_id}")
async def verify(
    station_id: StationId, order_id: OrderId, body: VerificationIn, backend: Backend, _: Operator
) -> VerificationOut:
    _station(backend, station_id)
    counted = [Counted(ln.line_id, ln.sku, ln.quantity) for ln in body.lines]
    try:
        result = await backend.stations.verify(station_id, order_id, counted, body.operator)
    except UnknownTask as exc:
        raise ProblemError(404, str(exc), kind="unknown-task") from None
    return VerificationOut(
        order_id=order_id, status=result.order.status, mismatches=list(result.mismatches)
    )


@router.get(
    "/{station_id}/returns",
    response_model=list[ReturnToteOut],
    summary="AS/RS totes to send back",
    description=(
        "AS/RS totes at the station (or the reject chute) that no open task needs any more: "
        "after verification, or of an order that was cancelled or went to exception. Each names "
        "the aisle to send it to; the AS/RS stores it when it reaches that aisle's P&D input."
    ),
    responses=problem_responses(401, 403, 404, 422),
)
async def station_returns(
    station_id: StationId, backend: Backend, _: Reader
) -> list[ReturnToteOut]:
    _station(backend, station_id)
    return [ReturnToteOut.of(r) for r in await backend.tote_returns.returns(station_id)]


@router.post(
    "/{station_id}/returns/{tote}",
    response_model=ReturnToteOut,
    summary="A tote was sent back",
    description=(
        "The operator put the tote on the return conveyor to the aisle named in the returns "
        "list; the inventory moves it to `RETURN:<aisle>`. Repeating the call answers the same."
    ),
    responses=problem_responses(401, 403, 404, 409, 422),
)
@audited("station.tote_returned", "{station_id}/{tote}")
async def tote_sent_back(
    station_id: StationId, tote: ToteId, backend: Backend, _: Operator
) -> ReturnToteOut:
    _station(backend, station_id)
    try:
        return ReturnToteOut.of(await backend.tote_returns.send_back(station_id, tote))
    except LookupError as exc:
        raise ProblemError(404, str(exc), kind="unknown-tote") from None
    except AsrsRequestError as exc:
        raise ProblemError(409, str(exc), kind="no-aisle") from None

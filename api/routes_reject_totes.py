"""``/v1/inventory/reject-totes``: totes in the reject chute whose picked units are off the books.

A robot's tote that serves no order any more (cancelled, in exception, given to another robot)
ends in the reject chute with units that already left their pick locations' on-hand. Each is
listed here until an operator counts its units back into stock or writes them off (see
:mod:`controller.conveyor.reject_totes`); both are ``line:operate`` commands in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.audit import AuditedRoute, audited
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import ProblemError, problem_responses
from controller.store.inventory import InventoryError
from controller.store.reject_totes import (
    RejectTote,
    RejectToteError,
    RejectToteResolved,
    RejectToteState,
    RestockLine,
    UnknownRejectTote,
)

router = APIRouter(
    prefix="/v1/inventory/reject-totes", tags=["inventory"], route_class=AuditedRoute
)

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
ToteId = Annotated[str, Path(pattern=ID_PATTERN, description="The tote's id (its label).")]


class RejectLineOut(BaseModel):
    sku: str
    location: str = Field(description="The pick location the units were taken from.")
    quantity: int
    line_id: str = Field(description="The order line they were picked for.")


class RejectToteOut(BaseModel):
    tote: str
    order_id: str = Field(description="The order the tote was filled for.")
    chute: str = Field(description="The chute it came out in.")
    reason: str = Field(description="Why it serves no order.")
    state: Literal["open", "restocked", "written_off"]
    units: int = Field(description="Units the robot reported picked into it.")
    lines: list[RejectLineOut]
    arrived_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: dict[str, Any] = Field(
        description="What was restocked where and what was written off, with the note."
    )

    @classmethod
    def of(cls, t: RejectTote) -> RejectToteOut:
        return cls(
            tote=t.tote,
            order_id=t.order_id,
            chute=t.chute,
            reason=t.reason,
            state=t.state.value,
            units=t.units,
            lines=[RejectLineOut(**ln.document()) for ln in t.lines],
            arrived_at=t.arrived_at,
            resolved_at=t.resolved_at,
            resolved_by=t.resolved_by,
            resolution=t.resolution,
        )


class RestockLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, Field(pattern=ID_PATTERN)]
    location: Annotated[str, Field(pattern=ID_PATTERN, description="A robot pick location.")]
    quantity: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]


class RestockIn(BaseModel):
    """What the operator counted back into stock."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"operator": "op-7"},
                {
                    "operator": "op-7",
                    "lines": [{"sku": "SKU-0001", "location": "L01A", "quantity": 3}],
                    "note": "one unit damaged",
                },
            ]
        },
    )

    lines: Annotated[
        list[RestockLineIn] | None,
        Field(
            max_length=200,
            description="Units counted and where they were put. Omitted: every unit the tote "
            "held goes back to the location it was picked from. Units of the tote not listed "
            "are written off.",
        ),
    ] = None
    operator: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    note: Annotated[str, Field(max_length=500)] = ""


class WriteOffIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"operator": "op-7", "note": "tote crushed"}]},
    )

    operator: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    note: Annotated[str, Field(min_length=1, max_length=500, description="Why.")]


@router.get(
    "",
    response_model=list[RejectToteOut],
    summary="Totes in the reject chute with units off the books",
    description=(
        "Robot totes that came out serving no order, with what they hold, oldest first; "
        "`state=open` (the default) lists those waiting to be restocked or written off, "
        "`state=all` every one. Needs scope `orders:read` unless reads are open."
    ),
    responses=problem_responses(401, 403, 422, 503),
)
async def reject_totes(
    backend: Backend,
    _: Reader,
    state: Annotated[
        Literal["open", "restocked", "written_off", "all"],
        Query(description="Only totes in this state; `all`: every one."),
    ] = "open",
) -> list[RejectToteOut]:
    wanted = None if state == "all" else RejectToteState(state)
    return [RejectToteOut.of(t) for t in await backend.reject_totes.listing(wanted)]


def _conflict(exc: Exception) -> ProblemError:
    if isinstance(exc, UnknownRejectTote):
        return ProblemError(404, str(exc), kind="unknown-reject-tote")
    if isinstance(exc, RejectToteResolved):
        return ProblemError(409, str(exc), kind="reject-tote-resolved")
    return ProblemError(409, str(exc), kind="inventory-conflict")


@router.post(
    "/{tote}/restock",
    response_model=RejectToteOut,
    summary="Count a reject tote's units back into stock",
    description=(
        "Puts the counted units at robot pick locations (a `reject_restocked` ledger row each) "
        "and closes the tote in one transaction; what it held beyond the count is written off. "
        "Without `lines`, every unit goes back to where it was picked. 409 when the tote was "
        "already resolved or a line asks for more units than it held. Scope `line:operate`."
    ),
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
@audited("inventory.reject_tote.restock", "{tote}")
async def restock(
    tote: ToteId, backend: Backend, principal: Operator, body: RestockIn
) -> RejectToteOut:
    lines = (
        None
        if body.lines is None
        else [RestockLine(ln.sku, ln.location, ln.quantity) for ln in body.lines]
    )
    try:
        closed = await backend.reject_totes.restock(
            tote, lines, body.operator or principal.name, body.note
        )
    except (RejectToteError, InventoryError) as exc:
        raise _conflict(exc) from None
    return RejectToteOut.of(closed)


@router.post(
    "/{tote}/write-off",
    response_model=RejectToteOut,
    summary="Write a reject tote's units off",
    description=(
        "Closes the tote without putting anything back (damaged, lost): an inventory event "
        "`reject_written_off` records the units and the note. Scope `line:operate`."
    ),
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
@audited("inventory.reject_tote.write_off", "{tote}")
async def write_off(
    tote: ToteId, backend: Backend, principal: Operator, body: WriteOffIn
) -> RejectToteOut:
    try:
        closed = await backend.reject_totes.write_off(
            tote, body.operator or principal.name, body.note
        )
    except RejectToteError as exc:
        raise _conflict(exc) from None
    return RejectToteOut.of(closed)

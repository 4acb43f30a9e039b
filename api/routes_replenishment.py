"""``/v1/replenishments``: robot pick locations topped up from AS/RS totes.

A replenishment is started by the controller when a watched pick location runs low (see
:mod:`controller.asrs.replenishment`); the operator at the replenishment chute reads the open ones
and confirms how many units were moved from the tote to the location.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.audit import AuditedRoute, audited
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import ProblemError, problem_responses
from controller.asrs.replenishment import ReplenishTask, UnknownReplenishment
from controller.store.inventory import InventoryError

router = APIRouter(prefix="/v1/replenishments", tags=["inventory"], route_class=AuditedRoute)

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
TaskId = Annotated[str, Path(pattern=ID_PATTERN, description="The replenishment's id.")]


class ReplenishmentOut(BaseModel):
    id: str
    location: str = Field(description="The robot pick location to fill.")
    sku: str
    tote: str = Field(description="The AS/RS tote the units come from.")
    units: int = Field(description="Units reserved in the tote for the location.")
    state: Literal["retrieving", "on_conveyor", "at_station"]
    aisle: str | None = Field(description="The aisle the tote comes out of.")
    station: str | None = Field(description="The chute the tote is at (state at_station).")

    @classmethod
    def of(cls, task: ReplenishTask) -> ReplenishmentOut:
        return cls.model_validate(task.document())


class PutIn(BaseModel):
    """What the operator moved from the tote to the pick location."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"put": 30, "operator": "repl-op-2"}]}
    )

    put: Annotated[
        int, Field(ge=0, le=1_000_000, strict=True, description="Units put at the location.")
    ]
    operator: Annotated[str, Field(min_length=1, max_length=64)] = "unknown"


class PutOut(BaseModel):
    id: str
    location: str
    put: int
    short: int = Field(description="Reserved units left in the tote (a short pick of the tote).")
    applied: bool = Field(
        description="False when this confirmation was already recorded (the same answer again)."
    )


@router.get(
    "",
    response_model=list[ReplenishmentOut],
    summary="Open replenishments",
    description=(
        "Replenishments under way: the tote being retrieved, on the conveyor, or at a "
        "replenishment chute waiting for the put. Filter with `station`."
    ),
    responses=problem_responses(401, 403, 422),
)
async def replenishments(
    backend: Backend,
    _: Reader,
    station: Annotated[
        str | None,
        Query(pattern=ID_PATTERN, description="Only those of this replenishment chute."),
    ] = None,
) -> list[ReplenishmentOut]:
    return [ReplenishmentOut.of(t) for t in backend.replenishment.open_tasks(station)]


@router.post(
    "/{task_id}/confirmation",
    response_model=PutOut,
    summary="Confirm the put",
    description=(
        "The units moved from the tote to the pick location, at most the reserved units. One "
        "inventory transaction takes them out of the tote and puts them at the location; the "
        "tote then appears in the chute's returns (`GET /v1/stations/{id}/returns`). Scope "
        "`line:operate`."
    ),
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
)
@audited("replenishment.confirmation", "{task_id}")
async def confirm(task_id: TaskId, body: PutIn, backend: Backend, _: Operator) -> PutOut:
    try:
        task, outcome = await backend.replenishment.confirm(task_id, body.put, body.operator)
    except UnknownReplenishment as exc:
        raise ProblemError(404, str(exc), kind="unknown-replenishment") from None
    except ValueError as exc:
        raise ProblemError(409, str(exc), kind="put-out-of-range") from None
    except InventoryError as exc:
        raise ProblemError(409, str(exc), kind="inventory-conflict") from None
    return PutOut(
        id=task_id,
        location=task.location,
        put=outcome.picked,
        short=outcome.short,
        applied=not outcome.duplicate,
    )

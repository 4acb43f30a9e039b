"""``GET /v1/audit``: the calls to ``line:operate`` routes, newest first.

Reading it needs scope ``line:operate``: the log shows who operated the line and when, which is
for the people who operate it, not for every reader of orders.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import FieldError, problem_responses, validation_problem
from api.time_query import EXAMPLE as TIME_EXAMPLE
from api.time_query import parse_bounds
from controller.store.audit import AuditEntry, AuditFilter, AuditResult
from controller.store.base import InvalidCursor

router = APIRouter(prefix="/v1", tags=["line"])

Backend = Annotated[ApiBackend, Depends(get_backend)]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]
NAME_PATTERN = r"^[A-Za-z0-9._:{}-]+$"


class AuditEntryOut(BaseModel):
    seq: int = Field(description="Grows with every entry; never reused.")
    at: datetime = Field(description="When the command was answered (UTC, the line's clock).")
    who: str = Field(
        description="The name of the token used (`api.tokens[].name`, `token-<n>` by default, "
        "`env` for `LINECTL_API_TOKEN`); `anonymous` without a token, `invalid-token` with one "
        "that is not configured. Tokens themselves are never recorded."
    )
    action: str = Field(
        description="`line.hold`, `line.resume`, `robot.pause|resume|cancel`, "
        "`conveyor.<PackML command>`, `conveyor.jog`, `devices.check`, `inventory.count`, "
        "`station.verification`, `station.tote_returned`, `replenishment.confirmation`."
    )
    target: str = Field(
        description="`line`, a robot's serial, a conveyor, `conveyor/zone`, `station/order`, "
        "`station/tote`, a replenishment; empty for a count (the body names it)."
    )
    params: dict[str, Any] = Field(description="What was asked: path parameters, `query`, `body`.")
    result: Literal["ok", "refused", "failed"] = Field(
        description="`ok`: done; `refused`: not done (401/403, unknown device, bad input, a "
        "state that refuses it); `failed`: a device could not take it, or only some devices did."
    )
    status: int = Field(description="The HTTP status of the answer.")
    detail: str = Field(description="The problem's detail, or what was not done.")

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        return cls.model_validate(e.document())


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older entries; null at end.")


EXAMPLE = {
    "entries": [
        {
            "seq": 42,
            "at": "2030-06-03T08:41:07.201000+00:00",
            "who": "commissioning",
            "action": "robot.pause",
            "target": "R01",
            "params": {"serial": "R01", "command": "pause"},
            "result": "ok",
            "status": 202,
            "detail": "",
        },
        {
            "seq": 41,
            "at": "2030-06-03T08:40:55.730000+00:00",
            "who": "anonymous",
            "action": "line.hold",
            "target": "line",
            "params": {},
            "result": "refused",
            "status": 401,
            "detail": "This operation needs a bearer token with scope line:operate "
            "(header 'Authorization: Bearer <token>')",
        },
    ],
    "next_cursor": "c2VxOjQx",
}


@router.get(
    "/audit",
    response_model=AuditPageOut,
    summary="The audit log of operator commands",
    description=(
        "Every call to a route that needs scope `line:operate` (line hold/resume, robot and "
        "conveyor commands, jogs, device checks, counts, station verifications and tote "
        "returns, replenishment confirmations), refused or not: who, what, when, and how it "
        "ended. Newest first; filter by `action`, `who`, `result` and `since` (inclusive); page "
        "with `cursor`. Needs scope `line:operate`."
    ),
    responses={
        200: {"content": {"application/json": {"example": EXAMPLE}}},
        **problem_responses(401, 403, 422, 503),
    },
)
async def audit(
    backend: Backend,
    _: Operator,
    action: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=NAME_PATTERN,
            description="Only this action, e.g. `robot.pause`.",
        ),
    ] = None,
    who: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            pattern=NAME_PATTERN,
            description="Only calls by this token name (`api.tokens[].name`).",
        ),
    ] = None,
    result: Annotated[
        AuditResult | None, Query(description="Only calls that ended this way.")
    ] = None,
    since: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only calls at or after this RFC 3339 date-time with a time zone.",
            examples=[TIME_EXAMPLE],
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> AuditPageOut:
    bounds = parse_bounds({"since": since})
    where = AuditFilter(action=action, who=who, result=result, since=bounds["since"])
    try:
        page = await backend.store.list_audit(where, limit=limit, cursor=cursor)
    except InvalidCursor as exc:
        raise validation_problem([FieldError(field="cursor", message=str(exc))]) from None
    return AuditPageOut(
        entries=[AuditEntryOut.of(e) for e in page.entries], next_cursor=page.next_cursor
    )

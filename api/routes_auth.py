"""``GET /v1/whoami``: what the presented token may do (the live page shows its operator
buttons only for a token with ``line:operate``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from api.auth import ANONYMOUS, bearer_scheme, identify
from api.backend import get_backend
from api.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["operations"])


class WhoamiOut(BaseModel):
    name: str = Field(description="The token's name (`api.tokens[].name`), or `anonymous`.")
    scopes: list[str] = Field(description="The scopes the token grants; empty without one.")
    reads_open: bool = Field(description="Reads need no token on this line (`api.reads_open`).")


@router.get(
    "/whoami",
    response_model=WhoamiOut,
    summary="The caller's token and scopes",
    description=(
        "The name and scopes of the bearer token presented, or `anonymous` without one; an "
        "unknown token answers `401`. Needs no scope."
    ),
    responses=problem_responses(401),
    # the token is optional here: anonymous callers are answered too
    openapi_extra={"security": [{}, {"bearer": []}]},
)
async def whoami(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> WhoamiOut:
    api = get_backend(request).config.api
    who = identify(credentials, api) if credentials else ANONYMOUS
    return WhoamiOut(name=who.name, scopes=sorted(who.scopes), reads_open=api.reads_open)

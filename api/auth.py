"""Bearer-token authorization with scopes.

Tokens and their scopes come from the line file (``api.tokens``) or from ``LINECTL_API_TOKEN``.
Presented tokens are compared in constant time (digests of equal length, every configured token
checked). Reads are open when ``api.reads_open`` is set; writes always need a token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.backend import get_backend
from api.problems import ProblemError
from kernel.config.model import ApiConfig, ApiToken

Scope = Literal["orders:write", "orders:read", "line:operate"]

REALM = "linectl"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description=(
        "A token from `api.tokens` in the line file, or the one set by `LINECTL_API_TOKEN`. "
        "Writes need `orders:write`; reads need `orders:read` unless `api.reads_open` is set."
    ),
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: an anonymous reader or the holder of a configured token."""

    scopes: frozenset[str]
    token_index: int | None  # position in api.tokens; None when anonymous
    name: str = "anonymous"  # the token's name (api.tokens[].name), as the audit log shows it


ANONYMOUS = Principal(scopes=frozenset(), token_index=None)
INVALID_TOKEN = "invalid-token"  # who presented a token that is not configured


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def match_token(presented: str, tokens: list[ApiToken]) -> int | None:
    """The index of the token equal to ``presented``, compared in constant time."""
    wanted = _digest(presented)
    found: int | None = None
    for i, token in enumerate(tokens):
        if hmac.compare_digest(wanted, _digest(token.token)) and found is None:
            found = i
    return found


def _unauthorized(detail: str, error: str | None = None) -> ProblemError:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return ProblemError(401, detail, kind="unauthorized", headers={"WWW-Authenticate": challenge})


def require_scope(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers holding ``scope``."""

    async def authorize(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        api = get_backend(request).config.api
        if scope == "orders:read" and api.reads_open:
            return ANONYMOUS
        if not api.tokens:
            raise _unauthorized(
                f"This operation needs a bearer token with scope {scope}, and no API tokens are "
                "configured: set api.tokens in the line file or the LINECTL_API_TOKEN "
                "environment variable"
            )
        if credentials is None or not credentials.credentials:
            raise _unauthorized(
                f"This operation needs a bearer token with scope {scope} "
                "(header 'Authorization: Bearer <token>')"
            )
        who = identify(credentials, api)
        scopes = who.scopes
        if scope not in scopes:
            raise ProblemError(
                403,
                f"The token does not grant scope {scope} "
                f"(it grants: {', '.join(sorted(scopes)) or 'nothing'})",
                kind="insufficient-scope",
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"'
                    )
                },
            )
        return who

    return authorize


def identify(credentials: HTTPAuthorizationCredentials, api: ApiConfig) -> Principal:
    """The holder of the presented token; 401 when it is not configured."""
    index = match_token(credentials.credentials, api.tokens)
    if index is None:
        raise _unauthorized("The bearer token is not valid", error="invalid_token")
    scopes = frozenset(api.tokens[index].scopes)
    return Principal(scopes=scopes, token_index=index, name=api.token_name(index))


def caller_name(request: Request) -> str:
    """Who is calling, for the audit log, whether or not the call is allowed: the name of the
    presented token, ``anonymous`` without a bearer token, ``invalid-token`` with an unknown one.
    The token itself is never returned."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return ANONYMOUS.name
    api = get_backend(request).config.api
    index = match_token(presented, api.tokens)
    return INVALID_TOKEN if index is None else api.token_name(index)

"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns, from a route, from validation, from routing (404/405) or from the
body limit, is built here, so clients can rely on one shape: ``type``, ``title``, ``status``,
``detail`` and, for validation errors, ``errors: [{field, message}]`` with fields written the way
a person reads them (``lines[0].quantity``).
"""

from __future__ import annotations

import http
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:linectl:problem:"
_MAX_FIELDS_IN_DETAIL = 5


class FieldError(BaseModel):
    field: str = Field(description="Where the error is, e.g. `lines[0].quantity`.")
    message: str = Field(description="What is wrong there.")


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str = Field(description="A short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, in words.")
    errors: list[FieldError] | None = Field(
        default=None, description="For validation problems: every field at fault."
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ProblemError(Exception):
    """Raised by routes and dependencies; rendered as a problem response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _slug(status: int) -> str:
    return _phrase(status).lower().replace(" ", "-").replace("'", "")


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    title: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ProblemResponse:
    """A problem response; ``kind`` names the problem type (default: from the status)."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + (kind or _slug(status)),
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


def from_error(exc: ProblemError) -> ProblemResponse:
    return problem(
        exc.status,
        exc.detail,
        kind=exc.kind,
        title=exc.title,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


# --- validation errors ----------------------------------------------------------------------


_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def field_name(loc: Iterable[int | str], *, strip_location: bool = False) -> str:
    """``("lines", 0, "quantity")`` -> ``lines[0].quantity``; the whole body is ``(body)``."""
    parts = list(loc)
    if strip_location and parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(body)"


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if error.get("type") == "extra_forbidden":
        msg = "unknown field (not part of the schema)"
    return msg


# A whole-body rule may name its field first ("lines: line_id '1' appears more than once").
_NAMED = re.compile(r"^([a-z_][a-z0-9_]*): (.+)$", re.DOTALL)


def _field_error(error: Mapping[str, Any], strip_location: bool) -> FieldError:
    field = field_name(error.get("loc", ()), strip_location=strip_location)
    message = _message(error)
    if field == "(body)" and (named := _NAMED.match(message)):
        field, message = named.group(1), named.group(2)
    return FieldError(field=field, message=message)


def field_errors(
    errors: Iterable[Mapping[str, Any]], *, strip_location: bool = False
) -> list[FieldError]:
    return [_field_error(e, strip_location) for e in errors]


def summarize(errors: Sequence[FieldError]) -> str:
    shown = [f"{e.field}: {e.message}" for e in errors[:_MAX_FIELDS_IN_DETAIL]]
    more = len(errors) - len(shown)
    text = "; ".join(shown)
    return text + (f"; and {more} more" if more > 0 else "")


def validation_problem(errors: Sequence[FieldError]) -> ProblemError:
    return ProblemError(
        422,
        summarize(errors),
        kind="validation-error",
        title="Request validation failed",
        errors=errors,
    )


# --- OpenAPI declarations -------------------------------------------------------------------

_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not JSON).",
    401: "No valid bearer token.",
    403: "The token lacks the scope this operation needs.",
    404: "No such resource.",
    409: "The id is taken by an order with a different body.",
    413: "The request body is larger than the configured limit.",
    415: "The body is not `application/json`.",
    422: "The request is well-formed but invalid; `errors` names every field at fault.",
    503: "A dependency of the service is not available.",
}


def problem_responses(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problem answers with the given statuses;
    ``described`` replaces the generic description of a status for one operation."""
    schema = {"$ref": "#/components/schemas/Problem"}
    own = dict(described or {})
    return {
        status: {
            "description": own.get(status) or _DESCRIPTIONS.get(status, _phrase(status)),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }

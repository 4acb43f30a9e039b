"""Exception handlers: every error leaves the API as a problem response.

Routing errors (404, and 405 with every method of the path in ``Allow``), FastAPI's parameter
validation, our own :class:`ProblemError`, store outages and, as the one last-resort boundary,
anything unexpected (logged with its traceback) are all rendered by :mod:`api.problems`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.methods import allowed_methods
from api.problems import (
    ProblemError,
    field_errors,
    from_error,
    problem,
    summarize,
)
from controller.store.base import Fenced, StoreError, StoreUnavailable
from controller.store.lease import NotActive

log = logging.getLogger(__name__)


async def _problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return from_error(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    status = exc.status_code
    detail = str(exc.detail) if exc.detail else ""
    if status == 404 and detail in ("", "Not Found"):
        detail = f"No resource at {request.method} {request.url.path}"
    elif status == 405:
        # every route of the path counts, not only the first that matched it
        methods = allowed_methods(request.app.router, request.scope)
        given = headers.pop("Allow", None) or headers.pop("allow", None)
        allowed = ", ".join(methods) if methods else given
        if allowed:
            headers["Allow"] = allowed
        detail = (
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed or 'none'}"
        )
    elif not detail:
        detail = "The request could not be served"
    return problem(status, detail, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors(), strip_location=True)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem(400, "The request body is not valid JSON", kind="malformed-json")
    return problem(
        422,
        summarize(errors),
        kind="validation-error",
        title="Request validation failed",
        errors=errors,
    )


async def _not_active(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotActive)
    active = exc.active or {}
    where = active.get("api_url")
    detail = (
        f"This controller is the line's standby; send this to the active controller at {where}"
        if where
        else "This controller is the line's standby and no controller is active now"
    )
    return problem(
        503,
        detail,
        kind="not-active",
        headers={"Retry-After": "2"},
        extra={"role": "standby", "active": exc.active},
    )


async def _store_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Fenced):  # another controller took the line over: this one stops
        return problem(
            503,
            "This controller lost the line to another controller; send this to the active one",
            kind="not-active",
            headers={"Retry-After": "2"},
            extra={"role": "standby", "active": None},
        )
    # a store that cannot write is an outage, logged once when it starts and once when it
    # ends (controller.store.health), not once per refused request
    level = logging.DEBUG if isinstance(exc, StoreUnavailable) else logging.ERROR
    log.log(
        level,
        "order store error while serving a request",
        extra={"method": request.method, "path": request.url.path, "error": str(exc)},
    )
    return problem(
        503,
        "The order store is not available; retry later",
        kind="store-unavailable",
        headers={"Retry-After": "5"},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The one boundary where an unexpected error is caught: the client gets a problem
    # response instead of a bare 500 page, and the traceback goes to the log.
    log.exception(
        "unexpected error while serving a request",
        extra={"method": request.method, "path": request.url.path},
    )
    return problem(500, "An internal error occurred; it has been logged", kind="internal-error")


Handler = Callable[[Request, Exception], Awaitable[Response]]

# most specific first: render_error takes the first that fits
_HANDLERS: tuple[tuple[type[Exception], Handler], ...] = (
    (ProblemError, _problem_error),
    (StarletteHTTPException, _http_error),
    (RequestValidationError, _validation_error),
    (NotActive, _not_active),
    (StoreError, _store_error),
    (Exception, _unexpected),
)


async def render_error(request: Request, exc: Exception) -> Response:
    """The problem response the app's handlers give for ``exc`` (for a route that needs to see
    its own answer, such as an audited one)."""
    handler = next(h for kind, h in _HANDLERS if isinstance(exc, kind))
    return await handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    for kind, handler in _HANDLERS:
        app.add_exception_handler(kind, handler)

"""Every call to a ``line:operate`` route is written to the audit log, whatever its answer.

Those routes live on routers whose routes are :class:`AuditedRoute`, and each route's function
names its action with :func:`audited`. The route class wraps the whole request handler,
so refusals raised while resolving dependencies (no token: 401, missing scope: 403), bad input
(422) and the command's own answers (409, 503) are all seen, rendered exactly as the app renders
them, and recorded with who asked (:func:`~api.auth.caller_name`, never the token), what (the
action, its target, the path, query and body parameters, credentials redacted by
:mod:`kernel.redact`) and how it ended. A route may note a finer result for a successful
answer (:func:`note`), as a hold that reached only some devices does. An audit entry that
cannot be stored is logged; the command's answer goes out all the same.
A request refused before it reaches a route (a body over the size limit: 413) is not recorded.
A client that goes away before its whole body arrived (for example one stopped at shutdown) is
no error of the controller's: a command that was carried out is recorded as usual, one whose
body was cut off is recorded as refused, and one info line says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from api.auth import caller_name
from api.backend import get_backend
from api.errors import render_error
from api.problems import problem
from controller.store.audit import AuditEntry, AuditResult
from controller.store.base import StoreError
from kernel.redact import redact, redact_text

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_SPEC = "__linectl_audit__"
_NOTE = "linectl.audit"  # the request scope key a route's note is kept under
# set when the client went away before its whole body arrived: "unread" when the route could
# not read its body (it did not run), "after" when the route ran and only its audit entry
# found the client gone
_GONE = "linectl.audit.gone"
GONE = "the client went away before sending its whole request body"
MAX_DETAIL = 500


@dataclass(frozen=True)
class AuditSpec:
    action: str  # a template over the path parameters, for example robot.{command}
    target: str  # likewise, for example {serial}


@dataclass(frozen=True)
class AuditNote:
    result: AuditResult
    detail: str


def audited(action: str, target: str = "") -> Callable[[F], F]:
    """Name the action and target of an operator route (templates over its path parameters);
    put it under the route decorator."""

    def mark(fn: F) -> F:
        setattr(fn, _SPEC, AuditSpec(action, target))
        return fn

    return mark


def note(request: Request, result: AuditResult, detail: str) -> None:
    """Record a successful answer as ``result`` with ``detail`` (for example a partial hold)."""
    request.scope[_NOTE] = AuditNote(result, detail)


class AuditedRoute(APIRoute):
    """A route whose every answer is appended to the audit log (routes marked with
    :func:`audited`; others are served as usual)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        spec: AuditSpec | None = getattr(self.endpoint, _SPEC, None)
        if spec is None:
            return handler

        async def audited_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:  # rendered as the app would, so the answer can be recorded
                if _client_gone(exc):  # FastAPI answers a cut-off body with a 400 of its own
                    request.scope[_GONE] = "unread"
                    response = problem(400, GONE)
                else:
                    response = await render_error(request, exc)
            await _record(request, spec, response)
            return response

        return audited_handler


def _client_gone(exc: BaseException) -> bool:
    return isinstance(exc, ClientDisconnect) or isinstance(exc.__cause__, ClientDisconnect)


def _outcome(request: Request, response: Response) -> tuple[AuditResult, str]:
    status = response.status_code
    if request.scope.get(_GONE) == "unread":
        return AuditResult.REFUSED, GONE
    if status < 400:
        noted = request.scope.get(_NOTE)
        if isinstance(noted, AuditNote):
            return noted.result, noted.detail
        return AuditResult.OK, ""
    try:
        detail = str(json.loads(bytes(response.body)).get("detail", ""))
    except (ValueError, AttributeError):
        detail = ""
    return (AuditResult.REFUSED if status < 500 else AuditResult.FAILED), detail


async def _params(request: Request) -> dict[str, Any]:
    """What was asked, with credentials redacted (a token sent as ``?token=`` or in a body field
    is refused, and never recorded)."""
    params: dict[str, Any] = dict(request.path_params)
    if request.query_params:
        params["query"] = dict(request.query_params)
    try:
        body = await request.body()
    except ClientDisconnect:  # a route that reads no body, called by a client now gone
        request.scope.setdefault(_GONE, "after")
        body = b""
    if body:
        try:
            params["body"] = json.loads(body)
        except ValueError:
            params["body"] = f"(not JSON, {len(body)} bytes)"
    redacted: dict[str, Any] = redact(params)
    return redacted


async def _record(request: Request, spec: AuditSpec, response: Response) -> None:
    backend = get_backend(request)
    params = await _params(request)  # first: it notes a client that went away
    result, detail = _outcome(request, response)
    path = request.path_params
    entry = AuditEntry(
        at=backend.clock.utcnow(),
        who=caller_name(request),
        action=spec.action.format(**path),
        target=spec.target.format(**path),
        params=params,
        result=result,
        status=response.status_code,
        detail=redact_text(detail[:MAX_DETAIL]),
    )
    if request.scope.get(_GONE):
        log.info(
            "client went away during an operator command",
            extra={
                "action": entry.action,
                "target": entry.target,
                "who": entry.who,
                "status": entry.status,
                "result": entry.result.value,
            },
        )
    try:
        await backend.store.append_audit(entry)
    except StoreError as exc:
        backend.metrics.audit_write_failures.inc()
        log.error(
            "audit entry not stored",
            extra={**entry.document(), "error": str(exc)},
        )
    else:
        backend.metrics.audit_entries.labels(entry.action, entry.result.value).inc()

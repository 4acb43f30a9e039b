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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute

from api.auth import caller_name
from api.backend import get_backend
from api.errors import render_error
from controller.store.audit import AuditEntry, AuditResult
from controller.store.base import StoreError
from kernel.redact import redact, redact_text

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_SPEC = "__linectl_audit__"
_NOTE = "linectl.audit"  # the request scope key a route's note is kept under
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
                response = await render_error(request, exc)
            await _record(request, spec, response)
            return response

        return audited_handler


def _outcome(request: Request, response: Response) -> tuple[AuditResult, str]:
    status = response.status_code
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
    body = await request.body()
    if body:
        try:
            params["body"] = json.loads(body)
        except ValueError:
            params["body"] = f"(not JSON, {len(body)} bytes)"
    redacted: dict[str, Any] = redact(params)
    return redacted


async def _record(request: Request, spec: AuditSpec, response: Response) -> None:
    backend = get_backend(request)
    result, detail = _outcome(request, response)
    path = request.path_params
    entry = AuditEntry(
        at=backend.clock.utcnow(),
        who=caller_name(request),
        action=spec.action.format(**path),
        target=spec.target.format(**path),
        params=await _params(request),
        result=result,
        status=response.status_code,
        detail=redact_text(detail[:MAX_DETAIL]),
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

"""HTTP methods: ``HEAD`` on every ``GET`` route, and the ``Allow`` list of a path.

:class:`HeadMiddleware` answers ``HEAD`` wherever ``GET`` is served, as ``GET`` answers (status,
headers, authorization and errors alike) without the body. An endless answer such as an event
stream ends right after its headers. ``HEAD`` is not listed in the OpenAPI document: it comes
with every ``GET`` (RFC 9110, section 9.3.2).

:func:`allowed_methods` lists every method a path answers, from all of the routes that match it,
for the ``Allow`` header of a 405 answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import fastapi.routing
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def flat_routes(router: Router) -> Iterable[Any]:
    """Every route of ``router``, those of included routers one by one (FastAPI keeps included
    routers whole since it resolves their routes lazily; older versions copied the routes)."""
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return flatten(router.routes) if flatten is not None else router.routes


def allowed_methods(router: Router, scope: Scope) -> list[str]:
    """Every method that some route of ``router`` answers on the path of ``scope``, ``HEAD``
    included wherever ``GET`` is, in alphabetical order; empty when no route has the path."""
    allowed: set[str] = set()
    for route in flat_routes(router):
        methods = getattr(route, "methods", None)
        if methods and route.matches(scope)[0] is not Match.NONE:
            allowed |= {m.upper() for m in methods}
    if "GET" in allowed:
        allowed.add("HEAD")
    return sorted(allowed)


def _serves_get(router: Router, scope: Scope) -> bool:
    as_get = {**scope, "method": "GET"}
    return any(route.matches(as_get)[0] is Match.FULL for route in router.routes)


class HeadMiddleware:
    """``HEAD`` as ``GET`` without the body, wherever a route serves ``GET``."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or not _serves_get(self.router, scope)
        ):
            await self.app(scope, receive, send)
            return

        sent = False  # the (empty) body has gone out
        streaming = asyncio.Event()  # the app would go on sending: it may be stopped

        async def headers_only(message: Message) -> None:
            nonlocal sent
            if message["type"] != "http.response.body":
                await send(message)
                return
            if sent:
                return
            sent = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                streaming.set()

        answer = asyncio.ensure_future(self.app({**scope, "method": "GET"}, receive, headers_only))
        stream = asyncio.ensure_future(streaming.wait())
        try:
            await asyncio.wait({answer, stream}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stream.cancel()
            if not answer.done():
                # a stream, such as the event stream, that a GET client would read on: stop it
                answer.cancel()
                await asyncio.wait({answer})
        if not answer.cancelled():
            answer.result()  # the app's own error, if it raised one

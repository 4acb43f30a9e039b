"""The HTTP API application: ``create_app(backend)``.

The app has no globals and starts no tasks. Its lifespan yields the backend as typed state
(:class:`~api.backend.AppState`), which routes read from ``request.state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from api import (
    routes_audit,
    routes_auth,
    routes_events,
    routes_health,
    routes_inventory,
    routes_line,
    routes_operate,
    routes_order_changes,
    routes_orders,
    routes_reject_totes,
    routes_replenishment,
    routes_stations,
    routes_ui,
)
from api.backend import ApiBackend, AppState
from api.docs_ui import install_docs
from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.line_feed import LineFeed
from api.methods import HeadMiddleware
from api.openapi import install_openapi
from api.store_calls import FailFastMiddleware
from api.streams import stopping_event

DESCRIPTION = """
The WMS-facing API of **linectl**, the edge controller of one fulfilment line.

* Orders are created with `PUT /v1/orders/{id}` under the WMS's own id, idempotently, and are
  durable before the answer.
* Every error is `application/problem+json` (RFC 9457); validation errors name each field at
  fault in `errors`.
* Writes need a bearer token (`api.tokens` in the line file or `LINECTL_API_TOKEN`).
* Every `GET` also answers `HEAD` (the same status and headers, no body); a method a path does
  not serve answers 405 with every method it does serve in `Allow`.
"""

TAGS = [
    {"name": "orders", "description": "Orders from the WMS and their progress on the line."},
    {"name": "line", "description": "The line's devices now, and operator commands."},
    {"name": "stations", "description": "Value-added stations: B2B tasks and verification."},
    {"name": "inventory", "description": "Stock per SKU and location, its ledger, counts."},
    {"name": "events", "description": "Order events as Server-Sent Events."},
    {"name": "operations", "description": "Health checks and metrics for operators."},
]


def _version() -> str:
    try:
        return version("linectl")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(backend: ApiBackend) -> FastAPI:
    """The API application serving ``backend``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        yield {"backend": backend, "line_feed": LineFeed(lambda: routes_line.render_line(backend))}

    app = FastAPI(
        title="linectl",
        summary="Edge controller for fulfilment lines",
        description=DESCRIPTION,
        version=_version(),
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=backend.config.api.max_body_bytes)
    app.add_middleware(FailFastMiddleware)
    app.add_middleware(HeadMiddleware, router=app.router)
    app.include_router(routes_orders.router)
    app.include_router(routes_order_changes.router)
    app.include_router(routes_stations.router)
    app.include_router(routes_line.router)
    app.include_router(routes_operate.router)
    app.include_router(routes_audit.router)
    app.include_router(routes_reject_totes.router)
    app.include_router(routes_inventory.router)
    app.include_router(routes_replenishment.router)
    app.include_router(routes_events.router)
    app.include_router(routes_health.router)
    app.include_router(routes_auth.router)
    app.include_router(routes_ui.router)
    install_openapi(app)
    install_docs(app)
    stopping_event(app)  # set by the server that embeds the app when it begins to stop
    return app

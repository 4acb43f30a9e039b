"""``/v1/orders``: create orders idempotently, read one, list them."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api import examples
from api.auth import Principal, require_scope
from api.backend import ApiBackend, backend_dependency
from api.order_body import check_against_line, check_due_at, openapi_request_body, read_order
from api.problems import FieldError, ProblemError, problem_responses, validation_problem
from api.schemas import OrderOut, OrderPage, OrderSummary
from api.time_query import EXAMPLE as TIME_EXAMPLE
from api.time_query import parse_bounds
from controller.orders.model import ORDER_ID_PATTERN, OrderStatus, OrderType
from controller.store.base import CreateOutcome, InvalidCursor

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/orders", tags=["orders"])

OrderId = Annotated[
    str,
    Path(
        pattern=ORDER_ID_PATTERN,
        description="The WMS's own order id: 1-64 letters, digits and `.` `_` `:` `-`.",
        examples=[examples.ORDER_ID],
    ),
]
Backend = Annotated[ApiBackend, Depends(backend_dependency)]
TimeBound = Annotated[
    str | None,
    Query(
        max_length=64,
        description="An RFC 3339 date-time with a time zone.",
        examples=[TIME_EXAMPLE],
        json_schema_extra={"format": "date-time"},
    ),
]
Writer = Annotated[Principal, Depends(require_scope("orders:write"))]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]


def _location(order_id: str) -> str:
    return f"/v1/orders/{order_id}"


@router.put(
    "/{order_id}",
    status_code=201,
    response_model=OrderOut,
    summary="Create an order (idempotent on its id)",
    description=(
        "Creates the order under the WMS's own id. The order is on disk before the answer. "
        "Sending the same body again answers 200 with the order as it is now; a different "
        "body under the same id answers 409. SKUs must be in the line's SKU master and the "
        "destination in the sorter's sort plan (B2B orders may use the B2B fallback chute). "
        '`due_at` must be in the future unless the body says `"allow_late": true`.'
    ),
    responses={
        200: {
            "description": "The order already exists with this body.",
            "model": OrderOut,
            "content": {"application/json": {"example": examples.ORDER}},
        },
        201: {
            "description": "The order was created.",
            "content": {"application/json": {"example": examples.ORDER_CREATED}},
        },
        **problem_responses(400, 401, 403, 409, 413, 415, 422, 503),
    },
    openapi_extra=openapi_request_body(),
)
async def put_order(
    order_id: OrderId,
    request: Request,
    response: Response,
    backend: Backend,
    _: Writer,
) -> OrderOut:
    body = await read_order(request)
    check_against_line(body, backend.config)
    now = backend.clock.utcnow()
    if body.due_at <= now and not body.allow_late:
        # a retry of a PUT that created the order still answers 200 once the due time passed
        existing = await backend.store.get_order(order_id)
        if existing is None or existing.fingerprint != body.fingerprint():
            check_due_at(body.due_at, now, allow_late=body.allow_late)
    outcome, order = await backend.store.create_order(order_id, body, now)
    if outcome is CreateOutcome.CONFLICT:
        raise ProblemError(
            409,
            f"Order {order_id} already exists with a different body; an order's body cannot "
            "be changed by PUT",
            kind="order-conflict",
            headers={"Location": _location(order_id)},
        )
    history = await backend.store.history(order_id)
    response.headers["Location"] = _location(order_id)
    if outcome is CreateOutcome.CREATED:
        backend.metrics.orders_received.labels(type=order.type.value).inc()
        backend.order_accepted(order)
        log.info(
            "order accepted",
            extra={"order_id": order_id, "order_type": order.type.value, "lines": len(body.lines)},
        )
    else:
        response.status_code = 200
    return OrderOut.build(order, history)


@router.get(
    "/{order_id}",
    response_model=OrderOut,
    summary="Read one order",
    description=(
        "The order's status, current step, why it waits (if it does), requested and picked "
        "quantity per line, and its history, oldest event first."
    ),
    responses={
        **examples.json_example(examples.ORDER),
        **problem_responses(401, 403, 404, 422, 503),
    },
)
async def get_order(order_id: OrderId, backend: Backend, _: Reader) -> OrderOut:
    order = await backend.store.get_order(order_id)
    if order is None:
        raise ProblemError(404, f"No order with id {order_id}", kind="unknown-order")
    return OrderOut.build(order, await backend.store.history(order_id))


@router.get(
    "",
    response_model=OrderPage,
    summary="List orders",
    description=(
        "Orders in arrival order, optionally filtered by status, type, creation time and due "
        "time (RFC 3339 date-times with a zone; `..._after` includes the bound, `..._before` "
        "excludes it). Follow `next_cursor` for the next page, with the same filters."
    ),
    responses={
        **examples.json_example(examples.ORDER_PAGE),
        **problem_responses(401, 403, 422, 503),
    },
)
async def list_orders(
    backend: Backend,
    _: Reader,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
    type: Annotated[OrderType | None, Query(description="Only orders of this type.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=256, description="`next_cursor` of the previous page.")
    ] = None,
    created_after: TimeBound = None,
    created_before: TimeBound = None,
    due_after: TimeBound = None,
    due_before: TimeBound = None,
) -> OrderPage:
    bounds = parse_bounds(
        {
            "created_after": created_after,
            "created_before": created_before,
            "due_after": due_after,
            "due_before": due_before,
        }
    )
    try:
        page = await backend.store.list_orders(
            status=status, type=type, limit=limit, cursor=cursor, **bounds
        )
    except InvalidCursor as exc:
        raise validation_problem([FieldError(field="cursor", message=str(exc))]) from None
    return OrderPage(orders=[OrderSummary.of(o) for o in page.orders], next_cursor=page.next_cursor)

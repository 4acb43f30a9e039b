"""``PATCH /v1/orders/{id}`` and ``POST /v1/orders/{id}/cancel``: what the WMS may change later.

Priority and due time change only while an order is ``accepted``: once it is released to the
line, robots and cranes are already working from the old plan, so the answer is a 409 saying
so. A cancel is accepted for any order that is not terminal; it is recorded durably, then the
controller cancels what is in flight and records the outcome (202: the outcome follows).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.auth import Principal, require_scope
from api.backend import ApiBackend, backend_dependency
from api.change_bodies import CancelIn, OrderPatch
from api.order_body import check_due_at, parse_body, read_optional
from api.problems import FieldError, ProblemError, problem_responses, validation_problem
from api.routes_orders import OrderId
from api.schemas import OrderOut
from controller.orders.model import OrderStatus
from controller.store.base import UnknownOrder, WrongStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/orders", tags=["orders"])

Backend = Annotated[ApiBackend, Depends(backend_dependency)]
Writer = Annotated[Principal, Depends(require_scope("orders:write"))]


def _request_body(model: str, *, required: bool, description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
        }
    }


def _unknown(order_id: str) -> ProblemError:
    return ProblemError(404, f"No order with id {order_id}", kind="unknown-order")


def _too_late_to_change(order_id: str, status: OrderStatus) -> ProblemError:
    if status.terminal:
        why = f"it is {status.value}, a terminal status"
    else:
        why = (
            f"it has been released to the line (status: {status.value}) and robots or cranes "
            "already work from the current plan; cancel it and send a new order instead"
        )
    return ProblemError(
        409,
        f"Order {order_id} can no longer change its priority or due time: {why}",
        kind="order-not-changeable",
        extra={"order_status": status.value},
    )


@router.patch(
    "/{order_id}",
    response_model=OrderOut,
    summary="Change priority or due time",
    description=(
        "Changes `priority` and/or `due_at` of an order that is still `accepted` (not yet "
        "released to the line); nothing else can change. The new due time must be in the "
        "future. The change is recorded in the history as an `updated` event with the old "
        "and new values."
    ),
    responses=problem_responses(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        503,
        described={
            409: "The order has been released or is terminal; the change can no longer apply.",
        },
    ),
    openapi_extra=_request_body(
        "OrderPatch", required=True, description="The fields to change, and nothing else."
    ),
)
async def patch_order(order_id: OrderId, request: Request, backend: Backend, _: Writer) -> OrderOut:
    raw = await request.body()
    if not raw:
        raise validation_problem(
            [FieldError(field="(body)", message="a JSON object with priority and/or due_at")]
        )
    patch = parse_body(request.headers.get("content-type", ""), raw, OrderPatch)
    now = backend.clock.utcnow()
    if patch.due_at is not None:
        check_due_at(patch.due_at, now, allow_late=False)
    try:
        order = await backend.store.update_order(
            order_id, now, priority=patch.priority, due_at=patch.due_at
        )
    except UnknownOrder:
        raise _unknown(order_id) from None
    except WrongStatus as exc:
        raise _too_late_to_change(order_id, exc.status) from None
    backend.order_changed(order)
    log.info(
        "order changed",
        extra={"order_id": order_id, "priority": order.priority, "due_at": order.due_at},
    )
    return OrderOut.build(order, await backend.store.history(order_id))


@router.post(
    "/{order_id}/cancel",
    status_code=202,
    response_model=OrderOut,
    summary="Cancel an order",
    description=(
        "Asks the line to cancel the order. The request is recorded durably as a "
        "`cancel_requested` event and the answer is 202 with the order as it is now; robots "
        "and cranes then get cancel commands, and the outcome (`cancelled`) follows as an "
        "event. Asking again is harmless: it records nothing new. Orders that are already "
        "completed, cancelled or failed answer 409."
    ),
    responses=problem_responses(
        400,
        401,
        403,
        404,
        409,
        413,
        415,
        422,
        503,
        described={409: "The order is terminal (completed, cancelled or failed)."},
    ),
    openapi_extra=_request_body(
        "CancelIn", required=False, description="Optionally, why the order is cancelled."
    ),
)
async def cancel_order(
    order_id: OrderId, request: Request, backend: Backend, _: Writer
) -> OrderOut:
    body = await read_optional(request, CancelIn)
    reason = body.reason if body is not None else None
    try:
        recorded, order = await backend.store.request_cancel(
            order_id, backend.clock.utcnow(), reason=reason
        )
    except UnknownOrder:
        raise _unknown(order_id) from None
    except WrongStatus as exc:
        raise ProblemError(
            409,
            f"Order {order_id} is {exc.status.value}, a terminal status; there is nothing left "
            "to cancel",
            kind="order-terminal",
            extra={"order_status": exc.status.value},
        ) from None
    if recorded:
        backend.cancel_requested(order)
        log.info("order cancel requested", extra={"order_id": order_id, "status": order.status})
    return OrderOut.build(order, await backend.store.history(order_id))

"""The order body of ``PUT /v1/orders/{id}``: read, parsed, and checked against the line.

The body is read by the route itself (after authorization), so an unauthenticated client learns
nothing about the body it sent. Errors are precise: a wrong media type is 415, bytes that are not
JSON are 400, and every schema or line-configuration error is a 422 naming its field. JSON
types are taken strictly: ``"quantity": "2"`` or ``"priority": true`` are errors, not guesses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.problems import FieldError, ProblemError, field_errors, validation_problem
from controller.orders.model import OrderIn, OrderType
from controller.webhooks.policy import ReceiverPolicy
from kernel.config.model import LineConfig

_MAX_LISTED = 20

M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_order(request: Request) -> OrderIn:
    """The request's body as an :class:`OrderIn`, or a :class:`ProblemError`."""
    return parse_body(request.headers.get("content-type", ""), await request.body(), OrderIn)


async def read_optional(request: Request, model: type[M]) -> M | None:
    """The request's body as ``model``, or None when the request has no body."""
    raw = await request.body()
    if not raw:
        return None
    return parse_body(request.headers.get("content-type", ""), raw, model)


def parse_body(content_type: str, raw: bytes, model: type[M]) -> M:
    """``raw`` as ``model`` with strict JSON types, or a :class:`ProblemError`."""
    if not _is_json(content_type):
        raise ProblemError(
            415,
            f"The body must be application/json, not {content_type or 'unspecified'}",
            kind="unsupported-media-type",
        )
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            reason = str(errors[0].get("ctx", {}).get("error", "")) or errors[0]["msg"]
            raise ProblemError(
                400, f"The request body is not valid JSON: {reason}", kind="malformed-json"
            ) from None
        raise validation_problem(field_errors(errors)) from None


def _listing(values: list[str]) -> str:
    shown = ", ".join(values[:_MAX_LISTED])
    return shown + (", ..." if len(values) > _MAX_LISTED else "")


def check_against_line(order: OrderIn, config: LineConfig) -> None:
    """Refuse SKUs the line does not stock, destinations its sorter cannot reach and a
    ``callback_url`` the line's webhook policy does not allow."""
    errors: list[FieldError] = []
    known = {s.sku for s in config.skus}
    for i, line in enumerate(order.lines):
        if line.sku not in known:
            errors.append(
                FieldError(
                    field=f"lines[{i}].sku",
                    message=f"unknown SKU {line.sku!r}: not in the line's SKU master",
                )
            )
    sorter = config.conveyor.sorter
    b2b_fallback = order.type is OrderType.B2B and (
        sorter.b2b_chute is not None or sorter.b2b_allocation.mode == "dynamic"
    )
    if order.destination not in sorter.sort_plan and not b2b_fallback:
        errors.append(
            FieldError(
                field="destination",
                message=(
                    f"unknown destination {order.destination!r}: the sort plan knows "
                    f"{_listing(sorted(sorter.sort_plan))}"
                ),
            )
        )
    if order.callback_url is not None:
        refused = ReceiverPolicy.of(config.webhooks).refuse_url(str(order.callback_url))
        if refused is not None:
            errors.append(
                FieldError(field="callback_url", message=f"not an allowed receiver: {refused}")
            )
    if errors:
        raise validation_problem(errors)


def check_due_at(due_at: datetime, now: datetime, *, allow_late: bool) -> None:
    """Refuse a due time that is not in the future unless a late order is allowed."""
    if due_at > now or allow_late:
        return
    raise validation_problem(
        [
            FieldError(
                field="due_at",
                message=(
                    f"{due_at.isoformat()} is not in the future (the line's time is "
                    f"{now.isoformat()}); an order may be late only if it is created with "
                    '"allow_late": true'
                ),
            )
        ]
    )


def openapi_request_body() -> dict[str, Any]:
    """The ``requestBody`` declaration for the PUT route (the schema is added by api.openapi)."""
    extra = OrderIn.model_config.get("json_schema_extra")
    found = extra.get("examples") if isinstance(extra, dict) else None
    examples: list[Any] = found if isinstance(found, list) else []
    named = {
        str(ex.get("type", "order")): {"summary": f"A {ex.get('type', '')} order", "value": ex}
        for ex in examples
        if isinstance(ex, dict)
    }
    return {
        "requestBody": {
            "required": True,
            "description": "The order as the WMS sends it.",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/OrderIn"},
                    "examples": named,
                }
            },
        }
    }

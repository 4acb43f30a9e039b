"""Response bodies of the HTTP API (requests use :class:`controller.orders.model.OrderIn`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from controller.orders.model import (
    Handling,
    HistoryEvent,
    LineProgress,
    OrderRecord,
    OrderStatus,
    OrderType,
)

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*$"  # history event types are snake_case names


class OrderSummary(BaseModel):
    """An order's state without its history."""

    id: str = Field(description="The WMS's own order id.")
    type: OrderType
    status: OrderStatus
    step: str | None = Field(description="What the line is doing for the order right now.")
    waiting_reason: str | None = Field(
        description="Why the order is waiting (no robot free, stock short, line held, ...)."
    )
    priority: int = Field(description="0 (lowest) to 9 (highest).")
    due_at: datetime = Field(description="Carrier cut-off (B2C) or due time.")
    deliver_from: datetime | None = Field(description="B2B delivery window start.")
    deliver_until: datetime | None = Field(description="B2B delivery window end.")
    destination: str = Field(description="Carrier, route or customer key of the sort plan.")
    handling: Handling | None = Field(description="B2B handling instructions.")
    lines: list[LineProgress] = Field(description="Requested and picked quantity per line.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: OrderRecord) -> OrderSummary:
        return cls.model_validate(_fields(order))


class OrderOut(OrderSummary):
    """An order's state and its history, oldest event first."""

    history: list[HistoryEvent]

    @classmethod
    def build(cls, order: OrderRecord, history: list[HistoryEvent]) -> OrderOut:
        return cls.model_validate({**_fields(order), "history": history})


def _fields(order: OrderRecord) -> dict[str, Any]:
    body = order.body
    return {
        "id": order.id,
        "type": order.type,
        "status": order.status,
        "step": order.step,
        "waiting_reason": order.waiting_reason,
        "priority": order.priority,
        "due_at": order.due_at,
        "deliver_from": body.deliver_from,
        "deliver_until": body.deliver_until,
        "destination": order.destination,
        "handling": body.handling,
        "lines": order.lines_progress(),
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


class OrderPage(BaseModel):
    """One page of orders in arrival order."""

    orders: list[OrderSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class OrderEventOut(BaseModel):
    """One event of an order's history, as ``GET /v1/events`` and webhooks deliver it."""

    seq: int = Field(
        ge=1, description="The event's id, growing monotonically across all orders' events."
    )
    order_id: str = Field(description="The WMS's own order id.")
    type: str = Field(
        pattern=EVENT_TYPE_PATTERN,
        description="What happened: `accepted`, `updated`, `robot_assigned`, `sorted`, ...",
    )
    status: OrderStatus = Field(description="The order's status with this event.")
    at: datetime = Field(description="When it happened, on the line's clock.")
    data: dict[str, Any] = Field(description="The event's details; their keys depend on `type`.")


class Liveness(BaseModel):
    status: str = "ok"


class ActiveControllerOut(BaseModel):
    instance: str | None = Field(description="The active controller's name.")
    term: int = Field(description="The term of its lease of the line.")
    api_url: str | None = Field(description="Where the active controller's API listens.")
    live: bool = Field(description="Its lease has not expired.")
    acquired_at: datetime | None = Field(
        default=None, description="When it took the lease (the database's clock)."
    )


class ControllerOut(BaseModel):
    role: Literal["active", "standby"] = Field(
        description="`active`: this controller commands the line (a line without a standby: "
        "always); `standby`: it waits to take over and serves reads and order intake."
    )
    failover: bool = Field(description="The line has a standby (`failover` in the line file).")
    instance: str | None = Field(description="This controller's name; null without a standby.")
    term: int | None = Field(
        description="The term of the line's lease (grows with every change of the active "
        "controller); null without a standby."
    )
    active: ActiveControllerOut | None = Field(
        description="The active controller as the lease names it; null without a standby or "
        "while none ever held the lease."
    )


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool] = Field(description="Readiness of each dependency.")
    controller: ControllerOut = Field(description="This controller's role.")

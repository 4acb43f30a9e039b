"""Order domain: the WMS's order body, statuses, history events and the stored record.

The body models double as the API's request schema; the record is what the store returns.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    model_validator,
)

from controller.orders.waiting import Waiting


class OrderStatus(StrEnum):
    ACCEPTED = "accepted"
    RELEASED = "released"
    PICKING = "picking"
    IN_TRANSIT = "in_transit"
    SORTED = "sorted"
    COMPLETED = "completed"
    EXCEPTION = "exception"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.FAILED})
ACTIVE = tuple(s for s in OrderStatus if s not in TERMINAL)


class OrderType(StrEnum):
    B2C = "b2c"
    B2B = "b2b"


Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


def _representable_in_utc(at: datetime) -> datetime:
    try:
        at.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None
    return at


# A time with a zone that can be stored (as UTC); the value keeps the offset it was given with.
LineTime = Annotated[AwareDatetime, AfterValidator(_representable_in_utc)]


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: Key
    sku: Key
    quantity: Annotated[int, Field(gt=0, le=100_000)]
    uom: Literal["each", "case"] = "each"


class Handling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_template: Annotated[str, Field(max_length=128)] | None = None
    packaging: Annotated[str, Field(max_length=128)] | None = None
    instructions: Annotated[str, Field(max_length=2000)] | None = None


class OrderIn(BaseModel):
    """An order as the WMS sends it (``PUT /v1/orders/{id}``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "b2c",
                    "priority": 5,
                    "due_at": "2030-06-03T16:00:00Z",
                    "destination": "DHL",
                    "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 2, "uom": "each"}],
                },
                {
                    "type": "b2b",
                    "priority": 3,
                    "due_at": "2030-06-04T10:00:00Z",
                    "deliver_from": "2030-06-03T06:00:00Z",
                    "deliver_until": "2030-06-04T10:00:00Z",
                    "destination": "CUST-ACME",
                    "lines": [
                        {"line_id": "10", "sku": "SKU-0003", "quantity": 2, "uom": "case"},
                        {"line_id": "20", "sku": "SKU-0007", "quantity": 24, "uom": "each"},
                    ],
                    "handling": {
                        "label_template": "acme-pallet-v2",
                        "packaging": "carton-40",
                        "instructions": "Fragile: no stacking",
                    },
                },
            ]
        },
    )

    type: OrderType
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    due_at: LineTime
    deliver_from: LineTime | None = None
    deliver_until: LineTime | None = None
    destination: Key
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=200)]
    handling: Handling | None = None
    callback_url: HttpUrl | None = None
    allow_late: bool = Field(
        default=False,
        description=(
            "Accept a `due_at` that is already past (a late order the WMS still wants "
            "picked); without it such an order is refused."
        ),
    )

    @model_validator(mode="after")
    def _consistent(self) -> OrderIn:
        ids = [ln.line_id for ln in self.lines]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"lines: line_id {dup!r} appears more than once")
        if (self.deliver_from is None) != (self.deliver_until is None):
            raise ValueError("deliver_from and deliver_until must be given together")
        if self.deliver_from and self.deliver_until and self.deliver_from >= self.deliver_until:
            raise ValueError("deliver_from must be before deliver_until")
        if self.type is OrderType.B2C and (self.deliver_from or self.handling):
            raise ValueError("deliver_from/deliver_until and handling are for b2b orders only")
        return self

    def fingerprint(self) -> str:
        """A digest of the body's meaning, for idempotent PUT (same body -> same digest)."""
        meaning = self.model_dump(mode="json")
        if not self.allow_late:
            # absent and false mean the same; digests of bodies without the flag stay as they were
            del meaning["allow_late"]
        canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class HistoryEvent(BaseModel):
    """One step in an order's life."""

    seq: int
    at: datetime
    type: str
    status: OrderStatus
    data: dict[str, Any] = Field(default_factory=dict)


class LineProgress(BaseModel):
    line_id: str
    sku: str
    uom: str
    requested: int
    picked: int


class OrderRecord(BaseModel):
    """An order as stored: the body plus its live state."""

    id: str
    type: OrderType
    status: OrderStatus
    priority: int
    due_at: datetime
    destination: str
    body: OrderIn
    fingerprint: str
    created_at: datetime
    updated_at: datetime
    step: str | None = None
    waiting: Waiting | None = None  # why it waits (or stopped), if it does
    picked: dict[str, int] = Field(default_factory=dict)  # line_id -> picked quantity

    @property
    def waiting_reason(self) -> str | None:
        """:attr:`waiting` as text: what the HTTP API shows. The controller decides on
        :attr:`waiting` itself, never on this text."""
        return None if self.waiting is None else self.waiting.render()

    def lines_progress(self) -> list[LineProgress]:
        return [
            LineProgress(
                line_id=ln.line_id,
                sku=ln.sku,
                uom=ln.uom,
                requested=ln.quantity,
                picked=self.picked.get(ln.line_id, 0),
            )
            for ln in self.body.lines
        ]

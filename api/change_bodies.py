"""Bodies of ``PATCH /v1/orders/{id}`` and ``POST /v1/orders/{id}/cancel``.

A field that is sent must carry a value: ``null`` is an error, not "no change", so that a typo
in a WMS mapping never silently changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.orders.model import LineTime


def _schema_extra(**extra: Any) -> Callable[[dict[str, Any]], None]:
    def amend(schema: dict[str, Any]) -> None:
        # the fields are optional but not nullable (see _not_null)
        for prop in schema.get("properties", {}).values():
            prop.pop("default", None)
            kinds = [k for k in prop.pop("anyOf", []) if k != {"type": "null"}]
            if len(kinds) == 1:
                prop.update(kinds[0])
        schema.update(extra)

    return amend


def _refuse_nulls(model: BaseModel) -> None:
    for name in sorted(model.model_fields_set):
        if getattr(model, name) is None:
            raise ValueError(f"{name}: must not be null; leave the field out to keep its value")


class OrderPatch(BaseModel):
    """New priority and/or due time for an order that is not yet released."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_schema_extra(
            minProperties=1,
            examples=[{"priority": 8}, {"due_at": "2030-06-03T18:00:00Z", "priority": 6}],
        ),
    )

    priority: Annotated[int, Field(ge=0, le=9)] | None = Field(
        default=None, description="0 (lowest) to 9 (highest)."
    )
    due_at: LineTime | None = Field(
        default=None, description="New carrier cut-off or due time; must be in the future."
    )

    @model_validator(mode="after")
    def _one_change_at_least(self) -> OrderPatch:
        _refuse_nulls(self)
        if not self.model_fields_set:
            raise ValueError("give priority and/or due_at: an empty change changes nothing")
        return self


class CancelIn(BaseModel):
    """Why the WMS cancels the order (optional; the body itself may be left out)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=_schema_extra(examples=[{"reason": "customer cancelled"}])
    )

    reason: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="Free text, kept in history."
    )

    @model_validator(mode="after")
    def _no_null(self) -> CancelIn:
        _refuse_nulls(self)
        return self

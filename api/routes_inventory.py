"""``/v1/inventory``: stock per SKU and location, the movement ledger, inventory events and
verification (cycle) counts.

Reads come from the database (the truth), not from the controller's in-memory mirror.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.audit import AuditedRoute, audited
from api.auth import Principal, require_scope
from api.backend import ApiBackend, get_backend
from api.problems import FieldError, ProblemError, problem_responses, validation_problem
from controller.line.inventory import UnknownPlace
from controller.store.inventory import (
    InventoryError,
    InventoryEvent,
    Movement,
    NegativeStock,
    StockRow,
    UnknownTote,
)

router = APIRouter(prefix="/v1/inventory", tags=["inventory"], route_class=AuditedRoute)

Backend = Annotated[ApiBackend, Depends(get_backend)]
Reader = Annotated[Principal, Depends(require_scope("orders:read"))]
Operator = Annotated[Principal, Depends(require_scope("line:operate"))]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
SkuQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this SKU.")]
LocationQuery = Annotated[str | None, Query(pattern=ID_PATTERN, description="Only this location.")]
After = Annotated[
    int, Query(ge=0, le=10**18, description="Start after this `seq` (`next_after` of a page).")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]


class StockRowOut(BaseModel):
    location: str
    tote: str | None = Field(description="The tote holding the units; null for loose stock.")
    sku: str
    on_hand: int
    reserved: int = Field(description="Units reserved for released orders.")
    available: int = Field(description="on_hand - reserved.")
    updated_at: datetime

    @classmethod
    def of(cls, row: StockRow) -> StockRowOut:
        return cls(
            location=row.location,
            tote=row.tote,
            sku=row.sku,
            on_hand=row.on_hand,
            reserved=row.reserved,
            available=row.available,
            updated_at=row.updated_at,
        )


class SkuStockOut(BaseModel):
    sku: str
    on_hand: int = Field(description="Units on hand in every location and tote.")
    reserved: int
    available: int
    low_stock: int = Field(description="The SKU's low-stock level from the line file.")
    low: bool = Field(description="True while on_hand is below low_stock.")
    rows: list[StockRowOut]


class LocationStockOut(BaseModel):
    location: str
    on_hand: int
    reserved: int
    rows: list[StockRowOut]


class InventoryOut(BaseModel):
    skus: list[SkuStockOut] = Field(description="Stock by SKU, each with its rows per place.")
    locations: list[LocationStockOut] = Field(description="The same stock by location.")


class MovementOut(BaseModel):
    seq: int = Field(description="The ledger's monotonic row id (page with `after`).")
    at: datetime
    kind: str = Field(description="The confirmed event behind the change.")
    location: str
    tote: str | None
    sku: str
    delta: int
    on_hand: int = Field(description="On hand at this location/tote after the change.")
    ref: str = Field(description="The event's id: robot action, crane command, count.")
    order_id: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, m: Movement) -> MovementOut:
        return cls(
            seq=m.seq,
            at=m.at,
            kind=m.kind.value,
            location=m.location,
            tote=m.tote,
            sku=m.sku,
            delta=m.delta,
            on_hand=m.on_hand,
            ref=m.ref,
            order_id=m.order_id,
            data=m.data,
        )


class MovementPage(BaseModel):
    movements: list[MovementOut]
    next_after: int | None = Field(description="Pass as `after` for the next page; null at end.")


class InventoryEventOut(BaseModel):
    seq: int
    at: datetime
    type: str = Field(
        description="low_stock, low_stock_cleared, short_pick, counted, asrs_difference, "
        "tote_registered."
    )
    sku: str | None
    location: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, e: InventoryEvent) -> InventoryEventOut:
        return cls(seq=e.seq, at=e.at, type=e.type, sku=e.sku, location=e.location, data=e.data)


class InventoryEventPage(BaseModel):
    events: list[InventoryEventOut]
    next_after: int | None


class CountIn(BaseModel):
    """A verification or cycle count: the units of one SKU found at one place."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"location": "L01A", "sku": "SKU-0001", "counted": 1990, "counted_by": "op-7"}
            ]
        },
    )

    location: Annotated[str, Field(pattern=ID_PATTERN)]
    sku: Annotated[str, Field(pattern=ID_PATTERN)]
    counted: Annotated[int, Field(ge=0, le=10_000_000, strict=True)]
    tote: Annotated[str | None, Field(pattern=ID_PATTERN)] = None
    counted_by: Annotated[str, Field(min_length=1, max_length=64)] = "unknown"
    station: Annotated[str | None, Field(pattern=ID_PATTERN)] = None
    order_id: Annotated[str | None, Field(pattern=ID_PATTERN)] = None
    count_id: Annotated[
        str | None,
        Field(
            pattern=ID_PATTERN,
            description="The counter's own id: a count sent again with it is applied once.",
        ),
    ] = None


class CountOut(BaseModel):
    applied: bool = Field(description="False when this count_id was applied before.")
    movement: MovementOut | None = Field(description="The ledger row (null: no change).")
    stock: list[StockRowOut] = Field(description="The SKU's stock after the count.")


def _sum(rows: list[StockRow]) -> tuple[int, int]:
    return sum(r.on_hand for r in rows), sum(r.reserved for r in rows)


@router.get(
    "",
    summary="Stock by SKU and by location",
    description=(
        "Units on hand, reserved and available, per SKU (with its rows per location and tote) "
        "and per location. Filter with `sku` and/or `location`. Needs scope `orders:read` "
        "unless reads are open."
    ),
    responses=problem_responses(401, 403, 422, 503),
)
async def inventory(
    backend: Backend, _reader: Reader, sku: SkuQuery = None, location: LocationQuery = None
) -> InventoryOut:
    rows = await backend.inventory.rows(sku=sku, location=location)
    levels = backend.inventory.levels
    by_sku: dict[str, list[StockRow]] = {}
    by_location: dict[str, list[StockRow]] = {}
    for row in rows:
        by_sku.setdefault(row.sku, []).append(row)
        by_location.setdefault(row.location, []).append(row)
    skus = []
    for name, sku_rows in by_sku.items():
        on_hand, reserved = _sum(sku_rows)
        level = levels.get(name, 0)
        if location is not None:  # the SKU's totals cover all its places, not only this one
            on_hand, reserved = _sum(await backend.inventory.rows(sku=name))
        skus.append(
            SkuStockOut(
                sku=name,
                on_hand=on_hand,
                reserved=reserved,
                available=on_hand - reserved,
                low_stock=level,
                low=on_hand < level,
                rows=[StockRowOut.of(r) for r in sku_rows],
            )
        )
    locations = [
        LocationStockOut(
            location=name,
            on_hand=_sum(loc_rows)[0],
            reserved=_sum(loc_rows)[1],
            rows=[StockRowOut.of(r) for r in loc_rows],
        )
        for name, loc_rows in sorted(by_location.items())
    ]
    return InventoryOut(skus=skus, locations=locations)


@router.get(
    "/movements",
    summary="The stock movement ledger",
    description=(
        "Every change of on-hand with the confirmed event behind it (`robot_pick_confirmed`, "
        "`crane_store_confirmed`, `crane_retrieve_confirmed`, `tote_moved`, "
        "`tote_pick_confirmed`, `put_confirmed`, `verification_count`, `initial_load`), oldest "
        "first. Page with `after` (the last `seq` seen). Needs scope `orders:read` unless reads "
        "are open."
    ),
    responses=problem_responses(401, 403, 422, 503),
)
async def movements(
    backend: Backend,
    _reader: Reader,
    sku: SkuQuery = None,
    location: LocationQuery = None,
    after: After = 0,
    limit: Limit = 100,
) -> MovementPage:
    page = await backend.inventory.movements(
        sku=sku, location=location, after=after, limit=limit + 1
    )
    more = len(page) > limit
    page = page[:limit]
    return MovementPage(
        movements=[MovementOut.of(m) for m in page],
        next_after=page[-1].seq if more and page else None,
    )


@router.get(
    "/events",
    summary="Inventory events",
    description=(
        "Line-level inventory events, oldest first: `low_stock` (a SKU's units on hand fell "
        "below its level; raised once), `low_stock_cleared`, `short_pick`, `counted`, "
        "`asrs_difference` (the cranes report another tote than the inventory holds) and "
        "`tote_registered`. Page with `after`. Needs scope `orders:read` unless reads are open."
    ),
    responses=problem_responses(401, 403, 422, 503),
)
async def inventory_events(
    backend: Backend,
    _reader: Reader,
    after: After = 0,
    limit: Limit = 100,
) -> InventoryEventPage:
    page = await backend.inventory.events(after=after, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return InventoryEventPage(
        events=[InventoryEventOut.of(e) for e in page],
        next_after=page[-1].seq if more and page else None,
    )


@router.post(
    "/counts",
    summary="Record a verification or cycle count",
    description=(
        "Sets the units on hand of `sku` at `location` (in `tote` if given) to `counted`, with "
        "a `verification_count` row in the ledger. With `count_id`, sending the same count "
        "again changes nothing. Loose stock is counted at a storage location of the line, stock "
        "in a tote with its `tote` (where the tote is); any other location or an unknown SKU "
        "is a 422 and nothing is written. Needs scope `line:operate`."
    ),
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 503),
)
@audited("inventory.count")
async def count(backend: Backend, _operator: Operator, body: CountIn) -> CountOut:
    try:
        applied = await backend.inventory.count(
            body.location,
            body.sku,
            body.counted,
            body.counted_by,
            tote=body.tote,
            ref=body.count_id,
            station=body.station,
            order_id=body.order_id,
        )
    except UnknownPlace as exc:
        raise validation_problem([FieldError(field=exc.field, message=str(exc))]) from None
    except UnknownTote as exc:
        raise ProblemError(404, str(exc), kind="unknown-tote") from None
    except (NegativeStock, InventoryError) as exc:
        raise ProblemError(409, str(exc), kind="inventory-conflict") from None
    return CountOut(
        applied=not applied.duplicate,
        movement=MovementOut.of(applied.movements[0]) if applied.movements else None,
        stock=[StockRowOut.of(r) for r in applied.stock.get(body.sku, [])],
    )

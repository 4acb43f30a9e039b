"""The AS/RS of the line's configuration: aisles with their racks and cranes, the storage
policy, the totes stored at start and the OPC UA server of the cranes.

Part of the line's model; everything is importable from :mod:`kernel.config.model`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from kernel.config.base import Id, NonNegFloat, PositiveFloat, Strict
from kernel.config.service import OpcUaEndpoint


class Crane(Strict):
    """A stacker crane: both axes move at once, each with a trapezoidal speed profile (no
    acceleration limit when ``accel_*`` is 0); ``pd_time`` is the time to pick up or to deposit
    one load (at the P&D point or at a rack location)."""

    id: Id
    speed_x: PositiveFloat = 4.0  # m/s along the aisle
    speed_y: PositiveFloat = 1.0  # m/s hoist
    accel_x: NonNegFloat = 0.0  # m/s², 0: speed reached at once
    accel_y: NonNegFloat = 0.0
    pd_time: NonNegFloat = 5.0  # s per pick-up or deposit


class Aisle(Strict):
    """One aisle: a rack of ``bays`` x ``levels`` on each of its ``sides`` (``L`` and ``R``),
    served by one crane, with its pick-up/deposit (P&D) point at the aisle's front at floor
    level (x = 0, y = 0). Location ``b``/``l`` (both from 1) has its centre at
    x = (b - 0.5) * bay_width, y = (l - 0.5) * level_height; its id is
    ``<aisle>-<side>-<bay:02d>-<level:02d>`` (for example ``A1-L-07-03``)."""

    id: Id
    bays: Annotated[int, Field(ge=1)]
    levels: Annotated[int, Field(ge=1)]
    sides: Annotated[int, Field(ge=1, le=2)] = 2
    bay_width: PositiveFloat = 0.7
    level_height: PositiveFloat = 0.5
    crane: Crane
    pd_zone: Id | None = None  # conveyor zone the P&D point feeds (and takes returns from)


class StoragePolicy(StrEnum):
    RANDOM = "random"  # any open location, uniformly
    CLOSEST_OPEN = "closest_open"  # the open location with the shortest travel time
    CLASS_BASED = "class_based"  # by turnover class: fast movers near the P&D point


class AsrsTote(Strict):
    """A tote (or case load) stored in the AS/RS at start: what it holds, where it is."""

    tote: Id
    location: Id  # an AS/RS location id (see Aisle)
    sku: Id
    quantity: Annotated[int, Field(ge=0)]  # units


class Asrs(Strict):
    aisles: list[Aisle] = Field(default_factory=list)
    storage_policy: StoragePolicy = StoragePolicy.RANDOM
    # class_based: share of each aisle's locations per class, nearest first (A, B, C, ...) ...
    class_location_shares: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.2, 0.3, 0.5]
    )
    # ... and share of the turnover (units picked) the SKUs of each class account for
    class_turnover_shares: list[Annotated[float, Field(gt=0, le=1)]] = Field(
        default_factory=lambda: [0.8, 0.15, 0.05]
    )
    dual_command: bool = True  # pair a pending store with a pending retrieve in one cycle
    # B2B orders whose case totes are out of the rack at once (released, not yet verified): what
    # the value-added stations can work on; more wait in the queue (``asrs_busy``)
    max_case_orders: Annotated[int, Field(ge=1)] = 4
    totes: list[AsrsTote] = Field(default_factory=list)
    opcua: OpcUaEndpoint = Field(
        default_factory=lambda: OpcUaEndpoint(
            endpoint="opc.tcp://127.0.0.1:4841/linectl/", namespace="urn:linectl:asrs"
        )
    )

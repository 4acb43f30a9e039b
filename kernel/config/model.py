"""The line topology as a pydantic model.

One YAML file describes one line: the robot area (map, storage locations, robots, chargers,
induction points), the conveyor loop with its scanner, sorter diverts and chutes, the AS/RS, the
SKU master and the starting stock, plus the service settings (store, API, MQTT, OPC UA, clock).

Structural rules (types, ranges, required fields) live on the fields; rules that tie parts of the
file together (a robot's home node must exist, a divert must point at a chute, ids are unique)
live in :func:`controller.linefile.checks.cross_check`, which reports every problem at once with its
place in the document.

The sections are defined by topic in the sibling modules (``model_service``, ``model_robots``,
``model_conveyor``, ``model_asrs``, on the shared ``model_types``); this module puts them
together as :class:`LineConfig`, with the master data, and every name of the model is imported
from here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from kernel.config.asrs import Aisle, Asrs, AsrsTote, Crane, StoragePolicy
from kernel.config.base import Id, NonNegFloat, PositiveFloat, Strict
from kernel.config.conveyor import (
    B2bAllocation,
    Chute,
    ChuteIds,
    ChuteKind,
    Conveyor,
    ConveyorWatchdog,
    Divert,
    Scanner,
    Sorter,
    Zone,
)
from kernel.config.deadlines import Deadlines
from kernel.config.mqtt import MqttConfig, MqttTls
from kernel.config.robots import (
    ActionTemplate,
    Charger,
    Induction,
    MapEdge,
    MapNode,
    PickTemplate,
    Robot,
    RobotArea,
    RobotModel,
    StorageLocation,
    Traffic,
)
from kernel.config.service import (
    ALL_SCOPES,
    ApiConfig,
    ApiToken,
    ClockConfig,
    FailoverConfig,
    LineInfo,
    OpcUaEndpoint,
    Scope,
    StoreConfig,
    WebhooksConfig,
    WebhookTarget,
    default_schema,
)

__all__ = [
    "ALL_SCOPES",
    "ActionTemplate",
    "Aisle",
    "ApiConfig",
    "ApiToken",
    "Asrs",
    "AsrsTote",
    "B2bAllocation",
    "Charger",
    "Chute",
    "ChuteIds",
    "ChuteKind",
    "ClockConfig",
    "Conveyor",
    "ConveyorWatchdog",
    "Crane",
    "Deadlines",
    "Divert",
    "FailoverConfig",
    "Id",
    "Induction",
    "LineConfig",
    "LineInfo",
    "MapEdge",
    "MapNode",
    "MqttConfig",
    "MqttTls",
    "NonNegFloat",
    "OpcUaEndpoint",
    "PickTemplate",
    "PositiveFloat",
    "Robot",
    "RobotArea",
    "RobotModel",
    "Scanner",
    "Scope",
    "Sku",
    "Sorter",
    "StockEntry",
    "StorageLocation",
    "StoragePolicy",
    "StoreConfig",
    "Strict",
    "Traffic",
    "WebhookTarget",
    "WebhooksConfig",
    "Zone",
    "default_schema",
]

# --- master data --------------------------------------------------------------------------------


class Sku(Strict):
    sku: Id
    description: str = ""
    case_quantity: Annotated[int, Field(ge=1)] = 1
    # units on hand (all locations, all totes) below which a low-stock alert is raised
    low_stock: Annotated[int, Field(ge=0)] = 0


class StockEntry(Strict):
    """Stock at a robot pick location at start."""

    location: Id
    sku: Id
    quantity: Annotated[int, Field(ge=0)]
    # replenishment from the AS/RS: when the location holds fewer than ``replenish_below``
    # units, a tote of the SKU is brought out and up to ``replenish_to`` units are moved over
    replenish_below: Annotated[int, Field(ge=0)] = 0
    replenish_to: Annotated[int, Field(ge=0)] | None = None


class LineConfig(Strict):
    """The whole line."""

    line: LineInfo = LineInfo()
    clock: ClockConfig = ClockConfig()
    store: StoreConfig = StoreConfig()
    failover: FailoverConfig = FailoverConfig()
    api: ApiConfig = ApiConfig()
    mqtt: MqttConfig = MqttConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    robots: RobotArea
    conveyor: Conveyor
    asrs: Asrs = Asrs()
    deadlines: Deadlines = Deadlines()
    skus: list[Sku]
    stock: list[StockEntry] = Field(default_factory=list)

    # convenience lookups -------------------------------------------------------------------
    def node(self, node_id: str) -> MapNode:
        for n in self.robots.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def node_map_id(self, node: MapNode) -> str:
        return node.map_id or self.robots.map_id

    def robot_model(self, serial: str) -> RobotModel:
        for r in self.robots.fleet:
            if r.serial == serial:
                return self.robots.models[r.model]
        raise KeyError(serial)

    def location_node(self, location_id: str) -> str:
        for loc in self.robots.storage_locations:
            if loc.id == location_id:
                return loc.node
        raise KeyError(location_id)

    def with_overrides(self, **changes: Any) -> LineConfig:
        """A copy with top-level sections replaced (used by the demo to set ports)."""
        return self.model_copy(update=changes)

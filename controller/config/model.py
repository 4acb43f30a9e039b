"""The line topology as a pydantic model.

One YAML file describes one line: the robot area (map, storage locations, robots, chargers,
induction points), the conveyor loop with its scanner, sorter diverts and chutes, the AS/RS, the
SKU master and the starting stock, plus the service settings (store, API, MQTT, OPC UA, clock).

Structural rules (types, ranges, required fields) live on the fields; rules that tie parts of the
file together (a robot's home node must exist, a divert must point at a chute, ids are unique)
live in :func:`controller.config.checks.cross_check`, which reports every problem at once with its
place in the document.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)

from controller.webhook_signing import secret_key

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- service settings -------------------------------------------------------------------------


class LineInfo(Strict):
    id: Id = "line-1"
    name: str = "Fulfilment line"


class ClockConfig(Strict):
    time_scale: PositiveFloat = 1.0


class StoreConfig(Strict):
    backend: Literal["sqlite"] = "sqlite"
    path: str = "var/linectl.db"


Scope = Literal["orders:write", "orders:read", "line:operate"]
ALL_SCOPES: tuple[Scope, ...] = ("orders:write", "orders:read", "line:operate")


class ApiToken(Strict):
    token: Annotated[str, Field(min_length=16)]
    scopes: list[Scope] = Field(default_factory=lambda: list(ALL_SCOPES))
    # who holds the token, as the audit log names it (default: token-<position from 1>)
    name: Id | None = None


class ApiConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tokens: list[ApiToken] = Field(default_factory=list)
    reads_open: bool = True
    max_body_bytes: Annotated[int, Field(gt=0)] = 256 * 1024

    def token_name(self, index: int) -> str:
        """The name of ``tokens[index]``: its own, else ``token-<index + 1>``."""
        return self.tokens[index].name or f"token-{index + 1}"

    @model_validator(mode="after")
    def _names_unique(self) -> ApiConfig:
        names = [self.token_name(i) for i in range(len(self.tokens))]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tokens: names must be unique, {', '.join(twice)} appear twice")
        return self


def _webhook_secret(secret: SecretStr | None) -> SecretStr | None:
    if secret is not None:
        secret_key(secret.get_secret_value())  # raises ValueError with the reason
    return secret


class WebhookTarget(Strict):
    """A receiver of order events: every event, or only ``event_types``."""

    url: HttpUrl
    secret: SecretStr  # whsec_<base64> (Standard Webhooks) or a raw string
    event_types: list[Annotated[str, Field(min_length=1)]] | None = None

    _secret = field_validator("secret")(_webhook_secret)


class WebhooksConfig(Strict):
    """Signed, retried delivery of order events (``webhooks.targets`` and ``callback_url``)."""

    targets: list[WebhookTarget] = Field(default_factory=list)
    callback_secret: SecretStr | None = None  # signs deliveries to an order's callback_url
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    initial_backoff: PositiveFloat = 1.0  # line seconds before the second attempt
    max_backoff: PositiveFloat = 300.0
    timeout: PositiveFloat = 5.0  # wall seconds per HTTP attempt
    concurrency: Annotated[int, Field(ge=1, le=64)] = 4  # attempts in flight per receiver

    _callback_secret = field_validator("callback_secret")(_webhook_secret)

    @model_validator(mode="after")
    def _consistent(self) -> WebhooksConfig:
        urls = [str(t.url) for t in self.targets]
        if len(set(urls)) != len(urls):
            dup = next(u for u in urls if urls.count(u) > 1)
            raise ValueError(f"targets: url {dup} appears more than once")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be at least initial_backoff")
        return self


class MqttConfig(Strict):
    url: str = "mqtt://127.0.0.1:1883"
    interface_name: Id = "uagv"
    client_id: str = "linectl-master"

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return v


# --- robot area ---------------------------------------------------------------------------------


class MapNode(Strict):
    id: Id
    x: float
    y: float
    map_id: Id | None = None  # defaults to robots.map_id


class MapEdge(Strict):
    start: Id
    end: Id
    bidirectional: bool = True
    max_speed: PositiveFloat | None = None


class StorageLocation(Strict):
    id: Id
    node: Id


class Charger(Strict):
    id: Id
    node: Id


class Induction(Strict):
    id: Id
    node: Id
    zone: Id  # conveyor zone the robot drops onto


class ActionTemplate(Strict):
    duration: NonNegFloat = 2.0
    blocking_type: Literal["NONE", "SOFT", "HARD"] = "HARD"
    parameters: dict[str, str | float | int | bool] = Field(default_factory=dict)


class RobotModel(Strict):
    manufacturer: Id
    speed: PositiveFloat = 1.5
    tote_capacity: Annotated[int, Field(ge=1, le=64)] = 1
    # an idle robot below charge_below percent goes to a charger and works again at charge_until
    charge_below: Annotated[float, Field(ge=0, le=100)] = 25.0
    charge_until: Annotated[float, Field(gt=0, le=100)] = 90.0
    pick: ActionTemplate = ActionTemplate()
    drop: ActionTemplate = ActionTemplate()


class Robot(Strict):
    serial: Id
    model: Id
    version: Literal["2.0.0", "2.1.0"] = "2.0.0"
    home: Id


class Traffic(Strict):
    """Node reservation for the robot fleet (see ``routing.traffic``)."""

    # off: every trip is released whole, for fleets whose own fleet manager keeps them apart
    enabled: bool = True
    # released nodes kept ahead of a robot; more runs smoother but makes deadlocks likelier
    lookahead: Annotated[int, Field(ge=1, le=50)] = 3
    # where idle robots that stand in the way are sent; empty: the robots' home nodes
    parking: list[Id] = Field(default_factory=list)
    detour_ratio: Annotated[float, Field(ge=1.0)] = 2.0  # accepted detour around an idle robot
    detour_slack: NonNegFloat = 12.0  # ... up to ratio x direct length + slack metres
    tick: PositiveFloat = 0.2  # line seconds between checks of the robots' positions
    wait_warning: PositiveFloat = 60.0  # line seconds a robot waits before it is logged
    # robots waiting on each other in a cycle this long: the lowest-priority one's trip is
    # cancelled and its orders go back to the queue, so the others can pass
    deadlock_after: PositiveFloat = 30.0
    # a robot whose remaining way has not got shorter for this long (it keeps stepping aside
    # and coming back) gives way the same way
    stall_after: PositiveFloat = 120.0


class RobotArea(Strict):
    map_id: Id = "floor-1"
    nodes: list[MapNode]
    edges: list[MapEdge]
    storage_locations: list[StorageLocation]
    chargers: list[Charger] = Field(default_factory=list)
    inductions: list[Induction]
    models: dict[Id, RobotModel]
    fleet: list[Robot]
    # line seconds a robot may stay unavailable before its trip is given to another robot
    failure_grace: PositiveFloat = 20.0
    traffic: Traffic = Traffic()


# --- conveyor and sorter ------------------------------------------------------------------------


class Zone(Strict):
    id: Id
    length: PositiveFloat = 1.0


class Scanner(Strict):
    id: Id
    zone: Id  # the read happens as an item leaves this zone
    no_read_rate: Annotated[float, Field(ge=0, le=1)] = 0.0


class ChuteKind(StrEnum):
    CARRIER = "carrier"
    B2B = "b2b"
    REJECT = "reject"
    REPLENISHMENT = "replenishment"  # AS/RS totes for robot pick locations are decanted here


class Chute(Strict):
    id: Id
    kind: ChuteKind
    capacity: Annotated[int, Field(ge=1)] = 50
    drain_seconds: NonNegFloat = 20.0  # time an operator needs to clear one tote


class Divert(Strict):
    id: Id
    zone: Id  # the divert fires as an item leaves this zone
    chute: Id


def _chute_list(value: Any) -> Any:
    """A sort plan entry names one chute (``CH-DHL``) or several (``[CH-DHL, CH-DHL-2]``)."""
    return (value,) if isinstance(value, str) else value


ChuteIds = Annotated[tuple[Id, ...], BeforeValidator(_chute_list)]


class B2bAllocation(Strict):
    """How B2B orders get the chute (value-added station) their totes are sorted to.

    ``static`` (the default): by the sort plan like any order, else ``b2b_chute``; orders share
    a chute. ``dynamic``: every open B2B order holds one chute of ``chutes`` (the pool, chutes of
    kind b2b) of its own from its first divert until it completes, is cancelled or goes to
    exception; then the chute is free for the next order. Precedence in dynamic mode:

    1. an order that holds a chute goes there;
    2. a destination whose sort plan entry names chutes outside the pool keeps them (a customer
       with a dedicated station; a plan entry names either pool chutes or others, never both);
    3. else a free pool chute (not held, not full, not disabled) is allocated: one the
       destination's plan entry names if one is free, else any; the emptiest first;
    4. no pool chute free: ``overflow: recirculate`` (the default) sends the tote round again
       and, after ``max_passes``, to the reject chute (the order goes to exception);
       ``overflow: static`` sends it where static mode would (the plan entry, else
       ``b2b_chute``), sharing that station with the order holding it.
    """

    mode: Literal["static", "dynamic"] = "static"
    chutes: tuple[Id, ...] = ()  # the pool; dynamic mode only
    overflow: Literal["recirculate", "static"] = "recirculate"


class Sorter(Strict):
    """The sorter: its diverts and chutes, and where orders go.

    ``sort_plan`` maps a destination key (carrier, route, customer) to one chute id or a list
    of them; with several, each tote goes to the available one (not full, not disabled) holding
    the fewest totes, ties to the first listed. ``b2b_chute`` takes B2B orders whose destination
    has no plan entry; ``b2b_allocation`` can give each B2B order a chute of its own.
    """

    id: Id
    diverts: list[Divert]
    chutes: list[Chute]
    reject_chute: Id
    sort_plan: dict[str, ChuteIds]  # destination key -> chute ids (one or more)
    b2b_chute: Id | None = None  # where B2B orders without a plan entry go
    b2b_allocation: B2bAllocation = B2bAllocation()
    max_passes: Annotated[int, Field(ge=1, le=20)] = 3


class OpcUaEndpoint(Strict):
    """Where the conveyor's OPC UA server is and how to talk to it (docs/opcua-model.md).

    ``Basic256Sha256`` always means SignAndEncrypt: signing alone would send the password of
    ``username`` readable by anyone on the cell network. Paths are PEM or DER files, relative
    to the working directory; ``linectl opcua certs`` writes a matching set.
    """

    endpoint: str = "opc.tcp://127.0.0.1:4840/linectl/"
    namespace: str = "urn:linectl:conveyors"
    security: Literal["None", "Basic256Sha256"] = "None"
    certificate: str | None = None  # the controller's own certificate ...
    private_key: str | None = None  # ... and its key (unencrypted)
    # the server's certificate, pinned; without it the one the server presents is taken
    server_certificate: str | None = None
    username: str | None = None
    password: SecretStr | None = None  # or LINECTL_CONVEYOR__OPCUA__PASSWORD

    @field_validator("endpoint")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError("must start with opc.tcp://")
        return v


class ConveyorWatchdog(Strict):
    """The controller's life sign to the conveyor PLC (docs/opcua-model.md, Watchdog). Both in
    wall seconds, whatever the time scale: a stalled controller is a real-time event."""

    period: PositiveFloat = 0.5  # between the controller's counter writes
    # without a new counter value before the PLC (the simulator) holds the belts
    timeout: PositiveFloat = 3.0


class Conveyor(Strict):
    id: Id = "C1"
    opcua: OpcUaEndpoint = OpcUaEndpoint()
    belt_speed: PositiveFloat = 2.0  # m/s
    min_gap: PositiveFloat = 0.8  # m between item fronts on the belt
    watchdog: ConveyorWatchdog = ConveyorWatchdog()
    # after the PLC held the belts because the controller went silent (communication lost,
    # controller stalled), resume them once connected again and the state has been read
    resume_after_comms_loss: bool = True
    # line seconds a tote the controller sent onto the conveyor may stay out of sight after the
    # conveyor came back (not in its tracking table, not scanned) before its order goes to
    # exception as lost on the conveyor
    lost_item_grace: PositiveFloat = 60.0
    zones: list[Zone]  # in loop order; after the last zone items return to the first
    scanner: Scanner
    sorter: Sorter
    # a jam on zone J stops J and this many zones before it (zero-pressure accumulation);
    # the other zones run on
    jam_hold_zones: Annotated[int, Field(ge=0)] = 2

    @model_validator(mode="after")
    def _jam_hold_fits(self) -> Conveyor:
        if self.jam_hold_zones >= len(self.zones):
            raise ValueError(
                f"jam_hold_zones ({self.jam_hold_zones}) must be less than the number of "
                f"zones ({len(self.zones)})"
            )
        return self


# --- AS/RS ----------------------------------------------------------------------------------------


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
    api: ApiConfig = ApiConfig()
    mqtt: MqttConfig = MqttConfig()
    webhooks: WebhooksConfig = WebhooksConfig()
    robots: RobotArea
    conveyor: Conveyor
    asrs: Asrs = Asrs()
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

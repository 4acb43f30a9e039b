"""The seams between the controller and its devices: one small protocol per device kind.

Adapters (``devices/vda5050``, ``devices/opcua``) implement these with a vendor library inside;
what crosses the seam are the plain, frozen values below. Adapters report what happens on the
line by putting :data:`DeviceEvent` values on the queue the controller hands them; the controller
commands devices through the protocol methods. No vendor type or exception leaves an adapter:
failures surface as :class:`devices.errors.DeviceError` subclasses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

# --- robots ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobotAction:
    """An action at a node: ``pick`` or ``drop`` (or any vendor action) with its parameters."""

    action_id: str
    action_type: str
    blocking_type: Literal["NONE", "SOFT", "HARD"] = "HARD"
    parameters: tuple[tuple[str, str | float | int | bool], ...] = ()


@dataclass(frozen=True)
class RouteNode:
    node_id: str
    x: float
    y: float
    map_id: str
    actions: tuple[RobotAction, ...] = ()
    released: bool = True  # False: horizon (planned, not yet to be driven; VDA 5050 6.6.1)


@dataclass(frozen=True)
class RouteEdge:
    start: str
    end: str
    length: float
    max_speed: float | None = None
    released: bool = True


@dataclass(frozen=True)
class RobotOrder:
    """A trip for one robot: nodes in driving order (the first is where the robot stands).

    The released nodes (the base) come first; the rest, if any, is the horizon."""

    order_id: str
    nodes: tuple[RouteNode, ...]
    edges: tuple[RouteEdge, ...]


@dataclass(frozen=True)
class RobotSnapshot:
    """What the controller knows about one robot right now."""

    serial: str
    manufacturer: str
    version: str
    connection: Literal["ONLINE", "OFFLINE", "CONNECTIONBROKEN", "UNKNOWN"]
    operating_mode: str | None
    last_node_id: str | None
    x: float | None
    y: float | None
    driving: bool
    order_id: str | None
    battery: float | None
    errors: tuple[str, ...]
    state_age: float | None  # line seconds since the last state message, None if never
    available: bool  # online, AUTOMATIC, no FATAL error, state fresh, factsheet allows picking
    charging: bool | None = None  # None until a state message arrived
    paused: bool = False  # startPause in effect (VDA 5050 state.paused)
    # what the robot's factsheet lacks for picking (pick/drop action or template parameters)
    factsheet_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RobotActionFinished:
    serial: str
    order_id: str
    action_id: str
    action_type: str
    node_id: str
    at: datetime


@dataclass(frozen=True)
class RobotActionFailed:
    serial: str
    order_id: str
    action_id: str
    action_type: str
    node_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class RobotOrderFinished:
    """Every node of the order traversed and every action finished or failed."""

    serial: str
    order_id: str
    at: datetime


@dataclass(frozen=True)
class RobotAvailability:
    serial: str
    available: bool
    reason: str
    at: datetime


class RobotFleet(Protocol):
    """Master control for a fleet of robots (VDA 5050 over MQTT in ``devices.vda5050``)."""

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Connect, subscribe, keep the connection (reconnect with backoff) until cancelled."""
        ...

    async def send_order(self, serial: str, order: RobotOrder) -> None:
        """Send a trip to one robot; raises DeviceUnavailable if it cannot be sent."""
        ...

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[RouteNode],
        edges: Sequence[RouteEdge],
    ) -> int:
        """Extend (and re-plan the horizon of) the robot's order; returns the orderUpdateId.
        Raises CommandRejected while the previous update is unconfirmed."""
        ...

    async def send_instant_actions(self, serial: str, actions: Sequence[RobotAction]) -> None:
        """Instant actions (``startPause``, ``stopPause``, ...); outcomes arrive as events."""
        ...

    async def cancel_order(self, serial: str) -> str:
        """Ask the robot to cancel its current order; returns the instant action's id."""
        ...

    def snapshot(self) -> dict[str, RobotSnapshot]:
        """Current state of every configured robot."""
        ...


# --- conveyor and sorter ------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemScanned:
    """A scanner read: ``codes`` empty is a no-read, more than one is a multi-read."""

    scanner_id: str
    item_id: str  # tracking id the conveyor gave the item at induction
    codes: tuple[str, ...]
    at: datetime
    # when the adapter received the event (time.perf_counter), for scan-to-divert latency
    received: float = field(default_factory=time.perf_counter, compare=False)


@dataclass(frozen=True)
class ItemDiverted:
    """A divert completed (or failed) for an item."""

    divert_id: str
    item_id: str
    chute_id: str
    ok: bool
    at: datetime
    tote_id: str | None = None  # the tote's code, when the conveyor knows it
    sequence: int | None = None  # the conveyor's divert journal number
    # read back from the journal after a reconnect: the event itself was missed
    replayed: bool = False


@dataclass(frozen=True)
class BeltItem:
    """An item the conveyor tracks, as read after a (re)connect."""

    item_id: str
    tote_id: str
    zone_id: str  # where its front is; its induction zone while it waits to go on
    on_belt: bool
    requested_chute: str | None  # a pending Divert request, if the conveyor still holds one


@dataclass(frozen=True)
class DivertRecord:
    """One entry of the conveyor's divert journal."""

    sequence: int
    item_id: str
    tote_id: str
    chute_id: str
    ok: bool


@dataclass(frozen=True)
class ConveyorTracking:
    """Everything the conveyor tracks, read once the session is up again: the controller
    reconciles its own view of items with it."""

    conveyor_id: str
    items: tuple[BeltItem, ...]
    at: datetime
    journal_reset: bool = False  # the conveyor's divert journal started again (lost)
    # on the first contact of this controller: the journal the conveyor still holds, for
    # totes of orders that were on the conveyor when the controller (re)started
    journal: tuple[DivertRecord, ...] = ()


@dataclass(frozen=True)
class ItemInducted:
    item_id: str
    zone_id: str
    at: datetime


@dataclass(frozen=True)
class ConveyorAvailability:
    conveyor_id: str
    available: bool
    reason: str
    at: datetime


@dataclass(frozen=True)
class ChuteSnapshot:
    chute_id: str
    full: bool
    enabled: bool
    count: int


@dataclass(frozen=True)
class ConveyorSnapshot:
    conveyor_id: str
    connected: bool
    state: str  # PackML state name, "Unknown" when not connected
    chutes: tuple[ChuteSnapshot, ...] = field(default_factory=tuple)
    jammed_zones: tuple[str, ...] = ()


class Sorter(Protocol):
    """A conveyor loop with a scanner and a sorter (OPC UA in ``devices.opcua``)."""

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Connect, subscribe to scans and divert completions, reconnect until cancelled."""
        ...

    async def divert(self, item_id: str, chute_id: str) -> None:
        """Command the divert for ``item_id`` to ``chute_id``; raises DeviceError on refusal."""
        ...

    async def command(self, name: str) -> None:
        """A PackML command (``Start``, ``Hold``, ...); CommandRejected if refused in the
        current state, DeviceUnavailable when not connected."""
        ...

    async def jog(self, zone: str, speed: float, seconds: float) -> None:
        """Run one zone at ``speed`` m/s for ``seconds`` outside production (commissioning);
        CommandRejected if refused (unit in Execute, zone jammed or unknown, out of range),
        DeviceUnavailable when not connected."""
        ...

    def snapshot(self) -> ConveyorSnapshot: ...


# --- AS/RS cranes ----------------------------------------------------------------------------

CraneKind = Literal["Store", "Retrieve"]


@dataclass(frozen=True)
class CraneCommandFinished:
    """A crane finished a transport (one per half of a dual command), or failed it."""

    crane: str
    aisle: str
    command_id: str
    kind: CraneKind
    tote: str
    location: str
    ok: bool
    reason: str  # "" when ok; "crane fault"-like text from the crane, "power loss", ...
    sequence: int  # the crane's journal number
    replayed: bool  # read back from the journal after a reconnect: the event itself was missed
    at: datetime
    dual: bool = False  # half of a dual cycle
    cycle_seconds: float = 0.0  # line seconds of the crane's cycle (0 when it failed)


@dataclass(frozen=True)
class CraneContents:
    """What the racks hold, read after every (re)connect: aisle -> {location: tote}."""

    contents: Mapping[str, Mapping[str, str]]
    at: datetime


@dataclass(frozen=True)
class TotesAtPdInput:
    """The totes now waiting at an aisle's P&D input, in arrival order: the whole list as the
    infeed reports it (``PdInput``), after every (re)connect and whenever it changes."""

    aisle: str
    crane: str
    totes: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class CranesAvailability:
    """The AS/RS server's session came up or went down (every crane at once)."""

    available: bool
    reason: str
    at: datetime


@dataclass(frozen=True)
class CraneSnapshot:
    crane: str
    aisle: str
    connected: bool
    state: str  # Idle, Moving, PickingUp, Depositing, Fault; "Unknown" when not connected
    x: float | None
    y: float | None
    current_command: str
    queue_length: int
    fault: str
    pd_input: tuple[str, ...] = ()  # totes waiting at the P&D input; () when not connected


class Cranes(Protocol):
    """The AS/RS stacker cranes, one per aisle (OPC UA in ``devices.opcua.cranes``).

    Commands carry a ``command_id`` chosen by the caller: sending the same command again (after
    a lost answer, a reconnect, a restart) never moves stock twice. Acceptance is the return;
    the outcome arrives later as a ``CraneCommandFinished``. Refusals raise CommandRejected,
    no connection DeviceUnavailable.

    ``run`` also reports the totes waiting at each aisle's P&D input as ``TotesAtPdInput``
    (the whole list): one per crane after the ``CraneContents`` of every (re)connect, then one
    each time an aisle's list changes (never the same list twice in a row for an aisle).
    """

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Connect, subscribe to completions, reconnect with backoff until cancelled."""
        ...

    async def store(self, aisle: str, command_id: str, tote: str, location: str) -> None: ...

    async def retrieve(self, aisle: str, command_id: str, tote: str, location: str) -> None: ...

    async def dual(
        self,
        aisle: str,
        command_id: str,
        store_tote: str,
        store_location: str,
        retrieve_tote: str,
        retrieve_location: str,
    ) -> None:
        """A store and a retrieve in one dual cycle (two completions, same command id)."""
        ...

    def snapshot(self) -> dict[str, CraneSnapshot]:
        """Every configured crane by aisle."""
        ...

    def resume_from(self, last_sequences: Mapping[str, int]) -> None:
        """Before ``run``: the highest journal numbers handled before a restart, per aisle."""
        ...


DeviceEvent = (
    RobotActionFinished
    | RobotActionFailed
    | RobotOrderFinished
    | RobotAvailability
    | ItemScanned
    | ItemDiverted
    | ItemInducted
    | ConveyorAvailability
    | ConveyorTracking
    | CraneCommandFinished
    | CraneContents
    | TotesAtPdInput
    | CranesAvailability
)

"""The seams between the controller and its devices: one small protocol per device kind.

Adapters (``devices/vda5050``, ``devices/opcua``) implement these with a vendor library inside;
what crosses the seam are plain, frozen values (listed below). Adapters report what happens on the
line by putting :data:`DeviceEvent` values on the queue the controller hands them; the controller
commands devices through the protocol methods. No vendor type or exception leaves an adapter:
failures surface as :class:`devices.errors.DeviceError` subclasses.

The values live by device kind in :mod:`devices.base_robots`, :mod:`devices.base_conveyor` and
:mod:`devices.base_cranes`; every one of them is imported from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from devices.base_conveyor import (
    BeltItem,
    ChuteSnapshot,
    ConveyorAvailability,
    ConveyorSnapshot,
    ConveyorTracking,
    DivertRecord,
    ItemDiverted,
    ItemInducted,
    ItemScanned,
    ZoneSnapshot,
)
from devices.base_cranes import (
    CraneCommandFinished,
    CraneContents,
    CraneKind,
    CranesAvailability,
    CraneSnapshot,
    TotesAtPdInput,
)
from devices.base_robots import (
    ActionStatus,
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotAvailability,
    RobotLoad,
    RobotOrder,
    RobotOrderFinished,
    RobotPosition,
    RobotSnapshot,
    RouteEdge,
    RouteNode,
    positions_of,
    snapshots_in,
)

__all__ = [
    "ActionStatus",
    "BeltItem",
    "ChuteSnapshot",
    "ConveyorAvailability",
    "ConveyorSnapshot",
    "ConveyorTracking",
    "CraneCommandFinished",
    "CraneContents",
    "CraneKind",
    "CraneSnapshot",
    "Cranes",
    "CranesAvailability",
    "DeviceEvent",
    "DivertRecord",
    "ItemDiverted",
    "ItemInducted",
    "ItemScanned",
    "RobotAction",
    "RobotActionFailed",
    "RobotActionFinished",
    "RobotAvailability",
    "RobotFleet",
    "RobotLoad",
    "RobotOrder",
    "RobotOrderFinished",
    "RobotPosition",
    "RobotSnapshot",
    "RouteEdge",
    "RouteNode",
    "Sorter",
    "TotesAtPdInput",
    "ZoneSnapshot",
    "positions_of",
    "snapshots_in",
]

# --- robots ---------------------------------------------------------------------------------------


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

    def robot_positions(self) -> dict[str, RobotPosition]:
        """Where every robot last reported standing (the part of :meth:`snapshot` traffic
        control reads on every tick); robots that never reported have no node."""
        ...

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, RobotSnapshot]:
        """Current state of the given robots only (unknown serials are left out): what a
        caller that looks at a few robots of a large fleet reads."""
        ...


# --- conveyor and sorter ------------------------------------------------------------------------


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


class Cranes(Protocol):
    """The AS/RS stacker cranes, one per aisle (OPC UA in ``devices.opcua.cranes.adapter``).

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

"""What the inventory records and what a stock write reports back: stock rows, ledger movements,
line-level inventory events, pick outcomes, AS/RS differences and :class:`Applied`.

These are plain records with no store behind them. They sit below the store protocols so that
every protocol whose writes change stock (the inventory's, the reject-tote register's) can return
an :class:`Applied` without importing another protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from controller.orders.waiting import ShortPick


class MovementKind(StrEnum):
    """The confirmed event behind a change of on-hand."""

    INITIAL_LOAD = "initial_load"  # the line file's stock, on the first start only
    ROBOT_PICK_CONFIRMED = "robot_pick_confirmed"  # a robot's pick action finished
    CRANE_STORE_CONFIRMED = "crane_store_confirmed"  # a crane put a tote into a rack location
    CRANE_RETRIEVE_CONFIRMED = "crane_retrieve_confirmed"  # a crane brought a tote out
    TOTE_MOVED = "tote_moved"  # a tote moved with its contents (conveyor, station)
    TOTE_PICK_CONFIRMED = "tote_pick_confirmed"  # units taken out of a tote
    PUT_CONFIRMED = "put_confirmed"  # units put at a location (replenishment)
    VERIFICATION_COUNT = "verification_count"  # a count at a station or a cycle count
    REJECT_RESTOCKED = "reject_restocked"  # units of a reject-chute tote counted back in


@dataclass(frozen=True)
class StockRow:
    location: str
    tote: str | None
    sku: str
    on_hand: int
    reserved: int  # open reservations: of this location's loose stock, or of this tote
    updated_at: datetime

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Movement:
    """One ledger row: a change of on-hand and the confirmed event behind it."""

    seq: int
    at: datetime
    kind: MovementKind
    location: str
    tote: str | None
    sku: str
    delta: int
    on_hand: int  # after the change
    ref: str  # the event: robot action id, crane command id, count id, ...
    order_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class InventoryEvent:
    """A line-level inventory event (low stock, short pick, AS/RS difference), in ``seq``
    order in its own journal."""

    seq: int
    at: datetime
    type: str
    sku: str | None
    location: str | None
    data: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "type": self.type,
            "sku": self.sku,
            "location": self.location,
            "at": self.at.isoformat(),
            "data": self.data,
        }


@dataclass(frozen=True)
class PickOutcome:
    """What a pick confirmation did: ``reserved`` units were expected, ``picked`` taken (from
    ``tote`` at ``location`` when the units came out of a tote)."""

    order_id: str
    line_id: str
    sku: str
    location: str
    reserved: int
    picked: int
    duplicate: bool = False  # the event was applied before; nothing changed now
    tote: str | None = None

    @property
    def short(self) -> int:
        return max(0, self.reserved - self.picked)

    @property
    def short_pick(self) -> ShortPick | None:
        """Why the order stops, when fewer units were picked than reserved."""
        if not self.short:
            return None
        return ShortPick(self.sku, self.location, self.tote, self.picked, self.reserved)

    @property
    def reason(self) -> str | None:
        """:attr:`short_pick` in words (for the history event and the log)."""
        short = self.short_pick
        return None if short is None else short.render()


@dataclass(frozen=True)
class Difference:
    """The AS/RS reports something other than what the inventory holds."""

    kind: str  # unexpected_tote | tote_missing | tote_elsewhere
    location: str
    reported_tote: str | None
    expected_tote: str | None
    expected_location: str | None = None


@dataclass(frozen=True)
class Applied:
    """The outcome of a write: the ledger rows and events it added, the stock of the SKUs it
    touched afterwards and where the totes it moved are now (for the in-memory mirror), and
    whether the event was a duplicate."""

    movements: list[Movement] = field(default_factory=list)
    events: list[InventoryEvent] = field(default_factory=list)
    stock: dict[str, list[StockRow]] = field(default_factory=dict)
    duplicate: bool = False
    pick: PickOutcome | None = None
    differences: list[Difference] = field(default_factory=list)
    totes: dict[str, str] = field(default_factory=dict)

"""Totes whose picked units left the books: the reject chute's contents and the way back.

A robot pick takes units off a location's on-hand when the robot reports it (the ledger's
``robot_pick_confirmed``). When the tote then serves no order (the order was cancelled, went into
``exception``, or was given to another robot), the conveyor sends it to the reject chute, and
those units are in no location and in no shipped order. Each such tote is registered here with
what it holds, *open* until an operator either counts its units back into a pick location
(``reject_restocked`` rows in the ledger, one per SKU and location) or writes them off (an
inventory event, no change of on-hand: the units already left it). Every resolution is applied
once and names who made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from controller.store.stock import Applied


class RejectToteState(StrEnum):
    OPEN = "open"  # in the reject chute (or on its way), its units off the books
    RESTOCKED = "restocked"  # counted back into pick locations (anything missing written off)
    WRITTEN_OFF = "written_off"  # the units are gone


@dataclass(frozen=True)
class RejectLine:
    """Units of one SKU in the tote, and the location they were picked from."""

    sku: str
    location: str
    quantity: int
    line_id: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "location": self.location,
            "quantity": self.quantity,
            "line_id": self.line_id,
        }


@dataclass(frozen=True)
class RestockLine:
    """What the operator counted back: ``quantity`` units of ``sku`` put at ``location``."""

    sku: str
    location: str
    quantity: int


@dataclass(frozen=True)
class RejectTote:
    id: int
    tote: str
    order_id: str
    trip_id: str
    chute: str
    reason: str
    lines: tuple[RejectLine, ...]
    state: RejectToteState
    arrived_at: datetime
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: dict[str, Any] = field(default_factory=dict)

    @property
    def units(self) -> int:
        return sum(ln.quantity for ln in self.lines)


class RejectToteError(Exception):
    """A resolution that cannot be applied (unknown tote, already resolved, more units than it
    held); nothing was changed. The store itself works: this is no store failure."""


class UnknownRejectTote(RejectToteError):
    pass


class RejectToteResolved(RejectToteError):
    """The tote was restocked or written off before."""


class RejectToteStore(Protocol):
    async def reject_tote_register(
        self,
        tote: str,
        order_id: str,
        trip_id: str,
        chute: str,
        reason: str,
        lines: Sequence[RejectLine],
        at: datetime,
    ) -> RejectTote:
        """Register a tote with picked units off the books; idempotent on ``trip_id`` (the
        registration made first is returned)."""
        ...

    async def reject_totes(
        self, state: RejectToteState | None = None, limit: int = 500
    ) -> list[RejectTote]:
        """Registered totes, oldest first, optionally only those in ``state``."""
        ...

    async def reject_tote(self, tote: str) -> RejectTote | None:
        """The tote's registration: the open one, else the newest."""
        ...

    async def reject_totes_open(self) -> tuple[int, int]:
        """How many totes are open, and the units they hold."""
        ...

    async def reject_tote_restock(
        self,
        tote: str,
        lines: Sequence[RestockLine],
        by: str,
        note: str,
        levels: dict[str, int],
        at: datetime,
    ) -> tuple[RejectTote, Applied]:
        """Put the counted units back (a ``reject_restocked`` ledger row each) and close the
        tote; whatever it held beyond what was counted is written off in the same transaction.
        :class:`UnknownRejectTote`, :class:`RejectToteResolved`, or :class:`RejectToteError`
        when a line names a SKU the tote did not hold or more units than it held."""
        ...

    async def reject_tote_write_off(
        self, tote: str, by: str, note: str, at: datetime
    ) -> RejectTote:
        """Close the tote as written off (an inventory event ``reject_written_off``)."""
        ...

"""What crosses the conveyor seam: scans, diverts and inductions, what the conveyor tracks after
a reconnect (items, divert journal), availability and the conveyor's snapshot.

Plain frozen values, used by :class:`devices.base.Sorter` and importable from
:mod:`devices.base` with every other value of the device seams.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime


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
class ZoneSnapshot:
    """A zone as its PLC last reported it; None where the conveyor does not offer the value
    (or it has not been read yet)."""

    zone_id: str
    running: bool | None = None  # the zone's belt runs (false: stopped or held)
    occupied: bool | None = None  # photo-eye: an item's front is in the zone
    item_id: str | None = None  # the leading item in the zone; None when empty or unknown


@dataclass(frozen=True)
class ConveyorSnapshot:
    conveyor_id: str
    connected: bool
    state: str  # PackML state name, "Unknown" when not connected
    chutes: tuple[ChuteSnapshot, ...] = field(default_factory=tuple)
    jammed_zones: tuple[str, ...] = ()
    zones: tuple[ZoneSnapshot, ...] = ()  # in travel order; empty when not known

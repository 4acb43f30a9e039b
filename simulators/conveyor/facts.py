"""What the motion model reports after a step: plain values, in the order they happened.

Times are line seconds (``Clock.now()`` readings). The OPC UA bindings turn zone, chute and belt
facts into variable writes and scan and divert facts into events.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZoneChanged:
    """A zone's photo-eye or the item it sees changed (``item_id`` "" when empty)."""

    zone_id: str
    occupied: bool
    item_id: str


@dataclass(frozen=True)
class ZoneMotionChanged:
    """A zone's belt started or stopped (PackML state, or a jam holding it)."""

    zone_id: str
    running: bool
    speed: float


@dataclass(frozen=True)
class ZoneJamChanged:
    zone_id: str
    jammed: bool


@dataclass(frozen=True)
class ItemRead:
    """An item's front crossed the scanner point."""

    scanner_id: str
    item_id: str
    codes: tuple[str, ...]
    at: float

    @property
    def no_read(self) -> bool:
        return not self.codes

    @property
    def multi_read(self) -> bool:
        return len(self.codes) > 1


@dataclass(frozen=True)
class DivertFinished:
    """A requested divert fired (``success``) or could not take the item (chute full/disabled).

    ``sequence`` is the entry's number in the divert journal (1, 2, ...).
    """

    divert_id: str
    item_id: str
    chute_id: str
    success: bool
    at: float
    tote_id: str = ""
    sequence: int = 0


@dataclass(frozen=True)
class ChuteChanged:
    chute_id: str
    count: int
    full: bool
    enabled: bool
    delivered: int


Fact = ZoneChanged | ZoneMotionChanged | ZoneJamChanged | ItemRead | DivertFinished | ChuteChanged

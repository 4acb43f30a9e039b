"""AS/RS rack geometry: location ids, their positions, and the rack of one aisle. Pure.

An aisle has a rack of ``bays`` x ``levels`` on each of its sides (``L``, ``R``). Its crane's
pick-up/deposit (P&D) point is at the aisle's front at floor level, x = 0, y = 0. Location bay
``b``, level ``l`` (both from 1) has its centre at x = (b - 0.5) * bay_width,
y = (l - 0.5) * level_height, on either side: the crane serves both sides from the same spot.
Location ids read ``<aisle>-<side>-<bay:02d>-<level:02d>``, for example ``A1-L-07-03``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

SIDES = ("L", "R")
_ID = re.compile(r"^(?P<aisle>.+)-(?P<side>[LR])-(?P<bay>\d{2,})-(?P<level>\d{2,})$")


class BadLocation(ValueError):
    """A location id that does not name a location of the rack."""


@dataclass(frozen=True, order=True)
class Location:
    aisle: str
    side: str
    bay: int
    level: int

    @property
    def id(self) -> str:
        return f"{self.aisle}-{self.side}-{self.bay:02d}-{self.level:02d}"

    def __str__(self) -> str:
        return self.id


def parse_location(location_id: str) -> Location:
    """The location an id names (its aisle, side, bay and level); raises BadLocation."""
    m = _ID.match(location_id)
    if m is None:
        raise BadLocation(
            f"{location_id!r} is not an AS/RS location id (<aisle>-<L|R>-<bay>-<level>, "
            "for example A1-L-07-03)"
        )
    return Location(m["aisle"], m["side"], int(m["bay"]), int(m["level"]))


@dataclass(frozen=True)
class Rack:
    """The rack of one aisle."""

    aisle: str
    bays: int
    levels: int
    sides: int = 2
    bay_width: float = 0.7
    level_height: float = 0.5

    @property
    def length(self) -> float:
        """From the P&D point to the end of the last bay (m)."""
        return self.bays * self.bay_width

    @property
    def height(self) -> float:
        return self.levels * self.level_height

    def position(self, loc: Location) -> tuple[float, float]:
        """Centre of a location (x along the aisle, y up), in metres from the P&D point."""
        return ((loc.bay - 0.5) * self.bay_width, (loc.level - 0.5) * self.level_height)

    def contains(self, loc: Location) -> bool:
        return (
            loc.aisle == self.aisle
            and loc.side in SIDES[: self.sides]
            and 1 <= loc.bay <= self.bays
            and 1 <= loc.level <= self.levels
        )

    def check(self, location_id: str) -> Location:
        """The location of this rack an id names; raises BadLocation naming what is wrong."""
        loc = parse_location(location_id)
        if loc.aisle != self.aisle:
            raise BadLocation(f"{location_id!r} is not in aisle {self.aisle}")
        if loc.side not in SIDES[: self.sides]:
            raise BadLocation(f"{location_id!r}: aisle {self.aisle} has no side {loc.side}")
        if not 1 <= loc.bay <= self.bays:
            raise BadLocation(f"{location_id!r}: bay must be 1..{self.bays}")
        if not 1 <= loc.level <= self.levels:
            raise BadLocation(f"{location_id!r}: level must be 1..{self.levels}")
        return loc

    def locations(self) -> Iterator[Location]:
        for side in SIDES[: self.sides]:
            for bay in range(1, self.bays + 1):
                for level in range(1, self.levels + 1):
                    yield Location(self.aisle, side, bay, level)

"""The state a conveyor loop's motion model keeps, and the values it is made of.

:class:`LoopState` holds the loop's geometry (zone starts, scanner and divert points), what is on
it (items on the belt, totes waiting at their induction zone, divert requests, chute levels) and
how its belts run (produced, held by jams, jogged). It is the one state the model's parts
share: :class:`~simulators.conveyor.motion_travel.LoopTravel` moves the items through time,
:class:`~simulators.conveyor.motion.LoopModel` answers the views and commands. The exceptions
and :class:`TrackedItem` are part of the model's interface.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass

from kernel.config.model import Chute, Conveyor, Divert
from simulators.conveyor.facts import ChuteChanged
from simulators.conveyor.journal import DivertJournal

EPS = 1e-9
STOP_SHORT = 1e-6  # a jogged item stops this short of its zone's end, before any point there


class UnknownName(ValueError):
    """A zone, item or chute id the loop does not know."""


class JogRefused(Exception):
    """A jog the unit cannot take now: it produces, or the zone is jammed."""


MAX_JOG_SECONDS = 60.0


@dataclass(frozen=True)
class Jog:
    zone: int  # index of the jogged zone
    speed: float
    until: float  # line time the jog ends


@dataclass
class Item:
    item_id: str
    tote_id: str
    seq: int
    pos: float = 0.0


@dataclass(frozen=True)
class TrackedItem:
    """One item the loop knows: on the belt, or a tote waiting at its induction zone."""

    item_id: str
    tote_id: str
    zone_id: str  # zone of the item's front; the induction zone while waiting
    on_belt: bool
    requested: str  # chute of a pending divert request, "" if none


@dataclass
class ChuteState:
    config: Chute
    count: int = 0
    delivered: int = 0
    enabled: bool = True
    forced_full: bool = False
    next_drain: float | None = None

    @property
    def full(self) -> bool:
        return self.forced_full or self.count >= self.config.capacity

    def fact(self) -> ChuteChanged:
        return ChuteChanged(self.config.id, self.count, self.full, self.enabled, self.delivered)


@dataclass(frozen=True)
class Point:
    pos: float
    scanner_id: str | None = None
    divert: Divert | None = None


@dataclass
class Rates:
    no_read: float = 0.0
    multi_read: float = 0.0


class LoopState:
    """The state of one conveyor loop (see the module docstring)."""

    def __init__(self, conveyor: Conveyor, start: float = 0.0, seed: int = 0) -> None:
        self.conveyor = cfg = conveyor
        self.rates = Rates(no_read=cfg.scanner.no_read_rate)
        self.journal = DivertJournal()
        # bumped whenever what the loop holds changes (induction, a tote going onto the belt,
        # a divert, a chute draining): the moments the retained state must be written
        self.revision = 0
        self.rng = random.Random(seed)
        self.t = start
        self.next_seq = 1
        self.producing = True
        self.jammed: set[str] = set()
        self.zone_ids = [z.id for z in cfg.zones]
        self.zone_index = {z: i for i, z in enumerate(self.zone_ids)}
        self.zone_start: dict[str, float] = {}
        starts: list[float] = []
        pos = 0.0
        zone_end: dict[str, float] = {}
        for z in cfg.zones:
            self.zone_start[z.id] = pos
            starts.append(pos)
            pos += z.length
            zone_end[z.id] = pos
        self.starts = starts
        self.length = pos
        points = [Point(zone_end[cfg.scanner.zone], scanner_id=cfg.scanner.id)]
        points += [Point(zone_end[d.zone], divert=d) for d in cfg.sorter.diverts]
        self.points = points
        self.chutes = {c.id: ChuteState(c) for c in cfg.sorter.chutes}
        self.diverted_chutes = {d.chute for d in cfg.sorter.diverts}
        self.items: dict[str, Item] = {}
        self.pending: dict[str, deque[Item]] = {z: deque() for z in self.zone_ids}
        self.requests: dict[str, str] = {}  # item id -> requested chute id
        self.eyes: dict[str, str] = {}  # zone id -> leading item id, only occupied zones
        self.held: frozenset[int] = frozenset()  # indices of the zones jams hold
        self.running = [True] * len(self.zone_ids)  # as last reported, per zone
        self.speed = [cfg.belt_speed] * len(self.zone_ids)  # as last reported, per zone
        self.jog: Jog | None = None

    @property
    def moving(self) -> bool:
        """Some zone's belt runs."""
        return self.producing and len(self.held) < len(self.zone_ids)

    def all_items(self) -> list[Item]:
        return [*self.items.values(), *(it for q in self.pending.values() for it in q)]

    def zone_at(self, pos: float) -> str:
        return self.zone_ids[bisect.bisect_right(self.starts, pos) - 1]

    def index(self, zone_id: str) -> int:
        try:
            return self.zone_index[zone_id]
        except KeyError:
            raise UnknownName(f"unknown zone {zone_id!r}") from None

    def chute(self, chute_id: str) -> ChuteState:
        try:
            return self.chutes[chute_id]
        except KeyError:
            raise UnknownName(f"unknown chute {chute_id!r}") from None

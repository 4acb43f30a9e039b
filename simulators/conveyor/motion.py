"""The motion model of a conveyor loop with one scanner and a sorter: pure Python, no I/O.

Geometry: the zones lie end to end in travel order on a loop of length ``L`` (after the last zone
items return to the first). An item is a point, its front, at a position in ``[0, L)``. The
scanner reads as an item's front leaves the scanner zone; each divert fires as an item's front
leaves its zone. Inducted totes wait at their zone until placing them at the zone's start keeps
``min_gap`` to every item on the belt; after that all items move together, so gaps hold.

:meth:`LoopModel.step` advances the model to a line time and returns what happened, in time
order, as :mod:`simulators.conveyor.facts` values. Crossings inside one step are computed exactly
(time of crossing, not time of the step), so the step length never changes the outcome.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import deque
from dataclasses import dataclass

from controller.config.model import Chute, Conveyor, Divert
from simulators.conveyor.facts import (
    BeltChanged,
    ChuteChanged,
    DivertFinished,
    Fact,
    ItemRead,
    ZoneChanged,
    ZoneJamChanged,
)

_EPS = 1e-9


class UnknownName(ValueError):
    """A zone, item or chute id the loop does not know."""


@dataclass
class _Item:
    item_id: str
    tote_id: str
    seq: int
    pos: float = 0.0


@dataclass
class _ChuteState:
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
class _Point:
    pos: float
    scanner_id: str | None = None
    divert: Divert | None = None


@dataclass
class _Rates:
    no_read: float = 0.0
    multi_read: float = 0.0


class LoopModel:
    """One conveyor loop. Every mutating call takes the current line time ``now``."""

    def __init__(self, conveyor: Conveyor, start: float = 0.0, seed: int = 0) -> None:
        self.conveyor = cfg = conveyor
        self.rates = _Rates(no_read=cfg.scanner.no_read_rate)
        self._rng = random.Random(seed)
        self._t = start
        self._seq = itertools.count(1)
        self._speed = cfg.belt_speed
        self._producing = True
        self._jammed: set[str] = set()
        self._zone_ids = [z.id for z in cfg.zones]
        self._zone_start: dict[str, float] = {}
        starts: list[float] = []
        pos = 0.0
        zone_end: dict[str, float] = {}
        for z in cfg.zones:
            self._zone_start[z.id] = pos
            starts.append(pos)
            pos += z.length
            zone_end[z.id] = pos
        self._starts = starts
        self.length = pos
        points = [_Point(zone_end[cfg.scanner.zone], scanner_id=cfg.scanner.id)]
        points += [_Point(zone_end[d.zone], divert=d) for d in cfg.sorter.diverts]
        self._points = points
        self._chutes = {c.id: _ChuteState(c) for c in cfg.sorter.chutes}
        self._diverted_chutes = {d.chute for d in cfg.sorter.diverts}
        self._items: dict[str, _Item] = {}
        self._pending: dict[str, deque[_Item]] = {z: deque() for z in self._zone_ids}
        self._requests: dict[str, str] = {}  # item id -> requested chute id
        self._eyes: dict[str, str] = {}  # zone id -> leading item id, only occupied zones

    # --- views -----------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._t

    @property
    def moving(self) -> bool:
        return self._producing and not self._jammed

    @property
    def speed(self) -> float:
        return self._speed if self.moving else 0.0

    @property
    def zone_ids(self) -> list[str]:
        return list(self._zone_ids)

    def zone_item(self, zone_id: str) -> str:
        """Leading item seen by a zone's photo-eye, "" when the zone is empty."""
        return self._eyes.get(zone_id, "")

    def item_position(self, item_id: str) -> float | None:
        """Front position of an item on the belt; None while waiting or unknown."""
        item = self._items.get(item_id)
        return item.pos if item is not None else None

    def knows_item(self, item_id: str) -> bool:
        return item_id in self._items or any(
            it.item_id == item_id for q in self._pending.values() for it in q
        )

    def chute(self, chute_id: str) -> ChuteChanged:
        return self._chute(chute_id).fact()

    def chutes(self) -> list[ChuteChanged]:
        return [c.fact() for c in self._chutes.values()]

    # --- commands --------------------------------------------------------------------------

    def induct(self, tote_id: str, zone_id: str, now: float) -> tuple[str, list[Fact]]:
        """Hand a tote to the loop at ``zone_id``; it goes on the belt when the gap is free."""
        if zone_id not in self._pending:
            raise UnknownName(f"unknown zone {zone_id!r}")
        if not tote_id:
            raise UnknownName("empty tote id")
        seq = next(self._seq)
        item = _Item(f"{self.conveyor.id}-{seq:06d}", tote_id, seq)
        self._pending[zone_id].append(item)
        return item.item_id, self.step(now)

    def request_divert(self, item_id: str, chute_id: str) -> None:
        """Record that ``item_id`` should leave into ``chute_id`` at the next divert to it."""
        if chute_id not in self._chutes or chute_id not in self._diverted_chutes:
            raise UnknownName(f"unknown chute {chute_id!r}")
        if not self.knows_item(item_id):
            raise UnknownName(f"unknown item {item_id!r}")
        self._requests[item_id] = chute_id

    def set_producing(self, producing: bool, now: float) -> list[Fact]:
        """PackML: belts run only while the unit is in ``Execute``."""
        facts = self.step(now)
        was = self.moving
        self._producing = producing
        return facts + self._belt_fact(was)

    def set_jammed(self, zone_id: str, jammed: bool, now: float) -> list[Fact]:
        """A jam anywhere stops the loop until it is cleared."""
        if zone_id not in self._pending:
            raise UnknownName(f"unknown zone {zone_id!r}")
        facts = self.step(now)
        was = self.moving
        if jammed == (zone_id in self._jammed):
            return facts
        (self._jammed.add if jammed else self._jammed.discard)(zone_id)
        facts.append(ZoneJamChanged(zone_id, jammed))
        return facts + self._belt_fact(was)

    def set_chute_enabled(self, chute_id: str, enabled: bool, now: float) -> list[Fact]:
        facts = self.step(now)
        chute = self._chute(chute_id)
        if chute.enabled != enabled:
            chute.enabled = enabled
            facts.append(chute.fact())
        return facts

    def set_chute_full(self, chute_id: str, full: bool, now: float) -> list[Fact]:
        """Force a chute's full signal on (as a full-chute sensor would) or release it."""
        facts = self.step(now)
        chute = self._chute(chute_id)
        before = chute.full
        chute.forced_full = full
        if chute.full != before:
            facts.append(chute.fact())
        return facts

    # --- time --------------------------------------------------------------------------------

    def step(self, now: float) -> list[Fact]:
        """Advance to line time ``now``; returns what happened, in time order."""
        t0 = self._t
        facts: list[Fact] = []
        if now > t0:
            if self.moving and self._items:
                facts += self._move(t0, (now - t0) * self._speed)
            self._drain_until(now, facts)
            self._t = now
        self._place_pending()
        facts += self._update_eyes()
        return facts

    def _move(self, t0: float, dist: float) -> list[Fact]:
        facts: list[Fact] = []
        length = self.length
        crossings: list[tuple[float, int, int, _Item]] = []
        for item in self._items.values():
            for index, point in enumerate(self._points):
                d = (point.pos - item.pos) % length
                if d < _EPS:
                    d = length  # sitting on the point: it crossed it in an earlier step
                while d <= dist + _EPS:
                    crossings.append((d, item.seq, index, item))
                    d += length
        crossings.sort(key=lambda c: (c[0], c[1], c[2]))
        for d, _, index, item in crossings:
            if item.item_id not in self._items:
                continue  # left through an earlier divert in this step
            at = t0 + d / self._speed
            self._drain_until(at, facts)
            point = self._points[index]
            if point.scanner_id is not None:
                facts.append(ItemRead(point.scanner_id, item.item_id, self._read(item), at))
            elif point.divert is not None:
                self._at_divert(item, point.divert, at, facts)
        for item in self._items.values():
            item.pos = (item.pos + dist) % length
        return facts

    def _read(self, item: _Item) -> tuple[str, ...]:
        if self._rng.random() < self.rates.no_read:
            return ()
        if self._rng.random() < self.rates.multi_read:
            return (item.tote_id, f"GHOST-{self._rng.randrange(1_000_000):06d}")
        return (item.tote_id,)

    def _at_divert(self, item: _Item, divert: Divert, at: float, facts: list[Fact]) -> None:
        if self._requests.get(item.item_id) != divert.chute:
            return  # no request for this chute: the item rides on
        del self._requests[item.item_id]
        chute = self._chutes[divert.chute]
        if not chute.enabled or chute.full:
            facts.append(DivertFinished(divert.id, item.item_id, chute.config.id, False, at))
            return
        del self._items[item.item_id]
        chute.count += 1
        chute.delivered += 1
        if chute.next_drain is None:
            chute.next_drain = at + chute.config.drain_seconds
        facts.append(DivertFinished(divert.id, item.item_id, chute.config.id, True, at))
        facts.append(chute.fact())

    def _drain_until(self, t: float, facts: list[Fact]) -> None:
        for chute in self._chutes.values():
            changed = False
            while chute.next_drain is not None and chute.next_drain <= t and chute.count > 0:
                chute.count -= 1
                changed = True
                drained_at = chute.next_drain
                chute.next_drain = drained_at + chute.config.drain_seconds if chute.count else None
            if changed:
                facts.append(chute.fact())

    def _place_pending(self) -> None:
        for zone_id, queue in self._pending.items():
            if queue and self._gap_free(self._zone_start[zone_id]):
                item = queue.popleft()
                item.pos = self._zone_start[zone_id]
                self._items[item.item_id] = item

    def _gap_free(self, pos: float) -> bool:
        gap = self.conveyor.min_gap - _EPS
        length = self.length
        for item in self._items.values():
            if (item.pos - pos) % length < gap or (pos - item.pos) % length < gap:
                return False
        return True

    def _update_eyes(self) -> list[Fact]:
        eyes: dict[str, tuple[float, str]] = {}
        for item in self._items.values():
            zone_id = self._zone_ids[bisect.bisect_right(self._starts, item.pos) - 1]
            best = eyes.get(zone_id)
            if best is None or item.pos > best[0]:
                eyes[zone_id] = (item.pos, item.item_id)
        now_eyes = {z: item_id for z, (_, item_id) in eyes.items()}
        facts: list[Fact] = []
        for zone_id in self._zone_ids:
            before, after = self._eyes.get(zone_id, ""), now_eyes.get(zone_id, "")
            if before != after:
                facts.append(ZoneChanged(zone_id, bool(after), after))
        self._eyes = now_eyes
        return facts

    def _belt_fact(self, was_moving: bool) -> list[Fact]:
        if self.moving == was_moving:
            return []
        return [BeltChanged(self.moving, self.speed)]

    def _chute(self, chute_id: str) -> _ChuteState:
        try:
            return self._chutes[chute_id]
        except KeyError:
            raise UnknownName(f"unknown chute {chute_id!r}") from None

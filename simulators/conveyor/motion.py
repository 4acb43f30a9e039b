"""The motion model of a conveyor loop with one scanner and a sorter: pure Python, no I/O.

Geometry: the zones lie end to end in travel order on a loop of length ``L`` (after the last zone
items return to the first). An item is a point, its front, at a position in ``[0, L)``. The
scanner reads as an item's front leaves the scanner zone; each divert fires as an item's front
leaves its zone. Inducted totes wait at their zone until placing them at the zone's start keeps
``min_gap`` to every item on the belt.

Every zone runs at the belt speed while the unit produces, except the zones a jam holds: a jam
on zone J holds J and the ``jam_hold_zones`` zones before it. Items in a held zone stay where
they are; an item reaching the entry of a held section stops there, and the items behind it
queue at ``min_gap`` (zero-pressure accumulation). Each item moves at the belt speed until it
reaches the point where it stops, so its advance in a step is ``min(distance, limit)``, the limit
coming from the next held entry and from the stop of the item ahead (worked out from the front
of each queue backwards).

Outside production an operator may jog one zone (commissioning): its belt runs at the jog speed
for a while and the items on it move up to the zone's end, never onto a standing zone.

:meth:`LoopModel.step` advances the model to a line time and returns what happened, in time
order, as :mod:`simulators.conveyor.facts` values. Crossings inside one step are computed exactly
(time of crossing, not time of the step), and an item leaving through a divert frees the way for
the items behind it at that very moment, so the step length never changes the outcome.
"""

from __future__ import annotations

import bisect
import random
from collections import deque
from dataclasses import dataclass

from controller.config.model import Chute, Conveyor, Divert
from simulators.conveyor.facts import (
    ChuteChanged,
    DivertFinished,
    Fact,
    ItemRead,
    ZoneChanged,
    ZoneJamChanged,
    ZoneMotionChanged,
)
from simulators.conveyor.journal import DivertJournal, JournalEntry
from simulators.conveyor.retained import (
    RetainedChute,
    RetainedDivert,
    RetainedItem,
    RetainedLoop,
    RetainedWaiting,
)

_EPS = 1e-9
_STOP_SHORT = 1e-6  # a jogged item stops this short of its zone's end, before any point there


class UnknownName(ValueError):
    """A zone, item or chute id the loop does not know."""


class JogRefused(Exception):
    """A jog the unit cannot take now: it produces, or the zone is jammed."""


MAX_JOG_SECONDS = 60.0


@dataclass(frozen=True)
class _Jog:
    zone: int  # index of the jogged zone
    speed: float
    until: float  # line time the jog ends


@dataclass
class _Item:
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


@dataclass
class _Advance:
    """How far an item moves in a step, and where it ends when it stops (None: it runs on)."""

    dist: float
    stop: float | None = None


class LoopModel:
    """One conveyor loop. Every mutating call takes the current line time ``now``."""

    def __init__(self, conveyor: Conveyor, start: float = 0.0, seed: int = 0) -> None:
        self.conveyor = cfg = conveyor
        self.rates = _Rates(no_read=cfg.scanner.no_read_rate)
        self.journal = DivertJournal()
        # bumped whenever what the loop holds changes (induction, a tote going onto the belt,
        # a divert, a chute draining): the moments the retained state must be written
        self.revision = 0
        self._rng = random.Random(seed)
        self._t = start
        self._next_seq = 1
        self._producing = True
        self._jammed: set[str] = set()
        self._zone_ids = [z.id for z in cfg.zones]
        self._zone_index = {z: i for i, z in enumerate(self._zone_ids)}
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
        self._held: frozenset[int] = frozenset()  # indices of the zones jams hold
        self._running = [True] * len(self._zone_ids)  # as last reported, per zone
        self._speed = [cfg.belt_speed] * len(self._zone_ids)  # as last reported, per zone
        self._jog: _Jog | None = None

    # --- views -----------------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self._t

    @property
    def moving(self) -> bool:
        """Some zone's belt runs."""
        return self._producing and len(self._held) < len(self._zone_ids)

    @property
    def zone_ids(self) -> list[str]:
        return list(self._zone_ids)

    @property
    def on_belt(self) -> int:
        """Number of items on the belt (not counting totes waiting at an induction)."""
        return len(self._items)

    def zone_running(self, zone_id: str) -> bool:
        index = self._index(zone_id)
        if self._jog is not None and self._jog.zone == index:
            return True
        return self._producing and index not in self._held

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

    def tracking(self) -> list[TrackedItem]:
        """Every item the loop knows, in induction order."""
        tracked = [
            TrackedItem(
                it.item_id,
                it.tote_id,
                self._zone_at(it.pos),
                True,
                self._requests.get(it.item_id, ""),
            )
            for it in self._items.values()
        ]
        tracked += [
            TrackedItem(it.item_id, it.tote_id, zone_id, False, self._requests.get(it.item_id, ""))
            for zone_id, queue in self._pending.items()
            for it in queue
        ]
        order = {it.item_id: it.seq for it in self._all_items()}
        return sorted(tracked, key=lambda t: order[t.item_id])

    # --- commands --------------------------------------------------------------------------

    def induct(self, tote_id: str, zone_id: str, now: float) -> tuple[str, list[Fact]]:
        """Hand a tote to the loop at ``zone_id``; it goes on the belt when the gap is free."""
        if zone_id not in self._pending:
            raise UnknownName(f"unknown zone {zone_id!r}")
        if not tote_id:
            raise UnknownName("empty tote id")
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        item = _Item(f"{self.conveyor.id}-{seq:06d}", tote_id, seq)
        self._pending[zone_id].append(item)
        self.revision += 1
        return item.item_id, self.step(now)

    def request_divert(self, item_id: str, chute_id: str) -> None:
        """Record that ``item_id`` should leave into ``chute_id`` at the next divert to it."""
        if chute_id not in self._chutes or chute_id not in self._diverted_chutes:
            raise UnknownName(f"unknown chute {chute_id!r}")
        if not self.knows_item(item_id):
            raise UnknownName(f"unknown item {item_id!r}")
        self._requests[item_id] = chute_id

    def set_producing(self, producing: bool, now: float) -> list[Fact]:
        """PackML: belts run only while the unit is in ``Execute``; a state change ends a jog."""
        facts = self.step(now)
        self._producing = producing
        self._jog = None
        return facts + self._motion_facts()

    def jog(self, zone_id: str, speed: float, seconds: float, now: float) -> list[Fact]:
        """Run one zone's belt at ``speed`` m/s for ``seconds`` while the unit does not produce
        (commissioning). Items in the zone move up to its end and stop there, keeping
        ``min_gap``; they never pass onto a standing zone, so no scan or divert happens. A new
        jog replaces the running one; a PackML state change ends it.

        Raises :class:`UnknownName` for an unknown zone, :class:`JogRefused` while the unit
        produces or the zone is jammed, ``ValueError`` for a speed or duration out of range.
        """
        index = self._index(zone_id)
        if not 0.0 < speed <= self.conveyor.belt_speed:
            raise ValueError(
                f"jog speed must be above 0 and at most the belt speed "
                f"{self.conveyor.belt_speed:g} m/s, got {speed:g}"
            )
        if not 0.0 < seconds <= MAX_JOG_SECONDS:
            raise ValueError(
                f"jog duration must be above 0 and at most {MAX_JOG_SECONDS:g} s, got {seconds:g}"
            )
        facts = self.step(now)
        if self._producing:
            raise JogRefused("the unit is in Execute: stop or hold it before jogging a zone")
        if zone_id in self._jammed:
            raise JogRefused(f"zone {zone_id} is jammed: clear the jam before jogging it")
        self._jog = _Jog(index, speed, now + seconds)
        return facts + self._motion_facts()

    def set_jammed(self, zone_id: str, jammed: bool, now: float) -> list[Fact]:
        """A jam on a zone holds it and the ``jam_hold_zones`` zones before it until cleared."""
        if zone_id not in self._pending:
            raise UnknownName(f"unknown zone {zone_id!r}")
        facts = self.step(now)
        if jammed == (zone_id in self._jammed):
            return facts
        (self._jammed.add if jammed else self._jammed.discard)(zone_id)
        n, hold = len(self._zone_ids), self.conveyor.jam_hold_zones
        self._held = frozenset(
            (self._zone_index[z] - back) % n for z in self._jammed for back in range(hold + 1)
        )
        facts.append(ZoneJamChanged(zone_id, jammed))
        return facts + self._motion_facts()

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

    # --- retained state ------------------------------------------------------------------------

    def retained(self) -> RetainedLoop:
        """What the loop keeps across a restart (pending divert requests are not kept).

        Built without validation: the values come from the model itself.
        """
        return RetainedLoop.model_construct(
            next_seq=self._next_seq,
            items=[
                RetainedItem.model_construct(
                    item_id=it.item_id, tote_id=it.tote_id, seq=it.seq, position=it.pos
                )
                for it in self._items.values()
            ],
            waiting=[
                RetainedWaiting.model_construct(
                    zone=zone_id, item_id=it.item_id, tote_id=it.tote_id, seq=it.seq
                )
                for zone_id, queue in self._pending.items()
                for it in queue
            ],
            chutes=[
                RetainedChute.model_construct(
                    chute_id=c.config.id, count=c.count, delivered=c.delivered
                )
                for c in self._chutes.values()
            ],
            journal_last=self.journal.last,
            journal=[
                RetainedDivert.model_construct(
                    sequence=e.sequence,
                    item_id=e.item_id,
                    tote_id=e.tote_id,
                    chute_id=e.chute_id,
                    ok=e.ok,
                )
                for e in self.journal.entries()
            ],
        )

    def restore(self, state: RetainedLoop, now: float) -> list[Fact]:
        """Take over retained state (after a restart); raises ``ValueError`` when it does not
        fit this loop (unknown zone or chute, a position off the loop, duplicate ids)."""
        items = [_Item(r.item_id, r.tote_id, r.seq, r.position) for r in state.items]
        for r in state.items:
            if r.position >= self.length:
                raise ValueError(f"item {r.item_id}: position {r.position} is off the loop")
        pending: dict[str, deque[_Item]] = {z: deque() for z in self._zone_ids}
        for w in state.waiting:
            if w.zone not in pending:
                raise ValueError(f"waiting tote {w.tote_id}: unknown zone {w.zone!r}")
            pending[w.zone].append(_Item(w.item_id, w.tote_id, w.seq))
        every = items + [it for q in pending.values() for it in q]
        ids = [it.item_id for it in every]
        if len(set(ids)) != len(ids):
            raise ValueError("an item id appears more than once")
        if any(it.seq >= state.next_seq for it in every):
            raise ValueError("next_seq must be above every item's seq")
        counts: dict[str, tuple[int, int]] = {}
        for c in state.chutes:
            if c.chute_id not in self._chutes:
                raise ValueError(f"unknown chute {c.chute_id!r}")
            counts[c.chute_id] = (c.count, c.delivered)
        self.journal.restore(
            state.journal_last,
            (
                JournalEntry(e.sequence, e.item_id, e.tote_id, e.chute_id, e.ok)
                for e in state.journal
            ),
        )
        self._t = now
        self._items = {it.item_id: it for it in items}
        self._pending = pending
        self._next_seq = state.next_seq
        self._requests.clear()
        for chute_id, (count, delivered) in counts.items():
            chute = self._chutes[chute_id]
            chute.count, chute.delivered = count, delivered
            chute.next_drain = now + chute.config.drain_seconds if count else None
        self.revision += 1
        return [c.fact() for c in self._chutes.values()] + self.step(now)

    # --- time --------------------------------------------------------------------------------

    def step(self, now: float) -> list[Fact]:
        """Advance to line time ``now``; returns what happened, in time order."""
        t0 = self._t
        facts: list[Fact] = []
        if now > t0:
            if self.moving and self._items:
                self._move(t0, (now - t0) * self.conveyor.belt_speed, facts)
            elif self._jog is not None:
                self._move_jogged(self._jog, min(now, self._jog.until) - t0)
            self._drain_until(now, facts)
            self._t = now
        self._place_pending()
        facts += self._update_eyes()
        if self._jog is not None and self._jog.until <= self._t + _EPS:
            self._jog = None
            facts += self._motion_facts()
        return facts

    def _move_jogged(self, jog: _Jog, seconds: float) -> None:
        """Move the items in the jogged zone for ``seconds``, the leading one up to the zone's
        end (or ``min_gap`` behind an item just beyond it), each other ``min_gap`` behind the
        one ahead; an item never moves back."""
        if seconds <= 0:
            return
        start = self._starts[jog.zone]
        end = self._starts[jog.zone + 1] if jog.zone + 1 < len(self._starts) else self.length
        gap, length = self.conveyor.min_gap, self.length
        inside = sorted(
            (it for it in self._items.values() if start <= it.pos < end),
            key=lambda it: it.pos,
            reverse=True,
        )
        if not inside:
            return
        limit = end - _STOP_SHORT
        jogged = {it.item_id for it in inside}
        for other in self._items.values():
            ahead = (other.pos - end) % length
            if other.item_id not in jogged and ahead < gap:
                limit = min(limit, end + ahead - gap)
        dist = jog.speed * seconds
        for item in inside:
            item.pos = max(item.pos, min(item.pos + dist, limit))
            limit = item.pos - gap

    def _move(self, t0: float, dist: float, facts: list[Fact]) -> None:
        """Move the items by up to ``dist`` metres from time ``t0``. When an item leaves
        through a divert the items behind it may move further than worked out before, so the
        rest of the way is worked out again from that moment."""
        speed = self.conveyor.belt_speed
        while dist > _EPS and self._items:
            advances = self._advances(dist)
            cut = self._cross(t0, advances, facts)
            for item in self._items.values():
                adv = advances[item.item_id]
                if cut is None or adv.dist <= cut + _EPS:
                    item.pos = (
                        adv.stop if adv.stop is not None else (item.pos + adv.dist) % self.length
                    )
                else:
                    item.pos = (item.pos + cut) % self.length
            if cut is None:
                return
            t0 += cut / speed
            dist -= cut

    def _cross(self, t0: float, advances: dict[str, _Advance], facts: list[Fact]) -> float | None:
        """Report the scanner and divert crossings of this advance in order; returns the
        distance at which an item left through a divert (the step goes on from there), or
        None when all items stayed."""
        length = self.length
        crossings: list[tuple[float, int, int, _Item]] = []
        for item in self._items.values():
            reach = advances[item.item_id].dist + _EPS
            for index, point in enumerate(self._points):
                d = (point.pos - item.pos) % length
                if d < _EPS:
                    d = length  # sitting on the point: it crossed it in an earlier step
                while d <= reach:
                    crossings.append((d, item.seq, index, item))
                    d += length
        crossings.sort(key=lambda c: (c[0], c[1], c[2]))
        cut: float | None = None
        for d, _, index, item in crossings:
            if cut is not None and d > cut + _EPS:
                break
            if item.item_id not in self._items:
                continue  # left through an earlier divert
            at = t0 + d / self.conveyor.belt_speed
            self._drain_until(at, facts)
            point = self._points[index]
            if point.scanner_id is not None:
                facts.append(ItemRead(point.scanner_id, item.item_id, self._read(item), at))
            elif point.divert is not None:
                left = self._at_divert(item, point.divert, at, facts)
                cut = d if left and cut is None else cut
        return cut

    def _advances(self, dist: float) -> dict[str, _Advance]:
        """How far each item moves within ``dist``: items in held zones stay, the others run
        up to the next held entry or to ``min_gap`` behind the item ahead's stop."""
        if not self._held:
            return {item_id: _Advance(dist) for item_id in self._items}
        length, gap = self.length, self.conveyor.min_gap
        n = len(self._zone_ids)
        entries = [self._starts[i] for i in sorted(self._held) if (i - 1) % n not in self._held]
        adv: dict[str, _Advance] = {}
        for item in self._items.values():
            if bisect.bisect_right(self._starts, item.pos) - 1 in self._held:
                adv[item.item_id] = _Advance(0.0, item.pos)
                continue
            entry = min(entries, key=lambda e: (e - item.pos) % length)
            to_entry = (entry - item.pos) % length
            adv[item.item_id] = _Advance(to_entry, entry) if to_entry <= dist else _Advance(dist)
        if len(self._items) < 2:
            return adv
        # from the front of each queue backwards: order by distance behind a held entry,
        # each item's "ahead" is the one before it (the first one's is the last)
        anchor = entries[0] if entries else 0.0
        order = sorted(self._items.values(), key=lambda it: ((anchor - it.pos) % length, it.seq))
        changed = True
        while changed:
            changed = False
            for k, item in enumerate(order):
                ahead = order[k - 1]
                mine, theirs = adv[item.item_id], adv[ahead.item_id]
                room = (ahead.pos - item.pos) % length + theirs.dist - gap
                limit = max(0.0, room)
                if limit < mine.dist - _EPS:
                    end = theirs.stop if theirs.stop is not None else ahead.pos + theirs.dist
                    stop = (end - gap) % length if limit > 0 else item.pos
                    adv[item.item_id] = _Advance(limit, stop)
                    changed = True
        return adv

    def _read(self, item: _Item) -> tuple[str, ...]:
        if self._rng.random() < self.rates.no_read:
            return ()
        if self._rng.random() < self.rates.multi_read:
            return (item.tote_id, f"GHOST-{self._rng.randrange(1_000_000):06d}")
        return (item.tote_id,)

    def _at_divert(self, item: _Item, divert: Divert, at: float, facts: list[Fact]) -> bool:
        """Fire the divert for an item that asked for its chute; True when the item left."""
        if self._requests.get(item.item_id) != divert.chute:
            return False  # no request for this chute: the item rides on
        del self._requests[item.item_id]
        chute = self._chutes[divert.chute]
        ok = chute.enabled and not chute.full
        seq = self.journal.record(item.item_id, item.tote_id, chute.config.id, ok)
        self.revision += 1
        done = DivertFinished(divert.id, item.item_id, chute.config.id, ok, at, item.tote_id, seq)
        if not ok:
            facts.append(done)
            return False
        del self._items[item.item_id]
        chute.count += 1
        chute.delivered += 1
        if chute.next_drain is None:
            chute.next_drain = at + chute.config.drain_seconds
        facts.append(done)
        facts.append(chute.fact())
        return True

    def _drain_until(self, t: float, facts: list[Fact]) -> None:
        for chute in self._chutes.values():
            changed = False
            while chute.next_drain is not None and chute.next_drain <= t and chute.count > 0:
                chute.count -= 1
                changed = True
                drained_at = chute.next_drain
                chute.next_drain = drained_at + chute.config.drain_seconds if chute.count else None
            if changed:
                self.revision += 1
                facts.append(chute.fact())

    def _place_pending(self) -> None:
        for zone_id, queue in self._pending.items():
            if queue and self._gap_free(self._zone_start[zone_id]):
                item = queue.popleft()
                item.pos = self._zone_start[zone_id]
                self._items[item.item_id] = item
                self.revision += 1

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
            zone_id = self._zone_at(item.pos)
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

    def _motion_facts(self) -> list[Fact]:
        """One fact per zone whose belt started, stopped or changed speed since the last report."""
        facts: list[Fact] = []
        jog = self._jog
        for i, zone_id in enumerate(self._zone_ids):
            jogged = jog is not None and jog.zone == i
            running = jogged or (self._producing and i not in self._held)
            speed = (
                0.0 if not running else jog.speed if jog and jogged else self.conveyor.belt_speed
            )
            if running != self._running[i] or speed != self._speed[i]:
                self._running[i], self._speed[i] = running, speed
                facts.append(ZoneMotionChanged(zone_id, running, speed))
        return facts

    def _all_items(self) -> list[_Item]:
        return [*self._items.values(), *(it for q in self._pending.values() for it in q)]

    def _zone_at(self, pos: float) -> str:
        return self._zone_ids[bisect.bisect_right(self._starts, pos) - 1]

    def _index(self, zone_id: str) -> int:
        try:
            return self._zone_index[zone_id]
        except KeyError:
            raise UnknownName(f"unknown zone {zone_id!r}") from None

    def _chute(self, chute_id: str) -> _ChuteState:
        try:
            return self._chutes[chute_id]
        except KeyError:
            raise UnknownName(f"unknown chute {chute_id!r}") from None

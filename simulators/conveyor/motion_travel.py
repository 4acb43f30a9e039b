"""How a conveyor loop's items travel through time: belts, held zones, scans, diverts, drains.

:class:`LoopTravel` advances the loop to a line time (:meth:`LoopTravel.step`) and reports what
happened, in time order, as :mod:`simulators.conveyor.facts` values. Each item moves at the belt
speed up to the point where it stops (the entry of a held section, or ``min_gap`` behind the
item ahead); crossings of the scanner and the diverts are computed at their exact time, and an
item leaving through a divert frees the way for the items behind it at that very moment, so
the step length never changes the outcome. A jogged zone moves only its own items, up to its
end. Chutes drain one tote every ``drain_seconds``.
"""

from __future__ import annotations

import bisect

from kernel.config.model import Divert
from simulators.conveyor.facts import (
    DivertFinished,
    Fact,
    ItemRead,
    ZoneChanged,
    ZoneMotionChanged,
)
from simulators.conveyor.motion_state import (
    _EPS,
    _STOP_SHORT,
    LoopState,
    _Advance,
    _Item,
    _Jog,
)


class LoopTravel(LoopState):
    """Moves the loop through time (mixed into :class:`~simulators.conveyor.motion.LoopModel`)."""

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

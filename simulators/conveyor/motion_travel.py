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
from dataclasses import dataclass

from kernel.config.model import Divert
from simulators.conveyor.facts import (
    DivertFinished,
    Fact,
    ItemRead,
    ZoneChanged,
    ZoneMotionChanged,
)
from simulators.conveyor.motion_state import EPS, STOP_SHORT, Item, Jog, LoopState


@dataclass
class _Advance:
    """How far an item moves in a step, and where it ends when it stops (None: it runs on)."""

    dist: float
    stop: float | None = None


class LoopTravel:
    """Moves a loop through time: changes its :class:`LoopState` and reports the facts."""

    def __init__(self, loop: LoopState) -> None:
        self.loop = loop

    def step(self, now: float) -> list[Fact]:
        """Advance to line time ``now``; returns what happened, in time order."""
        t0 = self.loop.t
        facts: list[Fact] = []
        if now > t0:
            if self.loop.moving and self.loop.items:
                self._move(t0, (now - t0) * self.loop.conveyor.belt_speed, facts)
            elif self.loop.jog is not None:
                self._move_jogged(self.loop.jog, min(now, self.loop.jog.until) - t0)
            self._drain_until(now, facts)
            self.loop.t = now
        self._place_pending()
        facts += self._update_eyes()
        if self.loop.jog is not None and self.loop.jog.until <= self.loop.t + EPS:
            self.loop.jog = None
            facts += self.motion_facts()
        return facts

    def _move_jogged(self, jog: Jog, seconds: float) -> None:
        """Move the items in the jogged zone for ``seconds``, the leading one up to the zone's
        end (or ``min_gap`` behind an item just beyond it), each other ``min_gap`` behind the
        one ahead; an item never moves back."""
        if seconds <= 0:
            return
        start = self.loop.starts[jog.zone]
        end = (
            self.loop.starts[jog.zone + 1]
            if jog.zone + 1 < len(self.loop.starts)
            else self.loop.length
        )
        gap, length = self.loop.conveyor.min_gap, self.loop.length
        inside = sorted(
            (it for it in self.loop.items.values() if start <= it.pos < end),
            key=lambda it: it.pos,
            reverse=True,
        )
        if not inside:
            return
        limit = end - STOP_SHORT
        jogged = {it.item_id for it in inside}
        for other in self.loop.items.values():
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
        speed = self.loop.conveyor.belt_speed
        while dist > EPS and self.loop.items:
            advances = self._advances(dist)
            cut = self._cross(t0, advances, facts)
            for item in self.loop.items.values():
                adv = advances[item.item_id]
                if cut is None or adv.dist <= cut + EPS:
                    item.pos = (
                        adv.stop
                        if adv.stop is not None
                        else (item.pos + adv.dist) % self.loop.length
                    )
                else:
                    item.pos = (item.pos + cut) % self.loop.length
            if cut is None:
                return
            t0 += cut / speed
            dist -= cut

    def _cross(self, t0: float, advances: dict[str, _Advance], facts: list[Fact]) -> float | None:
        """Report the scanner and divert crossings of this advance in order; returns the
        distance at which an item left through a divert (the step goes on from there), or
        None when all items stayed."""
        length = self.loop.length
        crossings: list[tuple[float, int, int, Item]] = []
        for item in self.loop.items.values():
            reach = advances[item.item_id].dist + EPS
            for index, point in enumerate(self.loop.points):
                d = (point.pos - item.pos) % length
                if d < EPS:
                    d = length  # sitting on the point: it crossed it in an earlier step
                while d <= reach:
                    crossings.append((d, item.seq, index, item))
                    d += length
        crossings.sort(key=lambda c: (c[0], c[1], c[2]))
        cut: float | None = None
        for d, _, index, item in crossings:
            if cut is not None and d > cut + EPS:
                break
            if item.item_id not in self.loop.items:
                continue  # left through an earlier divert
            at = t0 + d / self.loop.conveyor.belt_speed
            self._drain_until(at, facts)
            point = self.loop.points[index]
            if point.scanner_id is not None:
                facts.append(ItemRead(point.scanner_id, item.item_id, self._read(item), at))
            elif point.divert is not None:
                left = self._at_divert(item, point.divert, at, facts)
                cut = d if left and cut is None else cut
        return cut

    def _advances(self, dist: float) -> dict[str, _Advance]:
        """How far each item moves within ``dist``: items in held zones stay, the others run
        up to the next held entry or to ``min_gap`` behind the item ahead's stop."""
        if not self.loop.held:
            return {item_id: _Advance(dist) for item_id in self.loop.items}
        length, gap = self.loop.length, self.loop.conveyor.min_gap
        n = len(self.loop.zone_ids)
        entries = [
            self.loop.starts[i] for i in sorted(self.loop.held) if (i - 1) % n not in self.loop.held
        ]
        adv: dict[str, _Advance] = {}
        for item in self.loop.items.values():
            if bisect.bisect_right(self.loop.starts, item.pos) - 1 in self.loop.held:
                adv[item.item_id] = _Advance(0.0, item.pos)
                continue
            entry = min(entries, key=lambda e: (e - item.pos) % length)
            to_entry = (entry - item.pos) % length
            adv[item.item_id] = _Advance(to_entry, entry) if to_entry <= dist else _Advance(dist)
        if len(self.loop.items) < 2:
            return adv
        # from the front of each queue backwards: order by distance behind a held entry,
        # each item's "ahead" is the one before it (the first one's is the last)
        anchor = entries[0] if entries else 0.0
        order = sorted(
            self.loop.items.values(), key=lambda it: ((anchor - it.pos) % length, it.seq)
        )
        changed = True
        while changed:
            changed = False
            for k, item in enumerate(order):
                ahead = order[k - 1]
                mine, theirs = adv[item.item_id], adv[ahead.item_id]
                room = (ahead.pos - item.pos) % length + theirs.dist - gap
                limit = max(0.0, room)
                if limit < mine.dist - EPS:
                    end = theirs.stop if theirs.stop is not None else ahead.pos + theirs.dist
                    stop = (end - gap) % length if limit > 0 else item.pos
                    adv[item.item_id] = _Advance(limit, stop)
                    changed = True
        return adv

    def _read(self, item: Item) -> tuple[str, ...]:
        if self.loop.rng.random() < self.loop.rates.no_read:
            return ()
        if self.loop.rng.random() < self.loop.rates.multi_read:
            return (item.tote_id, f"GHOST-{self.loop.rng.randrange(1_000_000):06d}")
        return (item.tote_id,)

    def _at_divert(self, item: Item, divert: Divert, at: float, facts: list[Fact]) -> bool:
        """Fire the divert for an item that asked for its chute; True when the item left."""
        if self.loop.requests.get(item.item_id) != divert.chute:
            return False  # no request for this chute: the item rides on
        del self.loop.requests[item.item_id]
        chute = self.loop.chutes[divert.chute]
        ok = chute.enabled and not chute.full
        seq = self.loop.journal.record(item.item_id, item.tote_id, chute.config.id, ok)
        self.loop.revision += 1
        done = DivertFinished(divert.id, item.item_id, chute.config.id, ok, at, item.tote_id, seq)
        if not ok:
            facts.append(done)
            return False
        del self.loop.items[item.item_id]
        chute.count += 1
        chute.delivered += 1
        if chute.next_drain is None:
            chute.next_drain = at + chute.config.drain_seconds
        facts.append(done)
        facts.append(chute.fact())
        return True

    def _drain_until(self, t: float, facts: list[Fact]) -> None:
        for chute in self.loop.chutes.values():
            changed = False
            while chute.next_drain is not None and chute.next_drain <= t and chute.count > 0:
                chute.count -= 1
                changed = True
                drained_at = chute.next_drain
                chute.next_drain = drained_at + chute.config.drain_seconds if chute.count else None
            if changed:
                self.loop.revision += 1
                facts.append(chute.fact())

    def _place_pending(self) -> None:
        for zone_id, queue in self.loop.pending.items():
            if queue and self._gap_free(self.loop.zone_start[zone_id]):
                item = queue.popleft()
                item.pos = self.loop.zone_start[zone_id]
                self.loop.items[item.item_id] = item
                self.loop.revision += 1

    def _gap_free(self, pos: float) -> bool:
        gap = self.loop.conveyor.min_gap - EPS
        length = self.loop.length
        for item in self.loop.items.values():
            if (item.pos - pos) % length < gap or (pos - item.pos) % length < gap:
                return False
        return True

    def _update_eyes(self) -> list[Fact]:
        eyes: dict[str, tuple[float, str]] = {}
        for item in self.loop.items.values():
            zone_id = self.loop.zone_at(item.pos)
            best = eyes.get(zone_id)
            if best is None or item.pos > best[0]:
                eyes[zone_id] = (item.pos, item.item_id)
        now_eyes = {z: item_id for z, (_, item_id) in eyes.items()}
        facts: list[Fact] = []
        for zone_id in self.loop.zone_ids:
            before, after = self.loop.eyes.get(zone_id, ""), now_eyes.get(zone_id, "")
            if before != after:
                facts.append(ZoneChanged(zone_id, bool(after), after))
        self.loop.eyes = now_eyes
        return facts

    def motion_facts(self) -> list[Fact]:
        """One fact per zone whose belt started, stopped or changed speed since the last report."""
        facts: list[Fact] = []
        jog = self.loop.jog
        for i, zone_id in enumerate(self.loop.zone_ids):
            jogged = jog is not None and jog.zone == i
            running = jogged or (self.loop.producing and i not in self.loop.held)
            speed = (
                0.0
                if not running
                else jog.speed
                if jog and jogged
                else self.loop.conveyor.belt_speed
            )
            if running != self.loop.running[i] or speed != self.loop.speed[i]:
                self.loop.running[i], self.loop.speed[i] = running, speed
                facts.append(ZoneMotionChanged(zone_id, running, speed))
        return facts

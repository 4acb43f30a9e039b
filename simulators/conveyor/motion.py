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

:class:`LoopModel` answers the views, the commands and the retained state; it keeps the loop's
state in a :class:`~simulators.conveyor.motion_state.LoopState`, which a
:class:`~simulators.conveyor.motion_travel.LoopTravel` moves through time.
"""

from __future__ import annotations

from collections import deque

from kernel.config.model import Conveyor
from simulators.conveyor.facts import ChuteChanged, Fact, ZoneJamChanged
from simulators.conveyor.journal import DivertJournal, JournalEntry
from simulators.conveyor.motion_state import (
    MAX_JOG_SECONDS,
    Item,
    Jog,
    JogRefused,
    LoopState,
    Rates,
    TrackedItem,
    UnknownName,
)
from simulators.conveyor.motion_travel import LoopTravel
from simulators.conveyor.retained import (
    RetainedChute,
    RetainedDivert,
    RetainedItem,
    RetainedLoop,
    RetainedWaiting,
)

__all__ = ["MAX_JOG_SECONDS", "JogRefused", "LoopModel", "TrackedItem", "UnknownName"]


class LoopModel:
    """One conveyor loop. Every mutating call takes the current line time ``now``."""

    def __init__(self, conveyor: Conveyor, start: float = 0.0, seed: int = 0) -> None:
        self._loop = LoopState(conveyor, start, seed)
        self._travel = LoopTravel(self._loop)

    def step(self, now: float) -> list[Fact]:
        """Advance to line time ``now``; returns what happened, in time order."""
        return self._travel.step(now)

    # --- views -----------------------------------------------------------------------------

    @property
    def conveyor(self) -> Conveyor:
        return self._loop.conveyor

    @property
    def rates(self) -> Rates:
        """The scanner's no-read and multi-read rates (scripted by tests)."""
        return self._loop.rates

    @property
    def journal(self) -> DivertJournal:
        return self._loop.journal

    @property
    def revision(self) -> int:
        """Bumped whenever what the loop holds changes: the moments the retained state must
        be written."""
        return self._loop.revision

    @property
    def length(self) -> float:
        return self._loop.length

    @property
    def moving(self) -> bool:
        """Some zone's belt runs."""
        return self._loop.moving

    @property
    def now(self) -> float:
        return self._loop.t

    @property
    def zone_ids(self) -> list[str]:
        return list(self._loop.zone_ids)

    @property
    def on_belt(self) -> int:
        """Number of items on the belt (not counting totes waiting at an induction)."""
        return len(self._loop.items)

    def zone_running(self, zone_id: str) -> bool:
        index = self._loop.index(zone_id)
        if self._loop.jog is not None and self._loop.jog.zone == index:
            return True
        return self._loop.producing and index not in self._loop.held

    def zone_item(self, zone_id: str) -> str:
        """Leading item seen by a zone's photo-eye, "" when the zone is empty."""
        return self._loop.eyes.get(zone_id, "")

    def item_position(self, item_id: str) -> float | None:
        """Front position of an item on the belt; None while waiting or unknown."""
        item = self._loop.items.get(item_id)
        return item.pos if item is not None else None

    def knows_item(self, item_id: str) -> bool:
        return item_id in self._loop.items or any(
            it.item_id == item_id for q in self._loop.pending.values() for it in q
        )

    def chute(self, chute_id: str) -> ChuteChanged:
        return self._loop.chute(chute_id).fact()

    def chutes(self) -> list[ChuteChanged]:
        return [c.fact() for c in self._loop.chutes.values()]

    def tracking(self) -> list[TrackedItem]:
        """Every item the loop knows, in induction order."""
        tracked = [
            TrackedItem(
                it.item_id,
                it.tote_id,
                self._loop.zone_at(it.pos),
                True,
                self._loop.requests.get(it.item_id, ""),
            )
            for it in self._loop.items.values()
        ]
        tracked += [
            TrackedItem(
                it.item_id, it.tote_id, zone_id, False, self._loop.requests.get(it.item_id, "")
            )
            for zone_id, queue in self._loop.pending.items()
            for it in queue
        ]
        order = {it.item_id: it.seq for it in self._loop.all_items()}
        return sorted(tracked, key=lambda t: order[t.item_id])

    # --- commands --------------------------------------------------------------------------

    def induct(self, tote_id: str, zone_id: str, now: float) -> tuple[str, list[Fact]]:
        """Hand a tote to the loop at ``zone_id``; it goes on the belt when the gap is free."""
        if zone_id not in self._loop.pending:
            raise UnknownName(f"unknown zone {zone_id!r}")
        if not tote_id:
            raise UnknownName("empty tote id")
        seq, self._loop.next_seq = self._loop.next_seq, self._loop.next_seq + 1
        item = Item(f"{self._loop.conveyor.id}-{seq:06d}", tote_id, seq)
        self._loop.pending[zone_id].append(item)
        self._loop.revision += 1
        return item.item_id, self.step(now)

    def request_divert(self, item_id: str, chute_id: str) -> None:
        """Record that ``item_id`` should leave into ``chute_id`` at the next divert to it."""
        if chute_id not in self._loop.chutes or chute_id not in self._loop.diverted_chutes:
            raise UnknownName(f"unknown chute {chute_id!r}")
        if not self.knows_item(item_id):
            raise UnknownName(f"unknown item {item_id!r}")
        self._loop.requests[item_id] = chute_id

    def set_producing(self, producing: bool, now: float) -> list[Fact]:
        """PackML: belts run only while the unit is in ``Execute``; a state change ends a jog."""
        facts = self.step(now)
        self._loop.producing = producing
        self._loop.jog = None
        return facts + self._travel.motion_facts()

    def jog(self, zone_id: str, speed: float, seconds: float, now: float) -> list[Fact]:
        """Run one zone's belt at ``speed`` m/s for ``seconds`` while the unit does not produce
        (commissioning). Items in the zone move up to its end and stop there, keeping
        ``min_gap``; they never pass onto a standing zone, so no scan or divert happens. A new
        jog replaces the running one; a PackML state change ends it.

        Raises :class:`UnknownName` for an unknown zone, :class:`JogRefused` while the unit
        produces or the zone is jammed, ``ValueError`` for a speed or duration out of range.
        """
        index = self._loop.index(zone_id)
        if not 0.0 < speed <= self._loop.conveyor.belt_speed:
            raise ValueError(
                f"jog speed must be above 0 and at most the belt speed "
                f"{self._loop.conveyor.belt_speed:g} m/s, got {speed:g}"
            )
        if not 0.0 < seconds <= MAX_JOG_SECONDS:
            raise ValueError(
                f"jog duration must be above 0 and at most {MAX_JOG_SECONDS:g} s, got {seconds:g}"
            )
        facts = self.step(now)
        if self._loop.producing:
            raise JogRefused("the unit is in Execute: stop or hold it before jogging a zone")
        if zone_id in self._loop.jammed:
            raise JogRefused(f"zone {zone_id} is jammed: clear the jam before jogging it")
        self._loop.jog = Jog(index, speed, now + seconds)
        return facts + self._travel.motion_facts()

    def set_jammed(self, zone_id: str, jammed: bool, now: float) -> list[Fact]:
        """A jam on a zone holds it and the ``jam_hold_zones`` zones before it until cleared."""
        if zone_id not in self._loop.pending:
            raise UnknownName(f"unknown zone {zone_id!r}")
        facts = self.step(now)
        if jammed == (zone_id in self._loop.jammed):
            return facts
        (self._loop.jammed.add if jammed else self._loop.jammed.discard)(zone_id)
        n, hold = len(self._loop.zone_ids), self._loop.conveyor.jam_hold_zones
        self._loop.held = frozenset(
            (self._loop.zone_index[z] - back) % n
            for z in self._loop.jammed
            for back in range(hold + 1)
        )
        facts.append(ZoneJamChanged(zone_id, jammed))
        return facts + self._travel.motion_facts()

    def set_chute_enabled(self, chute_id: str, enabled: bool, now: float) -> list[Fact]:
        facts = self.step(now)
        chute = self._loop.chute(chute_id)
        if chute.enabled != enabled:
            chute.enabled = enabled
            facts.append(chute.fact())
        return facts

    def set_chute_full(self, chute_id: str, full: bool, now: float) -> list[Fact]:
        """Force a chute's full signal on (as a full-chute sensor would) or release it."""
        facts = self.step(now)
        chute = self._loop.chute(chute_id)
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
            next_seq=self._loop.next_seq,
            items=[
                RetainedItem.model_construct(
                    item_id=it.item_id, tote_id=it.tote_id, seq=it.seq, position=it.pos
                )
                for it in self._loop.items.values()
            ],
            waiting=[
                RetainedWaiting.model_construct(
                    zone=zone_id, item_id=it.item_id, tote_id=it.tote_id, seq=it.seq
                )
                for zone_id, queue in self._loop.pending.items()
                for it in queue
            ],
            chutes=[
                RetainedChute.model_construct(
                    chute_id=c.config.id, count=c.count, delivered=c.delivered
                )
                for c in self._loop.chutes.values()
            ],
            journal_last=self._loop.journal.last,
            journal=[
                RetainedDivert.model_construct(
                    sequence=e.sequence,
                    item_id=e.item_id,
                    tote_id=e.tote_id,
                    chute_id=e.chute_id,
                    ok=e.ok,
                )
                for e in self._loop.journal.entries()
            ],
        )

    def restore(self, state: RetainedLoop, now: float) -> list[Fact]:
        """Take over retained state (after a restart); raises ``ValueError`` when it does not
        fit this loop (unknown zone or chute, a position off the loop, duplicate ids)."""
        items = [Item(r.item_id, r.tote_id, r.seq, r.position) for r in state.items]
        for r in state.items:
            if r.position >= self._loop.length:
                raise ValueError(f"item {r.item_id}: position {r.position} is off the loop")
        pending: dict[str, deque[Item]] = {z: deque() for z in self._loop.zone_ids}
        for w in state.waiting:
            if w.zone not in pending:
                raise ValueError(f"waiting tote {w.tote_id}: unknown zone {w.zone!r}")
            pending[w.zone].append(Item(w.item_id, w.tote_id, w.seq))
        every = items + [it for q in pending.values() for it in q]
        ids = [it.item_id for it in every]
        if len(set(ids)) != len(ids):
            raise ValueError("an item id appears more than once")
        if any(it.seq >= state.next_seq for it in every):
            raise ValueError("next_seq must be above every item's seq")
        counts: dict[str, tuple[int, int]] = {}
        for c in state.chutes:
            if c.chute_id not in self._loop.chutes:
                raise ValueError(f"unknown chute {c.chute_id!r}")
            counts[c.chute_id] = (c.count, c.delivered)
        self._loop.journal.restore(
            state.journal_last,
            (
                JournalEntry(e.sequence, e.item_id, e.tote_id, e.chute_id, e.ok)
                for e in state.journal
            ),
        )
        self._loop.t = now
        self._loop.items = {it.item_id: it for it in items}
        self._loop.pending = pending
        self._loop.next_seq = state.next_seq
        self._loop.requests.clear()
        for chute_id, (count, delivered) in counts.items():
            chute = self._loop.chutes[chute_id]
            chute.count, chute.delivered = count, delivered
            chute.next_drain = now + chute.config.drain_seconds if count else None
        self._loop.revision += 1
        return [c.fact() for c in self._loop.chutes.values()] + self.step(now)

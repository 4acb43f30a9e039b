"""Items on the conveyor, put right after the conveyor came back from an outage or a restart.

While the controller cannot hear the conveyor, totes keep moving until the PLC's watchdog holds
the belts, and a PLC restart forgets divert requests it had not carried out yet. Once the session
is up again the adapter replays the diverts the journal holds (as ``ItemDiverted`` events, handled
by the sortation path like any other) and hands over the conveyor's tracking table. Here the
controller's own view is matched with that table by tote code:

- a tote the conveyor still tracks keeps its order; a divert the controller had requested and the
  conveyor no longer holds is requested again, so the tote does not lose a pass;
- a tote the conveyor does not track may still be on its way (a robot waiting at the induction for
  the belt to take it); it is given ``conveyor.lost_item_grace`` line seconds to show up in the
  table or at the scanner, after which its order goes to ``exception`` as lost on the conveyor.
  It is never left in transit forever, and never completed without having reached its chute.
"""

from __future__ import annotations

import logging
from datetime import datetime

from controller.line.history import History
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderStatus
from controller.orders.waiting import ToteNotFound
from devices import base as dev
from devices.errors import DeviceError
from kernel.clock import Clock
from kernel.metrics import Metrics

log = logging.getLogger(__name__)


class ConveyorReconciler:
    def __init__(
        self,
        flight: InFlight,
        sorter: dev.Sorter,
        history: History,
        metrics: Metrics,
        clock: Clock,
        grace: float,
        divert_of_chute: dict[str, str] | None = None,
    ) -> None:
        self.flight = flight
        self.sorter = sorter
        self.history = history
        self.metrics = metrics
        self.clock = clock
        self.grace = grace
        self._divert_of = divert_of_chute or {}
        self.missing: dict[str, float] = {}  # tote -> line time it was first found missing
        self._replayed: set[str] = set()  # totes whose arrival was read back from the journal
        # arrivals in the journal of the last first contact that no tote on the belt claimed,
        # kept for ``grace`` line seconds: a robot taken over at start may report its drop
        # after the conveyor delivered the tote
        self._unclaimed: dict[str, dev.DivertRecord] = {}
        self._unclaimed_until = float("-inf")
        self._unclaimed_at: datetime | None = None

    def on_conveyor(self) -> list[Trip]:
        """Trips whose tote the controller believes is on the conveyor."""
        return [t for t in self.flight.trips.values() if t.dropped]

    def diverted(self, ev: dev.ItemDiverted) -> None:
        """A divert read back from the journal may belong to an item the controller never saw
        under that tracking id (it went on the belt while the session was down)."""
        if ev.tote_id and ev.item_id not in self.flight.items:
            self.flight.item(ev.item_id).tote = ev.tote_id
        tote = self.flight.item(ev.item_id).tote
        if ev.replayed and ev.ok and tote:
            self._replayed.add(tote)

    async def reconcile(self, ev: dev.ConveyorTracking) -> list[dev.ItemDiverted]:
        """Match the controller's totes on the conveyor with what it tracks. Returns the
        arrivals found only in the journal handed over on first contact (totes of orders that
        were on the conveyor when the controller started), for the sortation path."""
        now = self.clock.now()
        seen = {item.tote_id: item for item in ev.items if item.tote_id}
        delivered = {e.tote_id: e for e in ev.journal if e.ok and e.tote_id}
        arrivals: list[dev.ItemDiverted] = []
        ours = {item.tote: item for item in self.flight.items.values() if item.tote}
        resent = rebound = 0
        arrived, self._replayed = self._replayed, set()
        for trip in self.on_conveyor():
            if trip.tote in arrived:
                continue  # its arrival is being recorded by the sortation path
            found = seen.get(trip.tote)
            if found is None and trip.tote in delivered:
                entry = delivered[trip.tote]
                arrivals.append(
                    dev.ItemDiverted(
                        divert_id=self._divert_of.get(entry.chute_id, ""),
                        item_id=entry.item_id,
                        chute_id=entry.chute_id,
                        ok=True,
                        at=ev.at,
                        tote_id=trip.tote,
                        sequence=entry.sequence,
                        replayed=True,
                    )
                )
                arrived.add(trip.tote)
                continue
            if found is None:
                self.missing.setdefault(trip.tote, now)
                continue
            self.missing.pop(trip.tote, None)
            old = ours.get(trip.tote)
            item = self.flight.item(found.item_id)
            item.tote = trip.tote
            if old is not None and old is not item:
                # the conveyor tracks the tote under a new id (it restarted its tracking)
                item.passes, item.chute = old.passes, old.chute
                self.flight.items.pop(old.item_id, None)
                rebound += 1
            if item.chute and found.requested_chute != item.chute:
                if await self._divert_again(found, item.chute):
                    resent += 1
                else:
                    item.chute = None  # it is scanned again on its next pass
        # items the conveyor no longer tracks are gone (into a chute, or lost with its memory);
        # those whose arrival was read back are removed by the sortation path itself
        tracked = {item.item_id for item in ev.items}
        for item_id, item in list(self.flight.items.items()):
            if item_id not in tracked and item.tote not in arrived:
                del self.flight.items[item_id]
        self._unclaimed = {t: e for t, e in delivered.items() if t not in arrived}
        self._unclaimed_until = now + self.grace
        self._unclaimed_at = ev.at
        if resent:
            self.metrics.conveyor_reconciled.labels(ev.conveyor_id, "divert_resent").inc(resent)
        log.info(
            "conveyor items reconciled",
            extra={
                "conveyor": ev.conveyor_id,
                "tracked_by_conveyor": len(ev.items),
                "ours_on_conveyor": len(self.on_conveyor()),
                "diverts_requested_again": resent,
                "new_tracking_ids": rebound,
                "not_found": len(self.missing),
                "journal_reset": ev.journal_reset,
                "arrived_while_away": len(arrivals),
            },
        )
        return arrivals

    def late_arrivals(self) -> list[dev.ItemDiverted]:
        """Totes known to be on the conveyor only since its first contact (a robot's drop
        booked when the robot was taken over) whose arrival in a chute the journal handed over
        then already held: their arrival, for the sortation path."""
        if not self._unclaimed:
            return []
        if self.clock.now() > self._unclaimed_until:
            self._unclaimed = {}
            return []
        arrivals = []
        for trip in self.on_conveyor():
            entry = self._unclaimed.pop(trip.tote, None)
            if entry is None:
                continue
            arrivals.append(
                dev.ItemDiverted(
                    divert_id=self._divert_of.get(entry.chute_id, ""),
                    item_id=entry.item_id,
                    chute_id=entry.chute_id,
                    ok=True,
                    at=self._unclaimed_at or self.clock.utcnow(),
                    tote_id=trip.tote,
                    sequence=entry.sequence,
                    replayed=True,
                )
            )
            self.missing.pop(trip.tote, None)
        if arrivals:
            log.info(
                "totes dropped before the start found delivered by the conveyor",
                extra={"totes": [a.tote_id for a in arrivals]},
            )
        return arrivals

    async def _divert_again(self, found: dev.BeltItem, chute: str) -> bool:
        try:
            await self.sorter.divert(found.item_id, chute)
        except DeviceError as exc:
            log.warning(
                "could not request a divert again after reconnecting",
                extra={"item": found.item_id, "tote": found.tote_id, "error": str(exc)},
            )
            return False
        return True

    async def check_missing(self) -> None:
        """Give up on totes that stayed out of sight for the grace time (from the watch loop)."""
        if not self.missing:
            return
        now = self.clock.now()
        scanned = {item.tote for item in self.flight.items.values() if item.tote}
        for tote, since in list(self.missing.items()):
            trip = self.flight.by_tote.get(tote)
            if trip is None or not trip.dropped or tote in scanned:
                del self.missing[tote]  # arrived, or seen again: not lost
                continue
            if now - since < self.grace:
                continue
            del self.missing[tote]
            self.flight.forget(trip)
            self.metrics.conveyor_reconciled.labels(
                self.sorter.snapshot().conveyor_id, "tote_lost"
            ).inc()
            await self._lost(trip, now - since)

    async def _lost(self, trip: Trip, waited: float) -> None:
        rec = await self.history.get(trip.order_id)
        if rec is None:
            return
        data = {"tote": trip.tote, "waited_seconds": round(waited, 1)}
        log.warning("tote lost on the conveyor", extra={"order": trip.order_id, **data})
        if rec.status.terminal or trip.requeued:
            await self.history.record(rec, "tote_lost_on_conveyor", data=data)
            return
        if trip.void:  # it was on its way to the reject chute to end the cancellation
            await self.history.finish(
                rec,
                "cancelled",
                OrderStatus.CANCELLED,
                step=None,
                data={**data, "stage": "conveyor", "tote_lost": True},
            )
            return
        await self.history.record(
            rec,
            "tote_lost_on_conveyor",
            OrderStatus.EXCEPTION,
            step="exception",
            waiting=ToteNotFound(trip.tote),
            data=data,
        )
        self.metrics.orders_finished.labels(rec.type.value, "exception").inc()

"""Replenishment of robot pick locations from the AS/RS.

A pick location with ``replenish_below`` in the line file's ``stock`` is watched: when its units
on hand, plus those already on their way to it, fall below that level, :class:`Replenishment`
chooses a rack tote holding the SKU (not asked for by anyone else; the one closest to what is
missing, else the fullest), reserves the units to move in that tote (up to ``replenish_to`` on
the location; the whole tote when it is not set), and asks the AS/RS for the tote (purpose
``replenish``). The crane sets it down at its aisle's P&D output; the conveyor carries it to a
chute of kind ``replenishment``, where an operator moves the units to the pick location and
confirms how many (``POST /v1/replenishments/{id}/confirmation``). The confirmation is one
inventory transaction: the tote's on-hand down, the location's up, two ledger rows with the
task's id. The tote is then listed in the chute's returns and goes back to the rack like a case
tote (:mod:`controller.asrs.returns`).

Nothing of a task is kept apart from what the inventory and the AS/RS keep: the task *is* the
open tote reservation (holder and reference ``RPL-<location>-<n>``, line id = the location;
an order's reservations carry a reference of their own) and the tote's
place, so a restart rebuilds it. A retrieve the AS/RS gives up, a tote that lands in another
chute, or one the conveyor's watch gives up as lost, ends the task and frees its reservation;
the next check starts another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from controller.asrs.commands import AsrsRequestError
from controller.asrs.flows import AsrsFlows
from controller.line import topology
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Leg, Trip
from controller.store.asrs import AsrsRequest
from controller.store.base import StoreError
from controller.store.inventory import InventoryError, PickOutcome, ToteLine
from kernel.clock import Clock
from kernel.config.model import ChuteKind, LineConfig, StockEntry
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

PURPOSE = "replenish"
PREFIX = "RPL-"
STATION_PREFIX = "STATION:"
REMEMBERED = 1000  # confirmed tasks kept to answer a repeated confirmation the same


class UnknownReplenishment(LookupError):
    """No open replenishment with that id (or not at a chute yet)."""


@dataclass
class ReplenishTask:
    id: str
    location: str
    sku: str
    tote: str
    units: int  # reserved in the tote, to be moved to the location
    state: str = "retrieving"  # retrieving -> on_conveyor -> at_station
    aisle: str = ""
    station: str | None = None

    def document(self) -> dict[str, object]:
        return {
            "id": self.id,
            "location": self.location,
            "sku": self.sku,
            "tote": self.tote,
            "units": self.units,
            "state": self.state,
            "aisle": self.aisle or None,
            "station": self.station,
        }


class Replenishment:
    def __init__(
        self,
        config: LineConfig,
        inventory: Inventory,
        flight: InFlight,
        clock: Clock,
        metrics: Metrics,
        *,
        poll_seconds: float = 5.0,
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.flight = flight
        self.clock = clock
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.rules: dict[str, StockEntry] = {
            e.location: e for e in config.stock if e.replenish_below > 0
        }
        self.chutes = frozenset(
            c.id for c in config.conveyor.sorter.chutes if c.kind is ChuteKind.REPLENISHMENT
        )
        self.asrs: AsrsFlows | None = None  # set by the orchestrator when the line has one
        self.tasks: dict[str, ReplenishTask] = {}
        self._no_tote: set[str] = set()  # locations told once that no tote can serve them
        self._confirmed: dict[str, tuple[ReplenishTask, PickOutcome]] = {}
        self._wake = asyncio.Event()

    @property
    def active(self) -> bool:
        return bool(self.rules) and self.asrs is not None and bool(self.chutes)

    def totes_in_use(self, station: str | None = None) -> set[str]:
        """Totes of open replenishments (at ``station`` when given): not to be returned yet."""
        return {t.tote for t in self.tasks.values() if station is None or t.station == station}

    def wake(self) -> None:
        self._wake.set()

    # --- start-up -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Rebuild the open tasks from the tote reservations and where their totes are."""
        if self.asrs is None:
            return
        busy = self.asrs.busy_totes()
        where = await self.asrs.store.asrs_tote_locations()
        for r in await self.inventory.tote_reservations(PREFIX):
            if r.ref_id != r.holder:  # an order whose id merely starts like a task's
                continue
            task = ReplenishTask(r.holder, r.line_id, r.sku, r.tote, r.units)
            at = where.get(r.tote, "")
            if at.startswith("PD:"):
                task.state, task.aisle = "on_conveyor", at.removeprefix("PD:")
                self.flight.on_conveyor(self._trip(task))
            elif at.startswith(STATION_PREFIX) and at.removeprefix(STATION_PREFIX) in self.chutes:
                task.state, task.station = "at_station", at.removeprefix(STATION_PREFIX)
            elif r.tote not in busy:  # its retrieve ended without bringing the tote out
                await self.inventory.release(r.holder, reason="replenishment not carried out")
                continue
            self.tasks[task.id] = task
        if self.tasks:
            log.info("replenishments of the last run taken over", extra={"open": len(self.tasks)})

    # --- watching the pick locations ----------------------------------------------------------

    async def run(self) -> None:
        """Check the watched locations every ``poll_seconds`` of line time and when woken."""
        if not self.active:
            return
        while True:
            self._wake.clear()
            try:
                await self.check()
            except (StoreError, InventoryError):
                log.exception("replenishment check failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.clock.wall_seconds(self.poll_seconds)):
                    await self._wake.wait()

    async def check(self) -> list[ReplenishTask]:
        """Start a replenishment for every watched location below its level."""
        started: list[ReplenishTask] = []
        if not self.active:
            return started
        for riding in [t for t in self.tasks.values() if t.state == "on_conveyor"]:
            if riding.tote not in self.flight.by_tote:  # given up as lost by the conveyor's watch
                await self._give_up(riding, "tote lost on the conveyor")
        for location, rule in self.rules.items():
            on_hand = self.inventory.on_hand(location, rule.sku)
            inbound = sum(t.units for t in self.tasks.values() if t.location == location)
            if on_hand + inbound >= rule.replenish_below:
                self._no_tote.discard(location)
                continue
            task = await self._start(location, rule, on_hand + inbound)
            if task is not None:
                started.append(task)
        return started

    async def _start(self, location: str, rule: StockEntry, have: int) -> ReplenishTask | None:
        assert self.asrs is not None
        need = None if rule.replenish_to is None else rule.replenish_to - have
        tote, units = await self._tote(rule.sku, need)
        if tote is None:
            if location not in self._no_tote:
                log.warning(
                    "no AS/RS tote can replenish the location",
                    extra={"location": location, "sku": rule.sku, "on_hand": have},
                )
            self._no_tote.add(location)
            return None
        task = ReplenishTask(
            f"{PREFIX}{location}-{uuid.uuid4().hex[:8]}", location, rule.sku, tote, units
        )
        await self.inventory.reserve_totes(
            task.id, [ToteLine(location, rule.sku, tote, units)], task.id
        )
        try:
            request = await self.asrs.request_retrieve(
                tote,
                PURPOSE,
                order_id=task.id,
                due=self.clock.utcnow() + timedelta(minutes=30 if have else 5),
                priority=8 if have <= 0 else 6,
            )
        except AsrsRequestError as exc:
            await self.inventory.release(task.id, reason="AS/RS retrieve refused")
            log.warning("replenishment retrieve refused", extra={"tote": tote, "why": str(exc)})
            return None
        task.aisle = request.aisle
        self.tasks[task.id] = task
        self.metrics.replenishments.labels("requested").inc()
        log.info(
            "replenishment started",
            extra={"task": task.id, "location": location, "tote": tote, "units": units},
        )
        return task

    async def _tote(self, sku: str, need: int | None) -> tuple[str | None, int]:
        """The rack tote to bring: the smallest holding ``need`` units, else the fullest."""
        assert self.asrs is not None
        busy = self.asrs.busy_totes() | self.totes_in_use()
        in_rack = await self.asrs.rack_totes()
        free = {
            tote: units
            for tote, units in self.inventory.tote_view().get(sku, {}).items()
            if units > 0 and tote in in_rack and tote not in busy
        }
        if not free:
            return None, 0
        covering = [t for t, u in free.items() if need is not None and u >= need]
        if covering:
            tote = min(covering, key=lambda t: (free[t], t))
        else:
            tote = max(free, key=lambda t: (free[t], t))
        units = free[tote] if need is None else min(free[tote], need)
        return tote, units

    # --- the AS/RS's hooks --------------------------------------------------------------------

    async def retrieved(self, tote: str, aisle: str, order_id: str | None) -> None:
        task = self.tasks.get(order_id or "")
        if task is None:
            return
        task.state, task.aisle = "on_conveyor", aisle
        self.flight.on_conveyor(self._trip(task))

    def _trip(self, task: ReplenishTask) -> Trip:
        return Trip(
            trip_id=f"replenish-{task.id}",
            order_id=task.id,
            serial="",
            tote=task.tote,
            picks=(),
            induction=f"PD:{task.aisle}",
            started_at=self.clock.utcnow(),
            destination=topology.REPLENISHMENT_DESTINATION,
            b2b=False,
            leg=Leg.ON_CONVEYOR,
            case_tote=True,
            purpose=PURPOSE,
        )

    async def retrieve_failed(self, request: AsrsRequest) -> None:
        task = self.tasks.get(request.order_id or "")
        if task is not None:
            await self._give_up(task, f"AS/RS retrieve failed: {request.reason}")

    async def _give_up(self, task: ReplenishTask, why: str) -> None:
        """End the task without a put: its reservation goes back; the next check may start
        another for the location."""
        self.tasks.pop(task.id, None)
        await self.inventory.release(task.id, reason=why)
        self.metrics.replenishments.labels("failed").inc()
        log.warning(
            "replenishment given up",
            extra={"task": task.id, "tote": task.tote, "location": task.location, "why": why},
        )
        self.wake()

    async def arrived(self, trip: Trip, chute: str) -> None:
        """The tote is in ``chute`` (a replenishment chute, or the reject chute)."""
        try:
            await self.inventory.tote_moved(
                trip.tote, f"{STATION_PREFIX}{chute}", f"{trip.trip_id}-in-{chute}"
            )
        except InventoryError as exc:
            log.error("tote move not recorded", extra={"tote": trip.tote, "why": str(exc)})
        self.flight.forget(trip)
        task = self.tasks.get(trip.order_id)
        if task is None:
            return
        if chute not in self.chutes:
            await self._give_up(task, f"tote sorted to {chute}, not a replenishment chute")
            return
        task.state, task.station = "at_station", chute
        self.metrics.replenishments.labels("at_station").inc()

    # --- at the chute -------------------------------------------------------------------------

    def open_tasks(self, station: str | None = None) -> list[ReplenishTask]:
        return sorted(
            (t for t in self.tasks.values() if station is None or t.station == station),
            key=lambda t: t.id,
        )

    async def confirm(
        self, task_id: str, put: int, operator: str
    ) -> tuple[ReplenishTask, PickOutcome]:
        """The operator moved ``put`` units from the tote to the pick location. Fewer than
        reserved is recorded as a short pick of the tote; the rest stays in it. Confirming the
        same task again answers the first outcome (``duplicate``) while it is remembered."""
        done = self._confirmed.get(task_id)
        if done is not None:
            return done[0], replace(done[1], duplicate=True)
        task = self.tasks.get(task_id)
        if task is None or task.state != "at_station":
            raise UnknownReplenishment(f"no replenishment {task_id!r} waiting at a chute")
        if not 0 <= put <= task.units:
            raise ValueError(f"put must be 0..{task.units} units, got {put}")
        outcome = await self.inventory.replenish_from_tote(
            task.id, task.tote, task.sku, task.location, put, f"{task.id}-put"
        )
        del self.tasks[task_id]
        self._confirmed[task_id] = (task, outcome)
        while len(self._confirmed) > REMEMBERED:
            del self._confirmed[next(iter(self._confirmed))]
        self.metrics.replenishments.labels("put").inc()
        log.info(
            "replenishment put confirmed",
            extra={
                "task": task.id,
                "location": task.location,
                "units": put,
                "operator": operator,
            },
        )
        self.wake()
        return task, outcome

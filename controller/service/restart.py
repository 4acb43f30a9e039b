"""The orchestrator's start-up: the orders a stop left unfinished are taken up again.

Every order not yet terminal is read back with its history. An order a robot had not finished
picking goes back on its robot, to be taken over when the robot reports
(:mod:`controller.robots.takeover`), or to the queue when its trip cannot be rebuilt; one sorted to
its station gets its station task (and its chute) again; one whose tote was on the conveyor is
tracked again, the conveyor's tracking table telling where the tote is; an order's AS/RS case picks
are rebuilt by the case picks themselves. A cancel asked for before the stop is carried out.
"""

from __future__ import annotations

import asyncio
import logging

from controller.asrs.case_picks.picks import CasePicks
from controller.asrs.commands import journal_positions
from controller.asrs.flows import AsrsFlows
from controller.asrs.replenishment import Replenishment
from controller.conveyor.reject_totes import RejectTotes
from controller.conveyor.sorting import Sortation
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.stations import Stations
from controller.line.trips import InFlight, Trip
from controller.orders.model import HistoryEvent, OrderRecord, OrderStatus, OrderType
from controller.robots.dispatcher import Dispatcher
from controller.robots.takeover import RobotTakeover
from controller.robots.trip_records import tote_trip
from controller.store.inventory import LineStore
from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import LineConfig

log = logging.getLogger("controller.service.orchestrator")  # the orchestrator logs under one name


class OrchestratorRestart:
    """Taking up the orders of the last run (the parts are the orchestrator's)."""

    config: LineConfig
    store: LineStore
    history: History
    flight: InFlight
    inventory: Inventory
    case_picks: CasePicks
    replenishment: Replenishment
    reject_totes: RejectTotes
    dispatcher: Dispatcher
    stations: Stations
    sortation: Sortation
    asrs: AsrsFlows | None
    _cranes: dev.Cranes | None
    _cancels: asyncio.Queue[str]
    takeover: RobotTakeover
    clock: Clock
    _lost: dict[str, tuple[float, str]]

    # --- start-up --------------------------------------------------------------------------

    async def resume(self) -> None:
        """Pick up non-terminal orders from the store after a start or restart (one pass)."""
        await self.inventory.open()
        await self.reject_totes.open()
        if self.asrs is not None and self._cranes is not None:
            await self.asrs.open()
            await self.replenishment.open()
            self._cranes.resume_from(await journal_positions(self.store, self.config))
        on_robots: list[tuple[OrderRecord, list[HistoryEvent]]] = []
        active = await self.store.active_orders()
        histories = await self.store.histories([rec.id for rec in active])
        for rec in active:
            events = histories[rec.id]
            if any(e.type == "cancel_requested" for e in events):
                self._cancels.put_nowait(rec.id)
            cases = self.case_picks.restore(rec, events)
            # the robot's tote of an order still waiting for its AS/RS totes is at the station
            at_station = self.case_picks.robot_tote_at_station(rec.id)
            robot_part = not cases or self.case_picks.needs_robot(rec.id)
            if cases and not robot_part and rec.status is not OrderStatus.SORTED:
                continue  # only AS/RS totes: they are tracked by the case picks
            if rec.status is OrderStatus.ACCEPTED:
                self.dispatcher.add(rec)
            elif rec.status in (OrderStatus.RELEASED, OrderStatus.PICKING):
                on_robots.append((rec, events))
            elif rec.status is OrderStatus.SORTED and rec.step == "at_station":
                sorted_at = next((e for e in reversed(events) if e.type == "sorted"), None)
                if sorted_at is not None:
                    data = sorted_at.data
                    totes = [str(t) for t in data.get("totes", [data.get("tote")])]
                    self.stations.open(
                        rec, str(data.get("chute")), totes, self.case_picks.released(rec.id)
                    )
                    if any(e.type == "chute_allocated" for e in events):
                        self.sortation.restore(rec.id, str(data.get("chute")))
            elif rec.status is OrderStatus.IN_TRANSIT and not at_station:
                self._resume_on_conveyor(rec, events)
        await self._resume_on_robots(on_robots)

    async def _resume_on_robots(self, orders: list[tuple[OrderRecord, list[HistoryEvent]]]) -> None:
        """Orders a robot was picking: their trips go back on their robots, to be taken over
        when each robot reports (:mod:`controller.robots.takeover`); an order whose trip cannot be
        rebuilt goes back to the queue. A robot not heard from by the time dispatching starts is
        lost from then on."""
        restored = await self.takeover.restore(orders)
        self.takeover.unheard = self._unheard
        for rec, _ in orders:
            if rec.id in restored:
                continue
            rec = await self.history.record(
                rec,
                "requeued",
                OrderStatus.ACCEPTED,
                step="queued",
                picked={},
                data={"reason": "controller restarted before the pick finished"},
            )
            self.dispatcher.add(rec)

    def _unheard(self, serials: list[str]) -> None:
        """Dispatching starts without these robots taken over: one carrying trips of the last
        run is lost from now on, and its trips are given away after ``failure_grace``."""
        now = self.clock.now()
        for serial in serials:
            if self.flight.on_robot(serial):
                self._lost.setdefault(serial, (now, "not heard from since the start"))

    async def _requeue(self, trip: Trip, reason: str) -> None:
        """The take-over found the order's trip gone from its robot: it is picked again."""
        rec = await self.history.get(trip.order_id)
        if rec is None or rec.status.terminal:
            return
        rec = await self.history.record(
            rec,
            "requeued",
            OrderStatus.ACCEPTED,
            step="queued",
            picked={},
            data={"reason": reason, "trip": trip.trip_id},
        )
        self.dispatcher.add(rec)

    def _resume_on_conveyor(self, rec: OrderRecord, events: list[HistoryEvent]) -> None:
        """The order's tote was on the conveyor when the controller stopped: track it again.
        The conveyor's tracking table and journal, read on first contact, tell where it is
        (or that it already reached its chute); a scan routes it as before."""
        dropped = next((e for e in reversed(events) if e.type == "dropped"), None)
        tote = dropped.data.get("tote") if dropped is not None else None
        if dropped is None or not isinstance(tote, str) or not tote:
            log.warning("order on the conveyor at restart has no tote", extra={"order": rec.id})
            return
        # what the robot picked into it: a tote that ends in the reject chute is registered
        # with its contents (see controller.conveyor.reject_totes)
        filled = tote_trip(rec.id, events, tote)
        trip = Trip(
            trip_id=filled.trip_id if filled is not None else f"resumed-{rec.id}",
            order_id=rec.id,
            serial=str(dropped.data.get("robot", "")),
            tote=tote,
            picks=filled.picks if filled is not None else (),
            induction=str(dropped.data.get("induction", "")),
            started_at=rec.updated_at,
            destination=rec.body.destination,
            b2b=rec.type is OrderType.B2B,
            dropped=True,
        )
        if filled is not None:
            trip.picks_done = set(filled.booked)
            trip.picked = dict(filled.picked)
        trip.cancelled = any(e.type == "cancel_on_conveyor" for e in events)
        self.flight.on_conveyor(trip)
        log.info("order on the conveyor tracked again", extra={"order": rec.id, "tote": tote})

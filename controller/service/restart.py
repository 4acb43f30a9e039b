"""The orchestrator's start-up: the orders a stop left unfinished are taken up again.

Every order not yet terminal is read back with its history. An order a robot had not finished
picking goes back on its robot, to be taken over when the robot reports
(:mod:`controller.robots.takeover`), or to the queue when its trip cannot be rebuilt; one sorted to
its station gets its station task (and its chute) again; one whose tote was on the conveyor is
tracked again, the conveyor's tracking table telling where the tote is; an order's AS/RS case picks
are rebuilt by the case picks themselves. A cancel asked for before the stop is carried out.
"""

from __future__ import annotations

import logging

from controller.asrs.commands import journal_positions
from controller.line.trips import Leg, Serving, Trip
from controller.orders.model import HistoryEvent, OrderRecord, OrderStatus, OrderType
from controller.robots.trip_records import tote_trip
from controller.service.state import OrchestratorState

log = logging.getLogger("controller.service.orchestrator")  # the orchestrator logs under one name


class Resumption:
    """Taking up, at start, the orders the last run left unfinished."""

    def __init__(self, state: OrchestratorState) -> None:
        self.state = state

    async def resume(self) -> list[str]:
        """Pick up non-terminal orders from the store after a start or restart (one pass);
        the ids of the orders it read."""
        state = self.state
        await state.inventory.open()
        await state.reject_totes.open()
        if state.asrs is not None and state.cranes is not None:
            await state.asrs.open()
            await state.replenishment.open()
            state.cranes.resume_from(await journal_positions(state.store, state.config))
        on_robots: list[tuple[OrderRecord, list[HistoryEvent]]] = []
        active = await state.store.active_orders()
        histories = await state.store.histories([rec.id for rec in active])
        for rec in active:
            events = histories[rec.id]
            if any(e.type == "cancel_requested" for e in events):
                state.cancel_requests.put_nowait(rec.id)
            cases = state.case_picks.restore(rec, events)
            # the robot's tote of an order still waiting for its AS/RS totes is at the station
            at_station = state.case_picks.robot_tote_at_station(rec.id)
            robot_part = not cases or state.case_picks.needs_robot(rec.id)
            if cases and not robot_part and rec.status is not OrderStatus.SORTED:
                continue  # only AS/RS totes: they are tracked by the case picks
            if rec.status is OrderStatus.ACCEPTED:
                state.dispatcher.add(rec)
            elif rec.status in (OrderStatus.RELEASED, OrderStatus.PICKING):
                on_robots.append((rec, events))
            elif rec.status is OrderStatus.SORTED and rec.step == "at_station":
                sorted_at = next((e for e in reversed(events) if e.type == "sorted"), None)
                if sorted_at is not None:
                    data = sorted_at.data
                    totes = [str(t) for t in data.get("totes", [data.get("tote")])]
                    state.stations.open(
                        rec, str(data.get("chute")), totes, state.case_picks.released(rec.id)
                    )
                    if any(e.type == "chute_allocated" for e in events):
                        state.sortation.restore(rec.id, str(data.get("chute")))
            elif rec.status is OrderStatus.SORTED and rec.step == "in_chute":
                # its tote reached the order's chute; the controller stopped before the
                # completion that follows at once was written
                await state.history.finish(
                    rec, "completed", OrderStatus.COMPLETED, step=None, data={"resumed": True}
                )
            elif rec.status is OrderStatus.IN_TRANSIT and not at_station:
                self._on_conveyor(rec, events)
        await self._on_robots(on_robots)
        return [rec.id for rec in active]

    async def _on_robots(self, orders: list[tuple[OrderRecord, list[HistoryEvent]]]) -> None:
        """Orders a robot was picking: their trips go back on their robots, to be taken over
        when each robot reports (:mod:`controller.robots.takeover`); an order whose trip cannot be
        rebuilt goes back to the queue. A robot not heard from by the time dispatching starts is
        lost from then on."""
        restored = await self.state.takeover.restore(orders)
        self.state.takeover.unheard = self.unheard
        for rec, _ in orders:
            if rec.id in restored:
                continue
            rec = await self.state.history.record(
                rec,
                "requeued",
                OrderStatus.ACCEPTED,
                step="queued",
                picked={},
                data={"reason": "controller restarted before the pick finished"},
            )
            self.state.dispatcher.add(rec)

    def unheard(self, serials: list[str]) -> None:
        """Dispatching starts without these robots taken over: one carrying trips of the last
        run is lost from now on, and its trips are given away after ``failure_grace``."""
        now = self.state.clock.now()
        for serial in serials:
            if self.state.flight.on_robot(serial):
                self.state.lost.setdefault(serial, (now, "not heard from since the start"))

    async def requeue(self, trip: Trip, reason: str) -> None:
        """The take-over found the order's trip gone from its robot: it is picked again."""
        rec = await self.state.history.get(trip.order_id)
        if rec is None or rec.status.terminal:
            return
        rec = await self.state.history.record(
            rec,
            "requeued",
            OrderStatus.ACCEPTED,
            step="queued",
            picked={},
            data={"reason": reason, "trip": trip.trip_id},
        )
        self.state.dispatcher.add(rec)

    def _on_conveyor(self, rec: OrderRecord, events: list[HistoryEvent]) -> None:
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
            serving=(
                Serving.CANCELLED
                if any(e.type == "cancel_on_conveyor" for e in events)
                else Serving.LIVE
            ),
            leg=Leg.ON_CONVEYOR,
        )
        if filled is not None:
            trip.picks_done = set(filled.booked)
            trip.picked = dict(filled.picked)
        self.state.flight.on_conveyor(trip)
        log.info("order on the conveyor tracked again", extra={"order": rec.id, "tote": tote})

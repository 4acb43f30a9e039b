"""Orchestration: orders through robots, conveyor and sorter to completion.

accepted -> released (robot assigned) -> picking -> in_transit (dropped on the conveyor) ->
scanned -> diverted -> sorted -> completed (B2B: after verification at its station), each step an
event in the order's history. ``Orchestrator`` builds the parts that move an order and hands each
device event to the part it concerns. Cancellation is its own: whatever an order has in flight
when it is cancelled is called back or sent to the reject chute. The start-up after a stop and
the handling of robot failures act for it on the same state (``OrchestratorState``).
"""

from __future__ import annotations

import asyncio
import logging

from controller.asrs.case_picks.picks import PURPOSE as CASE_PICK
from controller.asrs.case_picks.picks import CasePicks
from controller.asrs.flows import AsrsFlows
from controller.asrs.replenishment import PURPOSE as REPLENISH
from controller.asrs.replenishment import Replenishment
from controller.asrs.returns import ToteReturns
from controller.conveyor.reject_totes import RejectTotes
from controller.conveyor.sorting import Sortation
from controller.conveyor.tracking import ConveyorReconciler
from controller.line import topology
from controller.line.device_queue import DeviceEventQueue
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.journal import HistoryJournal
from controller.line.stations import Stations
from controller.line.trips import InFlight, Serving, Trip
from controller.orders.model import OrderRecord, OrderStatus
from controller.orders.waiting import EndedWithoutDrop
from controller.robots.cancels import RobotCancels
from controller.robots.dispatcher import Dispatcher
from controller.robots.failures import RobotFailures
from controller.robots.faults import RobotFaults
from controller.robots.picking import Picking
from controller.robots.takeover import RobotTakeover
from controller.robots.traffic.fleet import TrafficFleet
from controller.service.deadline_limits import limits
from controller.service.deadlines import DeadlineWatch
from controller.service.restart import Resumption
from controller.service.state import OrchestratorState
from controller.store.asrs import AsrsRequest
from controller.store.base import StoreError
from controller.store.inventory import LineStore
from devices import base as dev
from devices.errors import DeviceError
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger(__name__)


class Orchestrator:
    """The line's orders from acceptance to their end, over the robots, the conveyor and the
    AS/RS; what the service runs and the API reads."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        store: LineStore,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        sorter: dev.Sorter,
        cranes: dev.Cranes | None = None,
        *,
        journal: HistoryJournal | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.history = History(store, clock, metrics, journal)
        self.flight = InFlight()
        # every robot order goes through traffic control (node reservations)
        self.traffic = TrafficFleet(
            config, clock, metrics, fleet, self.flight.start_errand, self._give_way
        )
        self.fleet: dev.RobotFleet = self.traffic
        # failed actions counted against each robot; one that keeps failing gets no new trips
        self.robot_faults = RobotFaults(config, clock, metrics)
        self.inventory = Inventory(config, store, clock, metrics)
        # B2B case lines served from AS/RS totes (only when the line has an AS/RS)
        self.case_picks = CasePicks(
            config, self.history, self.inventory, self.flight, clock, metrics
        )
        self.history.ended.append(self.case_picks.ended)
        # robot pick locations topped up from AS/RS totes
        self.replenishment = Replenishment(config, self.inventory, self.flight, clock, metrics)
        # AS/RS totes back into the rack once no open task needs them at their station
        self.tote_returns = ToteReturns(self.inventory, clock, metrics)
        self.tote_returns.holders += [self.case_picks.totes_in_use, self.replenishment.totes_in_use]
        self.dispatcher = Dispatcher(
            config,
            clock,
            self.history,
            metrics,
            self.fleet,
            sorter,
            self.flight,
            self.inventory,
            self._accepts_trips,
            self.case_picks,
        )
        self.picking = Picking(self.history, self.flight, self.inventory)
        # the robots' take-over at start: nothing is dispatched before it is done
        self.takeover = RobotTakeover(
            config,
            clock,
            self.history,
            self.flight,
            self.inventory,
            self.fleet,
            self.picking,
            metrics,
        )
        self.takeover.handle = self.handle
        self.takeover.cancelled = self._cancelled_on_robot
        self.dispatcher.ready = self.takeover.ready
        self.dispatcher.before_round = self.takeover.poll
        self.traffic.held = lambda serial: not self.takeover.done(serial)
        self.stations = Stations(self.history, self.case_picks.settle)
        self.sortation = Sortation(
            topology.sort_plan(config),
            self.history,
            metrics,
            sorter,
            self.flight,
            self.stations,
            self.case_picks,
            self.replenishment,
        )
        self.history.ended.append(self.sortation.release)  # an ended order frees its chute
        self.reject_totes = RejectTotes(config, store, self.inventory, clock, metrics)
        self.sortation.reject_totes = self.reject_totes
        self.reconciler = ConveyorReconciler(
            self.flight,
            sorter,
            self.history,
            metrics,
            clock,
            config.conveyor.lost_item_grace,
            {d.chute: d.id for d in config.conveyor.sorter.diverts},
        )
        # the AS/RS: crane commands written before they are sent, completions into the inventory
        self.asrs: AsrsFlows | None = (
            AsrsFlows(
                config,
                cranes,
                self.inventory,
                store,
                clock,
                metrics,
                on_retrieved=self._retrieved,
                on_failed=self._retrieve_failed,
            )
            if cranes is not None
            else None
        )
        self.case_picks.asrs = self.replenishment.asrs = self.tote_returns.asrs = self.asrs
        self.clock = clock
        # every cancelOrder, followed until the robot confirms it, retried, or given up
        self.cancels = RobotCancels(
            self.fleet, clock, config.robots.cancel_attempts, self._not_stopped
        )
        # what the start-up and the failure handling share with the orchestrator
        self.state = OrchestratorState(
            config=config,
            clock=clock,
            store=store,
            history=self.history,
            flight=self.flight,
            inventory=self.inventory,
            dispatcher=self.dispatcher,
            picking=self.picking,
            takeover=self.takeover,
            cancels=self.cancels,
            robot_faults=self.robot_faults,
            stations=self.stations,
            sortation=self.sortation,
            reconciler=self.reconciler,
            reject_totes=self.reject_totes,
            case_picks=self.case_picks,
            replenishment=self.replenishment,
            asrs=self.asrs,
            cranes=cranes,
        )
        # the orders the last run left unfinished, taken up at start
        self.resumption = Resumption(self.state)
        self.takeover.requeue = self.resumption.requeue
        # failed, lost and overdue robots: their orders go to other robots
        self.failures = RobotFailures(self.state)
        # every stage and device command against its deadline, on one watcher
        self.deadlines = DeadlineWatch(
            limits(config, self.dispatcher.roadmap, clock.time_scale),
            clock,
            self.history,
            metrics,
            self.flight,
            sorter,
            self.fleet,
            self.stations,
            self.failures.robot_overdue,
            self.asrs,
            self.traffic.waiting,
        )

    async def _give_way(self, serial: str, why: str) -> None:
        """Traffic control, built before the failure handling, asks a robot to give way."""
        await self.failures.give_way(serial, why)

    def _accepts_trips(self, serial: str) -> bool:
        """Traffic control may hold a robot back for a while, and so may its faults; nothing
        goes to a robot before its take-over at start."""
        return (
            self.traffic.accepts_trips(serial)
            and self.robot_faults.accepts_trips(serial)
            and self.takeover.done(serial)
        )

    # --- from the API ----------------------------------------------------------------------

    def order_accepted(self, record: OrderRecord) -> None:
        self.dispatcher.add(record)

    def order_changed(self, record: OrderRecord) -> None:
        self.dispatcher.changed(record)

    def cancel_requested(self, record: OrderRecord) -> None:
        self.state.cancel_requests.put_nowait(record.id)

    # --- tasks -----------------------------------------------------------------------------

    async def case_loop(self) -> None:
        await self.case_picks.run()

    async def replenish_loop(self) -> None:
        await self.replenishment.run()

    # --- AS/RS totes out of the rack ---------------------------------------------------------

    async def _retrieved(self, tote: str, aisle: str, purpose: str, order_id: str | None) -> None:
        """A tote the AS/RS brought out is on the conveyor: whoever asked follows it."""
        if purpose == CASE_PICK:
            await self.case_picks.retrieved(tote, aisle, purpose, order_id)
        elif purpose == REPLENISH:
            await self.replenishment.retrieved(tote, aisle, order_id)

    async def _retrieve_failed(self, request: AsrsRequest) -> None:
        if request.purpose == CASE_PICK:
            await self.case_picks.retrieve_failed(request)
        elif request.purpose == REPLENISH:
            await self.replenishment.retrieve_failed(request)

    async def watch_loop(self) -> None:
        await self.failures.watch_loop()

    async def deadline_loop(self) -> None:
        await self.deadlines.run()

    async def dispatch_loop(self) -> None:
        await self.dispatcher.loop()

    async def history_loop(self) -> None:
        await self.sortation.history_loop()

    async def cancel_loop(self) -> None:
        while True:
            order_id = await self.state.cancel_requests.get()
            try:
                await self.cancel(order_id)
            except StoreError:
                log.exception("could not record a cancellation", extra={"order": order_id})

    async def consume(
        self,
        queue: asyncio.Queue[dev.DeviceEvent],
        *,
        cranes: DeviceEventQueue | None = None,
    ) -> None:
        """Handle the events of one kind of device in the order they came, one at a time.

        Each kind has its queue and its consumer, so that a slow step for one (the cranes'
        consumer waiting for the store to take an AS/RS record, say) does not hold up another
        (a divert the sorter needs now). ``cranes``, given to the conveyor's consumer, is the
        cranes' queue: a tote the AS/RS brings out becomes known when the cranes' report of it
        is handled, so a scan none of whose codes is known waits until the cranes' events
        received by then are handled; it would be rejected as unknown otherwise. The scan of a
        known tote never waits for the cranes."""
        while True:
            event = await queue.get()
            try:
                if cranes is not None and self._maybe_from_cranes(event):
                    await cranes.caught_up(cranes.received)
                await self.handle(event)
            except StoreError:
                log.exception("could not record a device event", extra={"event": repr(event)})
            finally:
                if isinstance(queue, DeviceEventQueue):
                    await queue.done()

    def _maybe_from_cranes(self, event: dev.DeviceEvent) -> bool:
        """A scan that read codes, none of them a tote the controller follows (yet)."""
        return (
            isinstance(event, dev.ItemScanned)
            and bool(event.codes)
            and not any(code in self.flight.by_tote for code in event.codes)
        )

    async def handle(self, event: dev.DeviceEvent) -> None:
        await self._handle(event)
        if isinstance(
            event,
            dev.RobotActionFinished
            | dev.RobotActionFailed
            | dev.RobotOrderFinished
            | dev.RobotAvailability,
        ):
            # a drop booked late (a robot taken over at start): the conveyor may have
            # delivered its tote before the controller knew it was on the belt
            for arrived in self.reconciler.late_arrivals():
                self.reconciler.diverted(arrived)
                self.sortation.diverted(arrived)

    async def _handle(self, event: dev.DeviceEvent) -> None:
        if isinstance(
            event, dev.RobotActionFinished | dev.RobotActionFailed
        ) and await self.takeover.action_ended(event):
            self.dispatcher.wake()  # the robot stood still and was taken over
            return
        match event:
            case dev.RobotActionFinished():
                if self.cancels.finished(event):
                    return
                self.robot_faults.succeeded(event.serial)
                short = await self.picking.action_finished(event)
                if short is not None:
                    await self.failures.stop_if_void(short)
            case dev.RobotActionFailed():
                if await self.cancels.failed(event):
                    return
                await self.failures.action_failed(event)
            case dev.RobotOrderFinished():
                self.cancels.order_ended(event.serial)
                for trip in await self.picking.job_finished(event):
                    if self.failures.stood_after_giving_way(trip):
                        continue
                    if not trip.void:
                        lost = EndedWithoutDrop(event.serial)
                        await self.failures.spoiled(trip, "robot_trip_ended_without_drop", lost, {})
                        await self.picking.settle_void(trip)
                    elif not trip.requeued:
                        await self._cancelled_on_robot(trip)
                self.dispatcher.wake()
            case dev.RobotAvailability():
                if event.available:
                    await self.takeover.reported(event.serial)
                await self.failures.availability(event)
                self.dispatcher.wake()
            case dev.ConveyorAvailability():
                self.dispatcher.wake()
            case dev.ItemScanned():
                await self.sortation.scanned(event)
            case dev.ItemDiverted():
                self.reconciler.diverted(event)
                self.sortation.diverted(event)
            case dev.ConveyorTracking():
                for arrived in await self.reconciler.reconcile(event):
                    self.reconciler.diverted(arrived)
                    self.sortation.diverted(arrived)
            case dev.ItemInducted():
                self.flight.item(event.item_id)
            case (
                dev.CraneCommandFinished()
                | dev.CraneContents()
                | dev.CranesAvailability()
                | dev.TotesAtPdInput()
            ):
                if self.asrs is not None:
                    await self.asrs.handle(event)

    # --- start-up and robots -----------------------------------------------------------------

    async def resume(self) -> list[str]:
        """Pick up non-terminal orders from the store after a start or restart (one pass);
        the ids of the orders it read."""
        return await self.resumption.resume()

    async def cancel_robot(self, serial: str) -> str:
        """An operator cancels the robot's work: its orders go to other robots."""
        return await self.failures.cancel_robot(serial)

    # --- cancellation ----------------------------------------------------------------------

    async def cancel(self, order_id: str) -> None:
        """Cancel whatever the order has in flight; the outcome is recorded as an event."""
        rec = await self.history.get(order_id)
        if rec is None or rec.status.terminal:
            return
        if self.dispatcher.withdraw(order_id):
            await self._finish_cancel(rec, "queued")
            return
        trip = self.flight.trip_of_order(order_id)
        if trip is not None and trip.continuing:
            # taken over, standing, not yet sent again: its tote (if any) comes back
            trip.cancel()
            await self.takeover.give_up(trip)
            await self._cancelled_on_robot(trip)
            return
        if trip is not None and not trip.returning:
            if trip.void:
                return  # already under way
            trip.cancel()
            if trip.dropped:  # on the conveyor: the sort decision sends it to the reject chute
                await self.history.record(rec, "cancel_on_conveyor", data={"tote": trip.tote})
                return
            if any(t.live for t in self.flight.job_trips(trip.job_id)):
                # the robot carries other orders too: it goes on, and this tote is sent to the
                # reject chute once dropped
                await self.history.record(rec, "cancel_on_batch_trip", data={"tote": trip.tote})
                return
            try:
                action_id = await self.cancels.send(trip.serial)
            except DeviceError as exc:
                await self.history.record(
                    rec, "robot_cancel_pending", data={"robot": trip.serial, "error": str(exc)}
                )
                return
            await self.history.record(
                rec, "robot_cancel_sent", data={"robot": trip.serial, "action": action_id}
            )
            return
        task = self.stations.withdraw(order_id)
        if task is not None:
            await self._finish_cancel(rec, "at_station", station=task.station_id, tote=task.tote)
            return
        await self._finish_cancel(rec, rec.step or rec.status.value)

    async def _cancelled_on_robot(self, trip: Trip) -> None:
        rec = await self.history.get(trip.order_id)
        if rec is not None and not rec.status.terminal:
            await self._finish_cancel(
                rec,
                "picking",
                robot=trip.serial,
                tote=trip.tote,
                tote_returning=trip.returning,
            )

    async def _not_stopped(self, serial: str, why: str) -> None:
        """The robot did not take a cancel after every attempt: the orders cancelled on it end
        ``cancelled`` with the robot and its tote named (the tote stays followed: when the robot
        drops it, it goes to the reject chute), and the robot waits for an operator."""
        for trip in self.flight.on_robot(serial):
            if trip.serving is not Serving.CANCELLED or trip.dropped:
                continue
            rec = await self.history.get(trip.order_id)
            if rec is not None and not rec.status.terminal:
                await self._finish_cancel(
                    rec,
                    "picking",
                    robot=serial,
                    tote=trip.tote,
                    robot_not_stopped=why,
                )

    async def _finish_cancel(self, rec: OrderRecord, stage: str, **data: object) -> None:
        await self.history.finish(
            rec, "cancelled", OrderStatus.CANCELLED, step=None, data={"stage": stage, **data}
        )

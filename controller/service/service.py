"""The long-running controller: one task group, named tasks, explicit start and stop.

``LineService`` owns the order store, the device adapters and the orchestrator, and is the
backend the HTTP API reads from. It does not know whether its devices are simulators.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from types import TracebackType
from typing import Any

from controller.asrs.replenishment import Replenishment
from controller.asrs.returns import ToteReturns
from controller.conveyor.reject_totes import RejectTotes
from controller.line.inventory import Inventory
from controller.line.journal import HistoryJournal
from controller.line.stations import Stations
from controller.orders.model import ACTIVE, OrderRecord, OrderStatus
from controller.robots.activity import RobotGauges
from controller.service import line_view as views
from controller.service.device_events import DeviceEvents
from controller.service.feed_intake import FeedIntake
from controller.service.hold import HoldOutcome, LineHoldControl
from controller.service.hold import view as hold_view
from controller.service.lease_keeper import LeaseKeeper
from controller.service.orchestrator import Orchestrator
from controller.store import open_store
from controller.store.base import Fenced, StoreError
from controller.store.health import StoreHealth
from controller.store.inventory import LineStore
from controller.store.retry import retrying
from controller.webhooks.delivery import webhook_dispatcher
from devices import base as dev
from devices.check import DeviceReport, check_line
from devices.opcua import OpcUaSorter
from devices.opcua.cranes.adapter import OpcUaCranes
from devices.vda5050.master.control import VdaMasterControl
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

STORE_PING_SECONDS = 2.0  # the order store must answer a readiness probe within this

# PackML states (OPC 30050) shown as the linectl_conveyor_state gauge, and Unknown
PACKML_STATES = (
    "Unknown",
    "Stopped",
    "Starting",
    "Idle",
    "Suspended",
    "Execute",
    "Stopping",
    "Aborting",
    "Aborted",
    "Holding",
    "Held",
    "Unholding",
    "Suspending",
    "Unsuspending",
    "Resetting",
    "Completing",
    "Complete",
    "Clearing",
)


class LineService:
    """Everything that runs for one line, except the HTTP server itself."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        *,
        interface_name: str | None = None,
        store: LineStore | None = None,
        metrics: Metrics | None = None,
        keeper: LeaseKeeper | None = None,
        fence: Fence | None = None,
        owns_store: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.metrics.know_line(config)  # its devices' series at 0 before the first scrape
        # a line with a standby: the lease this controller holds (None: the line's only one),
        # and the fence every device command passes
        self.keeper = keeper
        fence = fence or Fence.unfenced()
        self._owns_store = owns_store  # opened and closed here, or by whoever passed it
        # the store itself; everything else uses it through ``self.store``, whose calls are
        # tried again while it cannot write (order events wait in ``self.journal`` meanwhile)
        self._store: LineStore = store or open_store(config.store, config.line.id)
        self.store_health = StoreHealth(config.store, clock, self.metrics)
        self.store: LineStore = retrying(self._store, self.store_health)
        self.journal = HistoryJournal(self._store, self.store_health)
        self.fleet = VdaMasterControl(
            config,
            clock,
            self.metrics,
            config.mqtt.url,
            interface_name=interface_name,
            fence=fence,
        )
        self.sorter = OpcUaSorter(config, clock, self.metrics, fence=fence)
        # the AS/RS cranes, when the line has any
        self.cranes: OpcUaCranes | None = (
            OpcUaCranes(config, clock, self.metrics, fence=fence) if config.asrs.aisles else None
        )
        self.orchestrator = Orchestrator(
            config,
            clock,
            self.store,
            self.metrics,
            self.fleet,
            self.sorter,
            self.cranes,
            journal=self.journal,
        )
        # a queue and a consumer per kind of device: the scan to divert path waits for
        # neither the robots' nor the cranes' consumer
        self.events = DeviceEvents(self.orchestrator)
        # with a standby, every order reaches the orchestrator through the store's event feed,
        # whichever controller's API took it
        self.feed = FeedIntake(self.store, self.orchestrator) if keeper is not None else None
        self._intake_open = False  # run() is consuming what the API accepts
        # orders by status as last counted in the store (the gauges' refresh), and when
        self._order_counts: dict[OrderStatus, int] = {}
        self._counted_at: datetime | None = None
        self._store_failing: str | None = None  # the last readiness probe's error
        dispatcher = self.orchestrator.dispatcher
        self.hold = LineHoldControl(
            clock,
            self.store,
            self.sorter,
            self.fleet,
            self.robot_command,
            dispatcher,
            self.orchestrator.asrs,
            metrics=self.metrics,
        )
        self.store_health.listeners.append(
            lambda: self.hold.store_hold(self.store_health.hold_reason)
        )
        # device events not handled yet (a consumer waits for the store) and sortation steps
        # not recorded yet count as the store's backlog too
        self.store_health.backlog_sources += [
            *self.events.backlog(),
            self.orchestrator.sortation.deferred,
        ]

    # --- ApiBackend -------------------------------------------------------------------------

    @property
    def stations(self) -> Stations:
        return self.orchestrator.stations

    @property
    def tote_returns(self) -> ToteReturns:
        return self.orchestrator.tote_returns

    @property
    def replenishment(self) -> Replenishment:
        return self.orchestrator.replenishment

    @property
    def inventory(self) -> Inventory:
        return self.orchestrator.inventory

    @property
    def reject_totes(self) -> RejectTotes:
        return self.orchestrator.reject_totes

    def order_accepted(self, order: OrderRecord) -> None:
        if self.feed is None:
            self.orchestrator.order_accepted(order)

    def order_changed(self, order: OrderRecord) -> None:
        if self.feed is None:
            self.orchestrator.order_changed(order)

    def cancel_requested(self, order: OrderRecord) -> None:
        if self.feed is None:
            self.orchestrator.cancel_requested(order)

    def controller(self) -> dict[str, Any]:
        """This controller's role: the line's only one, or the active one of two."""
        if self.keeper is not None:
            return self.keeper.document()
        return {"role": "active", "failover": False, "instance": None, "term": None, "active": None}

    def line_view(self) -> dict[str, Any]:
        flight = self.orchestrator.flight
        busy = flight.busy_robots
        pending = self.orchestrator.dispatcher.pending
        carried = views.carried(flight)
        asrs = self.orchestrator.asrs
        work = asrs.snapshot() if asrs is not None else {}
        fault_held = self.orchestrator.robot_faults.held()
        return {
            "line_id": self.config.line.id,
            "at": self.clock.utcnow(),
            "conveyors": [views.conveyor(self.sorter.snapshot(), self.config, flight)],
            "robots": [
                {
                    **dataclasses.asdict(r),
                    "busy": r.serial in busy,
                    "errors": list(r.errors),
                    "factsheet_problems": list(r.factsheet_problems),
                    "traffic": self.orchestrator.traffic.view(r.serial),
                    "fault_hold_seconds": fault_held.get(r.serial),
                    "carrying": carried.get(r.serial, []),
                }
                for r in self.fleet.snapshot().values()
            ],
            "cranes": [
                {
                    **dataclasses.asdict(c),
                    "available": c.connected and c.state != "Fault",
                    "transports": work[c.aisle].document() if c.aisle in work else None,
                }
                for c in (self.cranes.snapshot().values() if self.cranes is not None else ())
            ],
            "orders_queued": len(pending),
            "orders": views.orders(
                self._order_counts, self._counted_at, pending.values(), len(pending)
            ),
            "deadlines": self.orchestrator.deadlines.limits.document(),
            "held": hold_view(self.hold.hold),
            "store_hold": self.hold.store_reason,
            "controller": self.controller(),
        }

    async def robot_command(self, serial: str, command: str) -> str:
        if command == "cancel":
            return await self.orchestrator.cancel_robot(serial)
        if command == "resume" and self.fleet.resume_robot(serial):
            self.orchestrator.dispatcher.wake()
        action = {"pause": "startPause", "resume": "stopPause"}[command]
        action_id = f"{command}-{uuid.uuid4().hex[:12]}"
        await self.fleet.send_instant_actions(serial, [dev.RobotAction(action_id, action, "HARD")])
        return action_id

    async def conveyor_command(self, conveyor_id: str, command: str) -> str:
        await self.sorter.command(command)
        state = self.sorter.snapshot().state
        log.info(
            "conveyor command", extra={"conveyor": conveyor_id, "command": command, "state": state}
        )
        return state

    async def line_hold(self, who: str) -> HoldOutcome:
        return await self.hold.hold_line(who)

    async def line_resume(self, who: str) -> HoldOutcome:
        return await self.hold.resume_line(who)

    async def conveyor_jog(
        self, conveyor_id: str, zone_id: str, speed: float, seconds: float
    ) -> None:
        await self.sorter.jog(zone_id, speed, seconds)
        log.info(
            "conveyor zone jogged",
            extra={"conveyor": conveyor_id, "zone": zone_id, "speed": speed, "seconds": seconds},
        )

    async def devices_check(self, wait: float, connect_timeout: float) -> list[DeviceReport]:
        return await check_line(self.config, wait, connect_timeout)

    async def readiness(self) -> dict[str, bool]:
        """Whether the service can take orders: the line file is loaded and valid (``config``),
        the order store answers within ``STORE_PING_SECONDS`` and takes writes (``store``), and
        the controller is running and takes what the API accepts (``intake``). Device outages
        are not here: orders are taken and wait while a device is down; they show in
        ``GET /v1/line`` and the metrics."""
        try:
            async with asyncio.timeout(STORE_PING_SECONDS):
                await self.store.ping()
            store_ok = True
        except (TimeoutError, StoreError) as exc:
            if self._store_failing is None:
                log.warning("order store does not answer", extra={"error": str(exc) or "timeout"})
            self._store_failing = str(exc) or f"does not answer within {STORE_PING_SECONDS} s"
            store_ok = False
        else:
            if self._store_failing is not None:
                log.warning("order store answers again")
            self._store_failing = None
        store_ok = store_ok and self.store_health.failing is None
        return {"config": True, "store": store_ok, "intake": self._intake_open}

    def readiness_reasons(self) -> dict[str, str]:
        """Why the checks of the last :meth:`readiness` that failed did."""
        reasons: dict[str, str] = {}
        if self._store_failing is not None:
            reasons["store"] = self._store_failing
        elif self.store_health.failing is not None:
            reasons["store"] = self.store_health.failing
        if not self._intake_open:
            reasons["intake"] = "the controller is not running"
        return reasons

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> LineService:
        if self._owns_store:
            await self._store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.journal.flush()  # order events still waiting: one try each
        finally:
            if self._owns_store:
                await self._store.close()

    async def run(self) -> None:
        """Run until cancelled."""
        await self.hold.restore()
        if self.feed is not None:
            await self.feed.start()
        resumed = await self.orchestrator.resume()
        if self.feed is not None:
            await self.feed.resumed(resumed)
        log.info(
            "controller started",
            extra={"line": self.config.line.id, "time_scale": self.clock.time_scale},
        )
        self._intake_open = True
        try:
            await self._run_tasks()
        finally:
            self._intake_open = False

    async def _run_tasks(self) -> None:
        orch = self.orchestrator
        webhooks = webhook_dispatcher(self.config, self.store, self.clock, self.metrics)
        # every task that touches the store: a call the store cannot take now waits and is
        # tried again (``self.store``); one it refuses outright ends only that round
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            **self.events.consumers(),
            "orchestrator.dispatch": orch.dispatch_loop,
            "orchestrator.sort-history": orch.history_loop,
            "orchestrator.cancels": orch.cancel_loop,
            "orchestrator.case-picks": orch.case_loop,
            "orchestrator.replenishment": orch.replenish_loop,
            "orchestrator.robot-watch": orch.watch_loop,
            "orchestrator.deadlines": orch.deadline_loop,
            "metrics.gauges": self._gauges,
            "webhooks": webhooks.run,
            "store.journal": self.journal.run,
            "store.probe": lambda: self.store_health.watch(self._store.probe_write),
        }
        if orch.asrs is not None:
            loops["asrs.commands"] = orch.asrs.run
        if self.feed is not None:
            loops["orders.feed"] = self.feed.run
        async with asyncio.TaskGroup() as tg:
            tg.create_task(orch.fleet.run(self.events.robots), name="robots")
            tg.create_task(self.sorter.run(self.events.conveyor), name="conveyor.opcua")
            if self.cranes is not None:
                tg.create_task(self.cranes.run(self.events.cranes), name="asrs.opcua")
            for name, loop in loops.items():
                tg.create_task(self._surviving(name, loop), name=name)

    async def _surviving(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run ``loop``; when a store error ends it (the store refused a call: unavailability
        never gets here, it is waited out), log it and start the loop again after a wait."""
        backoff = self.store_health.backoff()
        while True:
            try:
                await loop()
                return
            except Fenced:
                raise  # another controller took the line over: this one stops
            except StoreError as exc:
                log.error(
                    "task ended by a store error; started again",
                    extra={"task": name, "error": str(exc)},
                    exc_info=exc,
                )
            await self.store_health.sleep(backoff.next_delay())

    async def _gauges(self) -> None:
        """Refresh gauges that are read from state rather than counted."""
        gauges = RobotGauges(self.metrics)
        while True:
            self.store_health.backlog_changed()
            counts = await self.store.count_by_status()
            self._order_counts, self._counted_at = counts, self.clock.utcnow()
            for status in ACTIVE:
                self.metrics.orders_by_status.labels(status.value).set(counts.get(status, 0))
            conveyor = self.sorter.snapshot()
            for state in PACKML_STATES:
                self.metrics.conveyor_state.labels(conveyor.conveyor_id, state).set(
                    1 if conveyor.state == state else 0
                )
            robots = list(self.fleet.snapshot().values())
            available = sum(1 for r in robots if r.available)
            self.metrics.robots.labels("available").set(available)
            self.metrics.robots.labels("unavailable").set(len(robots) - available)
            gauges.publish(robots, self.orchestrator.flight.busy_robots)
            await asyncio.sleep(2.0)

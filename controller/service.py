"""The long-running controller: one task group, named tasks, explicit start and stop.

``LineService`` owns the order store, the device adapters and the orchestrator, and is the
backend the HTTP API reads from. It does not know whether its devices are simulators.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from types import TracebackType
from typing import Any

from controller.clock import Clock
from controller.config.model import LineConfig
from controller.inventory import Inventory
from controller.line_hold import HoldOutcome, LineHoldControl
from controller.line_hold import view as hold_view
from controller.metrics import Metrics
from controller.orchestrator import Orchestrator
from controller.orders import ACTIVE, OrderRecord
from controller.replenishment import Replenishment
from controller.stations import Stations
from controller.store import open_store
from controller.store.base import StoreError
from controller.store.inventory import LineStore
from controller.tote_returns import ToteReturns
from controller.webhooks import webhook_dispatcher
from devices import base as dev
from devices.check import DeviceReport, check_line
from devices.opcua import OpcUaSorter
from devices.opcua.cranes import OpcUaCranes
from devices.vda5050.master import VdaMasterControl

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
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.store: LineStore = store or open_store(config.store)
        self.fleet = VdaMasterControl(
            config, clock, self.metrics, config.mqtt.url, interface_name=interface_name
        )
        self.sorter = OpcUaSorter(config, clock, self.metrics)
        # the AS/RS cranes, when the line has any
        self.cranes: OpcUaCranes | None = (
            OpcUaCranes(config, clock, self.metrics) if config.asrs.aisles else None
        )
        self.orchestrator = Orchestrator(
            config, clock, self.store, self.metrics, self.fleet, self.sorter, self.cranes
        )
        self._robot_events: asyncio.Queue[dev.DeviceEvent] = asyncio.Queue()
        self._conveyor_events: asyncio.Queue[dev.DeviceEvent] = asyncio.Queue()
        self._intake_open = False  # run() is consuming what the API accepts
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
        )

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

    def order_accepted(self, order: OrderRecord) -> None:
        self.orchestrator.order_accepted(order)

    def order_changed(self, order: OrderRecord) -> None:
        self.orchestrator.order_changed(order)

    def cancel_requested(self, order: OrderRecord) -> None:
        self.orchestrator.cancel_requested(order)

    def line_view(self) -> dict[str, Any]:
        conveyor = self.sorter.snapshot()
        busy = self.orchestrator.flight.busy_robots
        asrs = self.orchestrator.asrs
        work = asrs.snapshot() if asrs is not None else {}
        return {
            "line_id": self.config.line.id,
            "conveyors": [
                {
                    **dataclasses.asdict(conveyor),
                    "available": conveyor.connected and conveyor.state == "Execute",
                }
            ],
            "robots": [
                {
                    **dataclasses.asdict(r),
                    "busy": r.serial in busy,
                    "errors": list(r.errors),
                    "factsheet_problems": list(r.factsheet_problems),
                    "traffic": self.orchestrator.traffic.view(r.serial),
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
            "orders_queued": len(self.orchestrator.dispatcher.pending),
            "held": hold_view(self.hold.hold),
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
        the order store answers within ``STORE_PING_SECONDS`` (``store``), and the controller
        is running and takes what the API accepts (``intake``). Device outages are not here:
        orders are taken and wait while a device is down; they show in ``GET /v1/line`` and
        the metrics."""
        try:
            async with asyncio.timeout(STORE_PING_SECONDS):
                await self.store.ping()
            store_ok = True
        except (TimeoutError, StoreError) as exc:
            if self._store_failing is None:
                log.warning("order store does not answer", extra={"error": str(exc) or "timeout"})
            self._store_failing = str(exc)
            store_ok = False
        else:
            if self._store_failing is not None:
                log.warning("order store answers again")
            self._store_failing = None
        return {"config": True, "store": store_ok, "intake": self._intake_open}

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> LineService:
        await self.store.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.store.close()

    async def run(self) -> None:
        """Run until cancelled."""
        await self.hold.restore()
        await self.orchestrator.resume()
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
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.orchestrator.fleet.run(self._robot_events), name="robots")
            tg.create_task(self.sorter.run(self._conveyor_events), name="conveyor.opcua")
            if self.cranes is not None:
                tg.create_task(self.cranes.run(self._conveyor_events), name="asrs.opcua")
            if self.orchestrator.asrs is not None:
                tg.create_task(self.orchestrator.asrs.run(), name="asrs.commands")
            tg.create_task(
                self.orchestrator.consume(self._robot_events), name="orchestrator.robot-events"
            )
            tg.create_task(
                self.orchestrator.consume(self._conveyor_events),
                name="orchestrator.conveyor-events",
            )
            tg.create_task(self.orchestrator.dispatch_loop(), name="orchestrator.dispatch")
            tg.create_task(self.orchestrator.history_loop(), name="orchestrator.sort-history")
            tg.create_task(self.orchestrator.cancel_loop(), name="orchestrator.cancels")
            tg.create_task(self.orchestrator.case_loop(), name="orchestrator.case-picks")
            tg.create_task(self.orchestrator.replenish_loop(), name="orchestrator.replenishment")
            tg.create_task(self.orchestrator.watch_loop(), name="orchestrator.robot-watch")
            tg.create_task(self._gauges(), name="metrics.gauges")
            tg.create_task(
                webhook_dispatcher(self.config, self.store, self.clock, self.metrics).run(),
                name="webhooks",
            )

    async def _gauges(self) -> None:
        """Refresh gauges that are read from state rather than counted."""
        while True:
            counts = await self.store.count_by_status()
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
            self.metrics.set_robots(robots, self.orchestrator.flight.busy_robots)
            await asyncio.sleep(2.0)

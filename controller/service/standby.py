"""The standby controller as the HTTP API sees it, and the switch to the active one.

A controller of a line with a standby serves its API from the start, before it knows its role.
While it waits as the standby (:class:`StandbyBackend`) it reads from the shared store (orders,
their history and events, the audit log, stock and its ledger) and accepts orders, changes and
cancel requests into it: the active controller picks them up from the store's event feed. What
only the active controller does (operator commands, the stations' work, anything that needs the
line's live state) raises :class:`~controller.store.lease.NotActive`, which the API answers with
a 503 naming the active controller and where its API listens.

When the standby wins the lease, :class:`RoleSwitch` turns the API over to the line service it
then starts; the API itself is not restarted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from controller.asrs.replenishment import Replenishment
from controller.asrs.returns import ToteReturns
from controller.conveyor.reject_totes import RejectTotes
from controller.line.inventory import Inventory
from controller.line.stations import Stations
from controller.orders.model import OrderRecord
from controller.service.hold import HoldOutcome
from controller.service.lease_keeper import LeaseKeeper
from controller.store.base import StoreError
from controller.store.inventory import Applied, LineStore
from controller.store.lease import NotActive
from devices.check import DeviceReport, check_line
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

STORE_PING_SECONDS = 2.0


class StandbyInventory(Inventory):
    """Stock and its ledger read from the store; a count is the active controller's (its
    mirror of the stock must see every change)."""

    def __init__(
        self,
        config: LineConfig,
        store: LineStore,
        clock: Clock,
        metrics: Metrics,
        not_active: Callable[[], NotActive],
    ) -> None:
        super().__init__(config, store, clock, metrics)
        self._not_active = not_active

    async def count(
        self,
        location: str,
        sku: str,
        counted: int,
        who: str,
        *,
        tote: str | None = None,
        ref: str | None = None,
        station: str | None = None,
        order_id: str | None = None,
    ) -> Applied:
        raise self._not_active()


class StandbyBackend:
    """The API's backend while this controller is the standby."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        store: LineStore,
        metrics: Metrics,
        keeper: LeaseKeeper,
    ) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self._keeper = keeper
        # stock and its ledger read from the store (never opened: opening writes)
        self.inventory = StandbyInventory(config, store, clock, metrics, self._not_active)
        self._store_failing: str | None = None

    def _not_active(self) -> NotActive:
        return NotActive(self._keeper.document()["active"])

    # --- the active controller's parts: not here --------------------------------------------

    @property
    def stations(self) -> Stations:
        raise self._not_active()

    @property
    def tote_returns(self) -> ToteReturns:
        raise self._not_active()

    @property
    def replenishment(self) -> Replenishment:
        raise self._not_active()

    @property
    def reject_totes(self) -> RejectTotes:
        raise self._not_active()

    # --- orders: the active controller reads them from the store's event feed ---------------

    def order_accepted(self, order: OrderRecord) -> None:
        pass

    def order_changed(self, order: OrderRecord) -> None:
        pass

    def cancel_requested(self, order: OrderRecord) -> None:
        pass

    # --- views ------------------------------------------------------------------------------

    def controller(self) -> dict[str, Any]:
        return self._keeper.document()

    def line_view(self) -> dict[str, Any]:
        """The standby commands no device: the line's live state is the active controller's."""
        return {
            "line_id": self.config.line.id,
            "at": self.clock.utcnow(),
            "conveyors": [],
            "cranes": [],
            "robots": [],
            "orders_queued": 0,
            "deadlines": {},
            "held": None,
            "store_hold": None,
            "controller": self.controller(),
        }

    # --- operator commands: the active controller's -------------------------------------------

    async def robot_command(self, serial: str, command: str) -> str:
        raise self._not_active()

    async def conveyor_command(self, conveyor_id: str, command: str) -> str:
        raise self._not_active()

    async def line_hold(self, who: str) -> HoldOutcome:
        raise self._not_active()

    async def line_resume(self, who: str) -> HoldOutcome:
        raise self._not_active()

    async def conveyor_jog(
        self, conveyor_id: str, zone_id: str, speed: float, seconds: float
    ) -> None:
        raise self._not_active()

    async def devices_check(self, wait: float, connect_timeout: float) -> list[DeviceReport]:
        """Browsing the devices commands nothing: the standby may check them too."""
        return await check_line(self.config, wait, connect_timeout)

    # --- readiness ----------------------------------------------------------------------------

    async def readiness(self) -> dict[str, bool]:
        """``store``: the store answers; ``intake``: an active controller holds the lease, so
        the orders this API takes are served."""
        try:
            async with asyncio.timeout(STORE_PING_SECONDS):
                await self.store.ping()
        except (TimeoutError, StoreError) as exc:
            self._store_failing = str(exc) or f"does not answer within {STORE_PING_SECONDS} s"
        else:
            self._store_failing = None
        holder = self._keeper.holder
        intake = holder is not None and holder.live
        return {"config": True, "store": self._store_failing is None, "intake": intake}

    def readiness_reasons(self) -> dict[str, str]:
        reasons: dict[str, str] = {}
        if self._store_failing is not None:
            reasons["store"] = self._store_failing
        holder = self._keeper.holder
        if holder is None or not holder.live:
            reasons["intake"] = "no controller of the line holds its lease: none is active"
        return reasons


class RoleSwitch:
    """The backend the API holds: the standby's until :meth:`promote`, then the line service.

    Attribute reads go to the current backend, so a request sees one or the other, never a mix
    within one attribute."""

    def __init__(self, standby: StandbyBackend) -> None:
        self._current: Any = standby

    def promote(self, service: Any) -> None:
        self._current = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current, name)

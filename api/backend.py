"""What the HTTP API needs from the service it fronts.

The API owns no state of its own: :func:`api.app.create_app` is given an :class:`ApiBackend`,
keeps it in the lifespan state, and every route reads it from ``request.state``.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

from fastapi import Request

from api.line_feed import LineFeed
from controller.asrs.replenishment import Replenishment
from controller.asrs.returns import ToteReturns
from controller.conveyor.reject_totes import RejectTotes
from controller.line.inventory import Inventory
from controller.line.stations import Stations
from controller.orders.model import OrderRecord
from controller.service.hold import HoldOutcome
from controller.store.inventory import LineStore
from devices.check import DeviceReport
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics


class ApiBackend(Protocol):
    """The controller as the API sees it (plain attributes satisfy the properties)."""

    @property
    def config(self) -> LineConfig: ...

    @property
    def store(self) -> LineStore: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def stations(self) -> Stations:
        """Open B2B station tasks and their verification."""
        ...

    @property
    def tote_returns(self) -> ToteReturns:
        """AS/RS totes at a station or chute waiting to go back to the rack."""
        ...

    @property
    def replenishment(self) -> Replenishment:
        """Robot pick locations topped up from AS/RS totes."""
        ...

    @property
    def inventory(self) -> Inventory:
        """The live inventory: stock, ledger, counts."""
        ...

    @property
    def reject_totes(self) -> RejectTotes:
        """Totes in the reject chute whose picked units are off the books."""
        ...

    def order_accepted(self, order: OrderRecord) -> None:
        """A new order is durable in the store; wake whatever releases orders."""
        ...

    def order_changed(self, order: OrderRecord) -> None:
        """Priority or due time of a not yet released order changed (PATCH); re-plan."""
        ...

    def cancel_requested(self, order: OrderRecord) -> None:
        """A cancel request is durable in the order's history; the controller now cancels
        what is in flight and records the outcome (``cancelled``) as an event."""
        ...

    def line_view(self) -> dict[str, Any]:
        """The line now: conveyors (PackML state, chutes) and robots, as plain data."""
        ...

    async def robot_command(self, serial: str, command: str) -> str:
        """Pause or resume a robot; returns the instant action id (DeviceError if it can't)."""
        ...

    async def conveyor_command(self, conveyor_id: str, command: str) -> str:
        """Send a PackML command (``Start``, ``Hold``, ...) to a conveyor; returns its state
        afterwards. CommandRejected if the state machine refuses it, DeviceUnavailable when
        the conveyor is not connected."""
        ...

    async def line_hold(self, who: str) -> HoldOutcome:
        """Hold the line for ``who``: conveyor Hold, robots paused, no order released;
        idempotent (each device that is not held yet is commanded again)."""
        ...

    async def line_resume(self, who: str) -> HoldOutcome:
        """Resume a held line: conveyor Unhold, robots' pause ended, orders released again."""
        ...

    async def conveyor_jog(
        self, conveyor_id: str, zone_id: str, speed: float, seconds: float
    ) -> None:
        """Run one zone at ``speed`` (m/s) for ``seconds``. CommandRejected when the conveyor
        refuses (unknown zone, unit in Execute, zone jammed, out of range), DeviceUnavailable
        when it is not connected."""
        ...

    async def devices_check(self, wait: float, connect_timeout: float) -> list[DeviceReport]:
        """Browse every configured device (see devices.check); outcomes are reports."""
        ...

    def controller(self) -> dict[str, Any]:
        """This controller's role: ``role`` (``active`` or ``standby``), ``failover`` (the
        line has a standby), ``instance``, ``term`` (the lease's; None without a standby) and
        ``active`` (the active controller: ``instance``, ``term``, ``api_url``, ``live``)."""
        ...

    async def readiness(self) -> dict[str, bool]:
        """Whether the service can take orders, per check: ``config``, ``store``, ``intake``
        (device outages are not readiness: they show in ``line_view`` and the metrics)."""
        ...

    def readiness_reasons(self) -> dict[str, str]:
        """Why the checks that failed in the last ``readiness`` did, by check name (a check
        without a reason is left out)."""
        ...


class AppState(TypedDict):
    """The lifespan state the API's routes read."""

    backend: ApiBackend
    line_feed: LineFeed  # the live line view every stream shares


def get_backend(request: Request) -> ApiBackend:
    """The backend from the lifespan state (a FastAPI dependency)."""
    try:
        backend: ApiBackend = request.state.backend
    except AttributeError:
        raise RuntimeError(
            "the API's lifespan has not run: serve the app with a server that runs lifespan"
        ) from None
    return backend


async def backend_dependency(request: Request) -> ApiBackend:
    """:func:`get_backend` as a coroutine: FastAPI runs a plain-function dependency in a worker
    thread on every request, a coroutine on the event loop; use ``Depends(backend_dependency)``."""
    return get_backend(request)

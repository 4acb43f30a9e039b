"""A small API backend over a real SQLite store, and clients that run the app's lifespan."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api import create_app
from controller.asrs.case_picks.picks import CasePicks
from controller.asrs.replenishment import Replenishment
from controller.asrs.returns import ToteReturns
from controller.conveyor.reject_totes import RejectTotes
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.stations import Stations
from controller.line.trips import InFlight
from controller.orders.model import OrderRecord
from controller.service.hold import HoldOutcome, LineHoldControl
from controller.service.hold import view as hold_view
from controller.store.sqlite.store import SqliteOrderStore
from devices.base import ConveyorSnapshot, RobotPosition, RobotSnapshot, positions_of, snapshots_in
from devices.check import DeviceReport, Finding, Status
from devices.errors import CommandRejected, DeviceUnavailable
from kernel.clock import ManualClock
from kernel.config.model import ApiConfig, ApiToken, LineConfig
from kernel.metrics import Metrics

WRITER = "writer-token-0123456789"
READER = "reader-token-0123456789"
ADMIN = "admin-token-0123456789ab"
ADMIN_NAME = "commissioning"


class OfflineConveyor:
    """A conveyor that is not connected (for the line hold)."""

    async def command(self, name: str) -> None:
        raise DeviceUnavailable("conveyor C1 is not connected")

    def snapshot(self) -> ConveyorSnapshot:
        return ConveyorSnapshot(conveyor_id="C1", connected=False, state="Unknown")


class NoRobots:
    def robot_positions(self) -> dict[str, RobotPosition]:
        return positions_of(self.snapshot())

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, RobotSnapshot]:
        return snapshots_in(self.snapshot(), serials)

    def snapshot(self) -> dict[str, RobotSnapshot]:
        return {}


class Release:
    held = False
    store_held: str | None = None

    def wake(self) -> None:
        pass


class FakeLine:
    """An ApiBackend: a real store, the reference line, and a record of accepted orders."""

    def __init__(self, config: LineConfig, store: SqliteOrderStore, clock: ManualClock) -> None:
        self.config = config
        self.store = store
        self.metrics = Metrics()
        self.clock = clock
        self.accepted: list[OrderRecord] = []
        self.changed: list[OrderRecord] = []
        self.cancels: list[OrderRecord] = []
        self.ready: dict[str, bool] = {"config": True, "store": True, "intake": True}
        self.ready_reasons: dict[str, str] = {}
        history = History(store, clock, self.metrics)
        self.inventory = Inventory(config, store, clock, self.metrics)
        flight = InFlight()
        self.case_picks = CasePicks(config, history, self.inventory, flight, clock, self.metrics)
        self.stations = Stations(history, self.case_picks.settle)
        self.replenishment = Replenishment(config, self.inventory, flight, clock, self.metrics)
        self.tote_returns = ToteReturns(self.inventory, clock, self.metrics)
        self.reject_totes = RejectTotes(config, store, self.inventory, clock, self.metrics)
        self.hold = LineHoldControl(
            clock, store, OfflineConveyor(), NoRobots(), self.robot_command, Release()
        )
        self.jogs: list[tuple[str, str, float, float]] = []
        self.check_reports: list[DeviceReport] = [
            DeviceReport("conveyor C1", "opc.tcp://127.0.0.1:4840", (Finding("C1", Status.FOUND),))
        ]

    def order_accepted(self, order: OrderRecord) -> None:
        self.accepted.append(order)

    def order_changed(self, order: OrderRecord) -> None:
        self.changed.append(order)

    def cancel_requested(self, order: OrderRecord) -> None:
        self.cancels.append(order)

    async def readiness(self) -> dict[str, bool]:
        return dict(self.ready)

    def readiness_reasons(self) -> dict[str, str]:
        return dict(self.ready_reasons)

    def line_view(self) -> dict[str, Any]:
        return {
            "line_id": self.config.line.id,
            "conveyors": [
                {
                    "conveyor_id": "C1",
                    "connected": False,
                    "state": "Unknown",
                    "available": False,
                    "chutes": [],
                }
            ],
            "robots": [],
            "orders_queued": len(self.accepted),
            "held": hold_view(self.hold.hold),
            "controller": self.controller(),
        }

    def controller(self) -> dict[str, Any]:
        return {"role": "active", "failover": False, "instance": None, "term": None, "active": None}

    async def robot_command(self, serial: str, command: str) -> str:
        raise DeviceUnavailable(f"robot {serial} is not connected")

    async def conveyor_command(self, conveyor_id: str, command: str) -> str:
        raise DeviceUnavailable(f"conveyor {conveyor_id} is not connected")

    async def line_hold(self, who: str) -> HoldOutcome:
        return await self.hold.hold_line(who)

    async def line_resume(self, who: str) -> HoldOutcome:
        return await self.hold.resume_line(who)

    async def conveyor_jog(
        self, conveyor_id: str, zone_id: str, speed: float, seconds: float
    ) -> None:
        if speed > 1.0:
            raise CommandRejected(f"speed {speed} m/s is beyond the zone's jog limit 1.0 m/s")
        self.jogs.append((conveyor_id, zone_id, speed, seconds))

    async def devices_check(self, wait: float, connect_timeout: float) -> list[DeviceReport]:
        return list(self.check_reports)


def line_with_api(reference_line: LineConfig, **api: Any) -> LineConfig:
    settings: dict[str, Any] = {
        "tokens": [
            ApiToken(token=WRITER, scopes=["orders:write"]),
            ApiToken(token=READER, scopes=["orders:read"]),
            ApiToken(token=ADMIN, name=ADMIN_NAME),
        ],
        "reads_open": False,
        "max_body_bytes": 16 * 1024,
    }
    settings.update(api)
    return reference_line.with_overrides(api=ApiConfig(**settings))


@pytest.fixture
async def backend(
    tmp_path: Path, reference_line: LineConfig, manual_clock: ManualClock
) -> AsyncIterator[FakeLine]:
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    try:
        line = FakeLine(line_with_api(reference_line), store, manual_clock)
        await line.inventory.open()
        yield line
    finally:
        await store.close()


@asynccontextmanager
async def asgi_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client calling ``app`` in-process, with the app's lifespan running around it."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://linectl.test") as c:
            yield c


@asynccontextmanager
async def uvicorn_server(app: FastAPI) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free loopback port; yields the base URL."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(server.serve(sockets=[sock]), name="uvicorn")
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True
    finally:
        sock.close()


@pytest.fixture
async def client(backend: FakeLine) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(backend)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b2c_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "b2c",
        "priority": 5,
        "due_at": "2026-01-01T16:00:00Z",
        "destination": "DHL",
        "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 2, "uom": "each"}],
    }
    body.update(changes)
    return body


def b2b_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "b2b",
        "priority": 3,
        "due_at": "2026-01-02T10:00:00Z",
        "deliver_from": "2026-01-01T06:00:00Z",
        "deliver_until": "2026-01-02T10:00:00Z",
        "destination": "CUST-ACME",
        "lines": [
            {"line_id": "10", "sku": "SKU-0003", "quantity": 2, "uom": "case"},
            {"line_id": "20", "sku": "SKU-0007", "quantity": 24, "uom": "each"},
        ],
        "handling": {"label_template": "acme-v2", "packaging": "carton-40"},
    }
    body.update(changes)
    return body

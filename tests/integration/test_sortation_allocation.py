"""Dynamic B2B chute allocation: the controller's sort path against the conveyor simulator.

A real asyncua conveyor server, the real OPC UA sorter adapter, a real SQLite order store and
the controller's sortation and station pieces: every open B2B order gets a value-added station
of its own, and the station is free for the next order once its order completed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from controller.conveyor.sorting import Sortation
from controller.line import topology
from controller.line.history import History
from controller.line.stations import Stations
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderIn, OrderStatus
from controller.service.orchestrator import Orchestrator
from controller.store.sqlite.store import SqliteOrderStore
from devices.base import (
    ConveyorAvailability,
    DeviceEvent,
    ItemDiverted,
    ItemScanned,
    RobotFleet,
)
from devices.opcua import OpcUaSorter
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing.verification import Counted
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator

pytestmark = pytest.mark.integration

WAIT = 10.0  # wall seconds; a loop takes 18 line seconds = 0.18 s at time scale 100


def waiting_line(line: LineConfig) -> LineConfig:
    """The reference line, but a B2B tote with no free station waits on the loop (no sharing),
    long enough for the test to free one."""
    sorter = line.conveyor.sorter
    alloc = sorter.b2b_allocation.model_copy(update={"overflow": "recirculate"})
    sorter = sorter.model_copy(update={"b2b_allocation": alloc, "max_passes": 20})
    return line.model_copy(update={"conveyor": line.conveyor.model_copy(update={"sorter": sorter})})


def b2b_order(destination: str) -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2b",
            "due_at": "2026-03-02T10:00:00Z",
            "deliver_from": "2026-03-01T06:00:00Z",
            "deliver_until": "2026-03-02T09:00:00Z",
            "destination": destination,
            "lines": [{"line_id": "10", "sku": "SKU-0003", "quantity": 2}],
        }
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``WAIT`` wall seconds."""
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        await asyncio.sleep(0.02)


@dataclass
class Controller:
    sim: ConveyorSimulator
    store: SqliteOrderStore
    history: History
    flight: InFlight
    sortation: Sortation
    stations: Stations
    metrics: Metrics

    async def on_conveyor(self, order_id: str, destination: str) -> str:
        """Create a B2B order whose tote a robot has just dropped at the first zone."""
        now = datetime.now(UTC)
        _, rec = await self.store.create_order(order_id, b2b_order(destination), now)
        await self.history.record(
            rec, "dropped", OrderStatus.IN_TRANSIT, step="on_conveyor", picked={"10": 2}
        )
        tote = f"TOTE-{order_id}"
        trip = Trip(f"{order_id}-1", order_id, "R1", tote, (), "IND1", now, destination, True)
        trip.drop()
        self.flight.start(f"job-{order_id}", [trip], {})
        await self.sim.induct(tote, "Z01")
        return tote

    async def status(self, order_id: str) -> OrderStatus | None:
        rec = await self.history.get(order_id)
        return rec.status if rec is not None else None

    async def events(self, order_id: str, kind: str) -> list[dict[str, object]]:
        return [e.data for e in await self.store.history(order_id) if e.type == kind]

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


async def consume(sortation: Sortation, events: asyncio.Queue[DeviceEvent]) -> None:
    """The controller's event loop, for the conveyor's events only."""
    while True:
        event = await events.get()
        if isinstance(event, ItemScanned):
            await sortation.scanned(event)
        elif isinstance(event, ItemDiverted):
            sortation.diverted(event)


@pytest.fixture
async def controller(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Controller]:
    config = waiting_line(reference_line)
    clock = ScaledClock(100)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    metrics = Metrics()
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    try:
        async with ConveyorSimulator(config, clock, endpoint) as sim:
            sorter = OpcUaSorter(config, clock, metrics, endpoint)
            history = History(store, clock, metrics)
            stations = Stations(history)
            flight = InFlight()
            plan = topology.sort_plan(config)
            sortation = Sortation(plan, history, metrics, sorter, flight, stations)
            history.ended.append(sortation.release)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(sorter.run(events), name="conveyor[C1].run")]
                async with asyncio.timeout(WAIT):
                    while not isinstance(ev := await events.get(), ConveyorAvailability):
                        pass
                assert ev.available
                tasks.append(tg.create_task(consume(sortation, events), name="conveyor.sort"))
                tasks.append(tg.create_task(sortation.history_loop(), name="sortation.history"))
                yield Controller(sim, store, history, flight, sortation, stations, metrics)
                for task in tasks:
                    task.cancel()
    finally:
        await store.close()


async def test_b2b_orders_get_their_own_station_which_is_reused_once_freed(
    controller: Controller,
) -> None:
    c = controller
    await c.on_conveyor("B-1", "CUST-ACME")
    await c.on_conveyor("B-2", "CUST-ACME")

    async def both_at_stations() -> bool:
        # the order is recorded sorted first, then its station task opens: wait for both
        sorted_ = [await c.status("B-1"), await c.status("B-2")] == [OrderStatus.SORTED] * 2
        return sorted_ and all(c.stations.at(s) for s in ("VAS-1", "VAS-2"))

    await eventually(both_at_stations, "both B2B orders sorted to a station")
    # the first takes its customer's station, the second a station of its own
    assert c.sortation.allocations == {"B-1": "VAS-1", "B-2": "VAS-2"}
    assert [t.order_id for t in c.stations.at("VAS-1")] == ["B-1"]
    assert [t.order_id for t in c.stations.at("VAS-2")] == ["B-2"]
    assert [e["chute"] for e in await c.events("B-1", "chute_allocated")] == ["VAS-1"]
    assert [e["chute"] for e in await c.events("B-2", "chute_allocated")] == ["VAS-2"]
    assert c.sample("linectl_b2b_chutes_allocated") == 2

    # a third order finds no free station: its tote rides round and waits
    await c.on_conveyor("B-3", "CUST-NEW")

    async def waiting() -> bool:
        return any(e["reason"] == "no_free_chute" for e in await c.events("B-3", "scanned"))

    await eventually(waiting, "the third order's tote recirculating for want of a station")
    assert await c.status("B-3") is OrderStatus.IN_TRANSIT

    # the first order is verified and completes: its station is free and goes to the third
    result = await c.stations.verify("VAS-1", "B-1", [Counted("10", "SKU-0003", 2)], "op-1")
    assert result.ok and result.order.status is OrderStatus.COMPLETED
    assert "B-1" not in c.sortation.allocations

    async def third_at_station() -> bool:
        return await c.status("B-3") is OrderStatus.SORTED and bool(c.stations.at("VAS-1"))

    await eventually(third_at_station, "the third order sorted to the freed station")
    assert c.sortation.allocations == {"B-2": "VAS-2", "B-3": "VAS-1"}
    assert [t.order_id for t in c.stations.at("VAS-1")] == ["B-3"]
    assert [e["chute"] for e in await c.events("B-3", "chute_allocated")] == ["VAS-1"]
    assert c.sample("linectl_b2b_chute_allocations_total") == 3
    assert c.sample("linectl_b2b_chute_releases_total", status="completed") == 1
    assert c.sample("linectl_b2b_chutes_allocated") == 2


async def test_restart_restores_the_station_of_an_order_still_there_and_cancel_frees_it(
    reference_line: LineConfig, tmp_path: Path
) -> None:
    clock = ScaledClock(100)
    metrics = Metrics()
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    try:
        history = History(store, clock, metrics)
        now = datetime.now(UTC)
        for order_id, chute, allocated in (("B-7", "VAS-2", True), ("B-8", "VAS-1", False)):
            _, rec = await store.create_order(order_id, b2b_order("CUST-NEW"), now)
            rec = await history.record(rec, "dropped", OrderStatus.IN_TRANSIT, picked={"10": 2})
            if allocated:
                rec = await history.record(rec, "chute_allocated", data={"chute": chute})
            where = {"chute": chute, "tote": f"TOTE-{order_id}"}
            await history.record(rec, "sorted", OrderStatus.SORTED, step="at_station", data=where)

        # the controller starts again (no conveyor needed to read back what it had)
        endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
        sorter = OpcUaSorter(reference_line, clock, metrics, endpoint)
        fleet = cast(RobotFleet, object())  # never called: no robot work in this test
        orch = Orchestrator(reference_line, clock, store, metrics, fleet, sorter)
        await orch.resume()
        assert orch.sortation.allocations == {"B-7": "VAS-2"}  # B-8 only shared a station
        assert {t.order_id for t in orch.stations.at("VAS-2")} == {"B-7"}
        assert metrics.registry.get_sample_value("linectl_b2b_chutes_allocated") == 1

        await orch.cancel("B-7")
        cancelled = await store.get_order("B-7")
        assert cancelled is not None and cancelled.status is OrderStatus.CANCELLED
        assert orch.sortation.allocations == {}
        released = {"status": "cancelled"}
        assert metrics.registry.get_sample_value("linectl_b2b_chute_releases_total", released) == 1
    finally:
        await store.close()

"""What the B2B case pick tests (``test_case_picks_*``, over controller/asrs/case_picks/picks.py)
share: the line with SKUs in cases and rack totes to take them from, the ``setup`` fixture wiring
CasePicks to real AsrsFlows, Inventory and History over one SQLite file (only the cranes are a
recording stand-in, tests/unit/test_asrs_flows_unit), and the steps that bring an order's totes
out and to a station."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from controller.asrs.case_picks.picks import CasePicks
from controller.asrs.case_picks.release import TotePlan
from controller.asrs.flows import AsrsFlows
from controller.asrs.returns import ToteReturns
from controller.line.history import History
from controller.line.inventory import Inventory
from controller.line.stations import StationTask
from controller.line.trips import InFlight, Leg, Trip
from controller.orders.model import OrderIn, OrderLine, OrderRecord, OrderType
from controller.orders.waiting import AsrsStockShort
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import AsrsTote, LineConfig, Sku, StockEntry
from kernel.metrics import Metrics
from tests.unit.test_asrs_flows_unit import RecordingCranes

Uom = Literal["each", "case"]
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DUE = START + timedelta(hours=4)
WINDOW = (START - timedelta(hours=1), START + timedelta(hours=6))


def case_line(reference_line: LineConfig) -> LineConfig:
    """SKU-A in cases of 6: three A1 rack totes of 12, 18 and 30 units and 50 loose units;
    SKU-B (cases of 1): one A2 tote of 4; SKU-E only loose (a robot picks it)."""
    return reference_line.model_copy(
        update={
            "skus": [
                Sku(sku="SKU-A", case_quantity=6),
                Sku(sku="SKU-B", case_quantity=1),
                Sku(sku="SKU-E"),
            ],
            "stock": [
                StockEntry(location="L01A", sku="SKU-A", quantity=50),
                StockEntry(location="L01B", sku="SKU-E", quantity=100),
            ],
            "asrs": reference_line.asrs.model_copy(
                update={
                    "totes": [
                        AsrsTote(tote="T-12", location="A1-L-01-01", sku="SKU-A", quantity=12),
                        AsrsTote(tote="T-18", location="A1-L-01-02", sku="SKU-A", quantity=18),
                        AsrsTote(tote="T-30", location="A1-L-01-03", sku="SKU-A", quantity=30),
                        AsrsTote(tote="T-B", location="A2-L-01-01", sku="SKU-B", quantity=4),
                    ]
                }
            ),
        }
    )


@dataclass
class Setup:
    cp: CasePicks
    flows: AsrsFlows
    cranes: RecordingCranes
    store: SqliteOrderStore
    inventory: Inventory
    history: History
    flight: InFlight
    clock: ManualClock
    metrics: Metrics
    config: LineConfig

    def fresh(self) -> CasePicks:
        """The case picks of a restarted controller (nothing in memory, same store)."""
        cp = CasePicks(
            self.config, self.history, self.inventory, InFlight(), self.clock, self.metrics
        )
        cp.asrs = self.flows
        return cp

    async def order(self, order_id: str, *lines: tuple[str, str, int, Uom]) -> OrderRecord:
        body = OrderIn(
            type=OrderType.B2B,
            priority=3,
            due_at=DUE,
            deliver_from=WINDOW[0],
            deliver_until=WINDOW[1],
            destination="CUST-ACME",
            lines=[OrderLine(line_id=i, sku=s, quantity=q, uom=u) for i, s, q, u in lines],
        )
        _, rec = await self.store.create_order(order_id, body, self.clock.utcnow())
        return rec

    async def rec(self, order_id: str) -> OrderRecord:
        rec = await self.history.get(order_id)
        assert rec is not None
        return rec

    async def steps(self, order_id: str) -> list[str]:
        return [e.type for e in await self.store.history(order_id)]

    async def crane_done(self) -> str:
        """Plan the AS/RS once and finish the retrieve sent; returns its tote."""
        await self.flows.plan_once()
        return await self.finish_last()

    async def finish_last(self) -> str:
        """The crane finishes the last retrieve sent to it; returns its tote."""
        kind, aisle, command_id, tote, location = self.cranes.calls[-1][:5]
        assert kind == "retrieve"
        await self.flows.handle(
            dev.CraneCommandFinished(
                crane="CR1",
                aisle=aisle,
                command_id=command_id,
                kind="Retrieve",
                tote=tote,
                location=location,
                ok=True,
                reason="",
                sequence=len(self.cranes.calls),
                replayed=False,
                at=self.clock.utcnow(),
                cycle_seconds=18.0,
            )
        )
        return tote

    def returns(self, *held: set[str]) -> ToteReturns:
        """The returns over these flows: the case picks, and totes held by another flow."""
        r = ToteReturns(self.inventory, self.clock, self.metrics)
        r.asrs = self.flows
        r.holders = [self.cp.totes_in_use, *(lambda _s, h=h: h for h in held)]
        return r

    def stage(self, stage: str) -> float | None:
        return self.metrics.registry.get_sample_value("linectl_case_totes_total", {"stage": stage})


@pytest.fixture(name="setup")
async def case_picks_setup(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Setup]:
    """The tests take it as ``setup``; the function has its own name so that the modules
    importing it do not shadow the import with their parameters."""
    config = case_line(reference_line)
    clock = ManualClock(START)
    metrics = Metrics()
    store = SqliteOrderStore(tmp_path / "line.db")
    await store.open()
    inventory = Inventory(config, store, clock, metrics)
    await inventory.open()
    cranes = RecordingCranes()
    flows = AsrsFlows(config, cranes, inventory, store, clock, metrics, max_in_flight=1)
    await flows.open()
    history = History(store, clock, metrics)
    flight = InFlight()
    cp = CasePicks(config, history, inventory, flight, clock, metrics)
    cp.asrs = flows
    history.ended.append(cp.ended)
    flows.on_retrieved = cp.retrieved
    flows.on_failed = cp.retrieve_failed
    try:
        yield Setup(cp, flows, cranes, store, inventory, history, flight, clock, metrics, config)
    finally:
        await store.close()


def planned(plan: TotePlan | AsrsStockShort) -> list[tuple[str, str, int]]:
    assert isinstance(plan, TotePlan), plan
    return [(ln.line_id, ln.tote, ln.quantity) for ln in plan.lines]


def waiting(s: Setup) -> dict[str, str]:
    """tote -> purpose of the AS/RS requests still open."""
    return {r.tote: r.purpose for r in s.flows.open_requests()}


@asynccontextmanager
async def unwinding(
    cp: CasePicks, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """``cp.run()`` in a task; yields a wait for an order's unwinding to have finished."""
    done: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
    unwind = cp.recovery.unwind

    async def observed(order_id: str) -> None:
        try:
            await unwind(order_id)
        finally:
            done[order_id].set()

    async def unwound(order_id: str) -> None:
        async with asyncio.timeout(5):
            await done[order_id].wait()

    monkeypatch.setattr(cp.recovery, "unwind", observed)
    runner = asyncio.create_task(cp.run())
    try:
        yield unwound
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def robot_trip(order_id: str, tote: str = "RT-1") -> Trip:
    return Trip(
        trip_id=f"trip-{order_id}",
        order_id=order_id,
        serial="R1",
        tote=tote,
        picks=(),
        induction="IND-1",
        started_at=START,
        destination="CUST-ACME",
        b2b=True,
        leg=Leg.ON_CONVEYOR,
    )


async def at_station(s: Setup, order_id: str, chute: str = "VAS-1") -> StationTask:
    """Release a case-only order, bring its one tote out and to ``chute``: the station task."""
    rec = await s.rec(order_id)
    assert await s.cp.release(rec, robot_part=False) is None
    tote = await s.crane_done()
    [trip] = s.flight.case_totes(order_id)
    assert trip.tote == tote
    ready = await s.cp.arrived(trip, await s.rec(order_id), chute)
    assert ready is not None
    return StationTask(chute, order_id, tuple(ready.totes), None, (), START, ready.case_lines)


async def tote_row(s: Setup, tote: str) -> tuple[int, int]:
    [row] = [r for r in await s.inventory.rows(sku="SKU-A") if r.tote == tote]
    return row.on_hand, row.reserved

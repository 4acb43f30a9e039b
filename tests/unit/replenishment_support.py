"""What the replenishment tests (``test_replenishment_*``, over controller/asrs/replenishment.py)
share: a line whose pick locations are watched and a replenishment chute to bring rack totes to,
the ``setup`` fixture wiring Replenishment to real AsrsFlows and Inventory over one SQLite file
(only the cranes are a recording stand-in, tests/unit/test_asrs_flows_unit), and the steps that
start a task and bring its tote to the chute."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.asrs.flows import AsrsFlows
from controller.asrs.replenishment import Replenishment, ReplenishTask
from controller.line.inventory import Inventory
from controller.line.trips import InFlight, Trip
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import (
    AsrsTote,
    Chute,
    ChuteKind,
    Divert,
    LineConfig,
    Sku,
    StockEntry,
)
from kernel.metrics import Metrics
from tests.unit.test_asrs_flows_unit import RecordingCranes

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CHUTE = "DECANT"


def replenish_line(reference_line: LineConfig) -> LineConfig:
    """L01A (SKU-A, 5 on hand) is topped up to 30 below 10; L01B (SKU-B, 20) gets a whole tote
    below 10; L02A (SKU-E) is not watched. SKU-A totes of 12, 18 and 30 units in aisle A1,
    SKU-B totes of 4 and 9 in aisle A2. Chute DECANT (kind replenishment) behind zone Z17."""
    sorter = reference_line.conveyor.sorter
    chutes = [c for c in sorter.chutes if c.kind is not ChuteKind.REPLENISHMENT]
    kept = {c.id for c in chutes}
    diverts = [d for d in sorter.diverts if d.chute in kept and d.zone != "Z17"]
    sorter = sorter.model_copy(
        update={
            "chutes": [*chutes, Chute(id=CHUTE, kind=ChuteKind.REPLENISHMENT, capacity=20)],
            "diverts": [*diverts, Divert(id="D-DECANT", zone="Z17", chute=CHUTE)],
        }
    )
    conveyor = reference_line.conveyor.model_copy(update={"sorter": sorter})
    return reference_line.model_copy(
        update={
            "conveyor": conveyor,
            "skus": [Sku(sku="SKU-A"), Sku(sku="SKU-B"), Sku(sku="SKU-E")],
            "stock": [
                StockEntry(
                    location="L01A", sku="SKU-A", quantity=5, replenish_below=10, replenish_to=30
                ),
                StockEntry(location="L01B", sku="SKU-B", quantity=20, replenish_below=10),
                StockEntry(location="L02A", sku="SKU-E", quantity=100),
            ],
            "asrs": reference_line.asrs.model_copy(
                update={
                    "totes": [
                        AsrsTote(tote="T-12", location="A1-L-01-01", sku="SKU-A", quantity=12),
                        AsrsTote(tote="T-18", location="A1-L-01-02", sku="SKU-A", quantity=18),
                        AsrsTote(tote="T-30", location="A1-L-01-03", sku="SKU-A", quantity=30),
                        AsrsTote(tote="T-B4", location="A2-L-01-01", sku="SKU-B", quantity=4),
                        AsrsTote(tote="T-B9", location="A2-L-01-02", sku="SKU-B", quantity=9),
                    ]
                }
            ),
        }
    )


@dataclass
class Setup:
    repl: Replenishment
    flows: AsrsFlows
    cranes: RecordingCranes
    store: SqliteOrderStore
    inventory: Inventory
    flight: InFlight
    clock: ManualClock
    metrics: Metrics
    config: LineConfig

    async def restarted(self) -> Replenishment:
        """The inventory, the AS/RS flows and the replenishment of a restarted controller."""
        self.inventory = Inventory(self.config, self.store, self.clock, self.metrics)
        await self.inventory.open()
        self.flows = AsrsFlows(
            self.config, self.cranes, self.inventory, self.store, self.clock, self.metrics
        )
        await self.flows.open()
        self.flight = InFlight()
        repl = Replenishment(self.config, self.inventory, self.flight, self.clock, self.metrics)
        repl.asrs = self.flows
        await repl.open()
        return repl

    async def crane_done(self) -> str:
        """Plan the AS/RS once and finish the retrieve sent; returns its tote."""
        await self.flows.plan_once()
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

    def stage(self, stage: str) -> float | None:
        return self.metrics.registry.get_sample_value(
            "linectl_replenishments_total", {"stage": stage}
        )

    def trip(self, task: ReplenishTask) -> Trip:
        trip = self.flight.by_tote[task.tote]
        assert trip.order_id == task.id
        return trip

    async def reservations(self) -> list[tuple[str, str, str, str, int]]:
        return [
            (r.holder, r.line_id, r.sku, r.tote, r.units)
            for r in await self.inventory.tote_reservations("")
        ]


@pytest.fixture(name="setup")
async def replenishment_setup(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Setup]:
    """The tests take it as ``setup``; the function has its own name so that the modules
    importing it do not shadow the import with their parameters."""
    config = replenish_line(reference_line)
    clock = ManualClock(START)
    metrics = Metrics()
    store = SqliteOrderStore(tmp_path / "line.db")
    await store.open()
    inventory = Inventory(config, store, clock, metrics)
    await inventory.open()
    cranes = RecordingCranes()
    flows = AsrsFlows(config, cranes, inventory, store, clock, metrics)
    await flows.open()
    flight = InFlight()
    repl = Replenishment(config, inventory, flight, clock, metrics)
    repl.asrs = flows
    s = Setup(repl, flows, cranes, store, inventory, flight, clock, metrics, config)

    async def retrieved(tote: str, aisle: str, purpose: str, order_id: str | None) -> None:
        if purpose == "replenish":  # as the orchestrator hands it on
            await s.repl.retrieved(tote, aisle, order_id)

    flows.on_retrieved = retrieved
    try:
        yield s
    finally:
        await store.close()


async def started(s: Setup) -> ReplenishTask:
    [task] = await s.repl.check()
    return task


async def at_chute(s: Setup) -> ReplenishTask:
    """L01A's task with its tote in the replenishment chute."""
    task = await started(s)
    assert await s.crane_done() == task.tote
    await s.repl.arrived(s.trip(task), CHUTE)
    assert task.state == "at_station"
    return task

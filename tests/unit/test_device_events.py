"""The conveyor's events have their own consumer: a slow crane event does not delay a divert.

The orchestrator with its real parts over a SQLite file; the sorter, the cranes and the robots
are recording stand-ins. The store holds every AS/RS write while the test says so, as a disk
that stalls would: the cranes' consumer waits on it, the conveyor's goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.line.trips import Leg, Trip
from controller.orders.model import OrderIn, OrderLine, OrderStatus, OrderType
from controller.service.device_events import DeviceEvents
from controller.service.orchestrator import Orchestrator
from controller.store.asrs import AsrsCommand, AsrsRequest
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from tests.unit.test_asrs_flows_unit import RecordingCranes
from tests.unit.test_robot_takeover import RecordingFleet

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PROMPT = 1.0  # wall seconds: far more than a divert decision takes, far less than the stall


class StallingStore(SqliteOrderStore):
    """Holds every AS/RS write while ``stalled`` is set.

    The store's methods are its parts' methods, set on the instance, so the AS/RS write is
    wrapped there rather than overridden."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.stalled = False
        self.writing = asyncio.Event()  # an AS/RS write is being held
        self.resume = asyncio.Event()
        save = self.asrs_save

        async def held(
            requests: Sequence[AsrsRequest] = (),
            commands: Sequence[AsrsCommand] = (),
            sequences: Mapping[str, int] | None = None,
        ) -> None:
            if self.stalled:
                self.writing.set()
                await self.resume.wait()
            await save(requests, commands, sequences)

        self.asrs_save = held


@dataclass
class RecordingSorter:
    diverts: list[tuple[str, str]] = field(default_factory=list)
    diverted: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, events: asyncio.Queue[dev.DeviceEvent]) -> None:  # pragma: no cover
        raise NotImplementedError

    async def divert(self, item_id: str, chute_id: str) -> None:
        self.diverts.append((item_id, chute_id))
        self.diverted.set()

    async def command(self, name: str) -> None:  # pragma: no cover
        raise NotImplementedError

    async def jog(self, zone: str, speed: float, seconds: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def snapshot(self) -> dev.ConveyorSnapshot:
        return dev.ConveyorSnapshot("C1", True, "Execute")

    async def chute(self, item_id: str) -> str:
        """The chute the item is diverted to, waiting for the divert at most ``PROMPT``."""
        async with asyncio.timeout(PROMPT):
            while True:
                for item, chute in self.diverts:
                    if item == item_id:
                        return chute
                self.diverted.clear()
                await self.diverted.wait()


@dataclass
class Line:
    orch: Orchestrator
    events: DeviceEvents
    sorter: RecordingSorter
    store: StallingStore
    clock: ManualClock

    def scan(self, item_id: str, code: str) -> None:
        self.events.conveyor.put_nowait(
            dev.ItemScanned("SC1", item_id, (code,), self.clock.utcnow())
        )

    async def crane_event_stalled(self) -> None:
        """A crane reports a finished transport; recording it stalls on the store."""
        self.store.stalled = True
        self.events.cranes.put_nowait(
            dev.CraneCommandFinished(
                crane="CR1",
                aisle="A1",
                command_id="cmd-from-before",
                kind="Retrieve",
                tote="T-AS",
                location="A1-L-01-01",
                ok=True,
                reason="",
                sequence=1,
                replayed=False,
                at=self.clock.utcnow(),
            )
        )
        async with asyncio.timeout(PROMPT):
            await self.store.writing.wait()

    async def steps(self, order_id: str) -> list[str]:
        return [e.type for e in await self.store.history(order_id)]


@pytest.fixture
async def line(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Line]:
    """The orchestrator resumed on an empty store, its device consumers and the sortation's
    history writer running; O-1's tote T-1 is on the conveyor for DHL."""
    clock = ManualClock(START)
    store = StallingStore(tmp_path / "line.db")
    await store.open()
    sorter = RecordingSorter()
    orch = Orchestrator(
        reference_line, clock, store, Metrics(), RecordingFleet(), sorter, RecordingCranes()
    )
    await orch.resume()
    events = DeviceEvents(orch)
    body = OrderIn(
        type=OrderType.B2C,
        due_at=START + timedelta(hours=3),
        destination="DHL",
        lines=[OrderLine(line_id="1", sku="SKU-0019", quantity=1)],
    )
    _, rec = await store.create_order("O-1", body, clock.utcnow())
    await orch.history.record(rec, "dropped", OrderStatus.IN_TRANSIT, picked={"1": 1})
    trip = Trip("t1", "O-1", "R01", "T-1", (), "INDUCT1", START, "DHL", False, leg=Leg.ON_CONVEYOR)
    orch.flight.on_conveyor(trip)
    loops = {**events.consumers(), "sort-history": orch.history_loop}
    assert "orchestrator.crane-events" in loops  # the reference line has an AS/RS
    tasks = [asyncio.create_task(loop(), name=name) for name, loop in loops.items()]
    try:
        yield Line(orch, events, sorter, store, clock)
    finally:
        store.resume.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await store.close()


async def test_a_stalled_crane_event_does_not_delay_a_divert(line: Line) -> None:
    await line.crane_event_stalled()
    line.scan("item-1", "T-1")
    assert await line.sorter.chute("item-1") == line.orch.sortation.plan.routes["DHL"][0]
    # the crane's event is still being handled: the divert did not wait for it
    assert line.events.cranes.handled == 0 and not line.store.resume.is_set()


async def test_a_tote_is_recorded_as_scanned_after_the_crane_events_before_its_scan(
    line: Line,
) -> None:
    """What the sortation records waits for the cranes' consumer as for the robots': the
    line's history stays in the order things happened."""
    await line.crane_event_stalled()
    line.scan("item-1", "T-1")
    await line.sorter.chute("item-1")
    await asyncio.sleep(0.05)
    assert "scanned" not in await line.steps("O-1")
    line.store.resume.set()
    for _ in range(100):  # PROMPT
        await asyncio.sleep(0.01)
        if "scanned" in await line.steps("O-1"):
            break
    assert await line.steps("O-1") == ["accepted", "dropped", "scanned"]
    assert line.events.cranes.handled == 1


async def test_a_tote_not_known_yet_waits_for_the_crane_events_before_its_scan(
    line: Line,
) -> None:
    """A tote the AS/RS brought out becomes known when the cranes' report is handled: a scan
    of a code nobody follows yet is decided once the cranes' earlier events are, not before."""
    await line.crane_event_stalled()
    line.scan("item-2", "T-UNKNOWN")
    await asyncio.sleep(0.05)
    assert line.sorter.diverts == []
    line.store.resume.set()
    assert await line.sorter.chute("item-2") == line.orch.sortation.plan.reject_chute
    assert line.events.cranes.handled == 1

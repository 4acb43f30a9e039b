"""The AS/RS transports against a recording stand-in for the cranes (one seam); the store and
the inventory are real, on a SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.asrs.flows import AsrsFlows, AsrsRequestError
from controller.line.inventory import Inventory
from controller.linefile.loader import REFERENCE_LINE, load
from controller.store.asrs import CommandState
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from devices.errors import CommandRejected, DeviceUnavailable
from kernel.clock import ManualClock
from kernel.metrics import Metrics

LINE = load(REFERENCE_LINE, env={})
TOTE = LINE.asrs.totes[0]  # stored at start
AISLE = TOTE.location.split("-")[0]


@dataclass
class RecordingCranes:
    """Accepts, refuses or cannot be reached, as a test says; remembers every call."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    refuse_with: Exception | None = None  # every call, until cleared
    refuse_next: list[Exception] = field(default_factory=list)  # one call each
    last: dict[str, int] = field(default_factory=dict)

    async def run(self, events: asyncio.Queue[dev.DeviceEvent]) -> None:  # pragma: no cover
        raise NotImplementedError

    async def _call(self, *call: str) -> None:
        self.calls.append(call)
        if self.refuse_next:
            raise self.refuse_next.pop(0)
        if self.refuse_with is not None:
            raise self.refuse_with

    async def store(self, aisle: str, command_id: str, tote: str, location: str) -> None:
        await self._call("store", aisle, command_id, tote, location)

    async def retrieve(self, aisle: str, command_id: str, tote: str, location: str) -> None:
        await self._call("retrieve", aisle, command_id, tote, location)

    async def dual(
        self,
        aisle: str,
        command_id: str,
        store_tote: str,
        store_location: str,
        retrieve_tote: str,
        retrieve_location: str,
    ) -> None:
        await self._call(
            "dual", aisle, command_id, store_tote, store_location, retrieve_tote, retrieve_location
        )

    def snapshot(self) -> dict[str, dev.CraneSnapshot]:
        return {
            a.id: dev.CraneSnapshot(a.crane.id, a.id, True, "Idle", 0.0, 0.0, "", 0, "")
            for a in LINE.asrs.aisles
        }

    def resume_from(self, last_sequences: Mapping[str, int]) -> None:
        self.last.update(last_sequences)


@dataclass
class Setup:
    flows: AsrsFlows
    cranes: RecordingCranes
    store: SqliteOrderStore
    inventory: Inventory
    clock: ManualClock

    def finished(
        self, call: tuple[str, ...], ok: bool = True, sequence: int = 1
    ) -> dev.CraneCommandFinished:
        kind, aisle, command_id, tote, location = call[:5]
        return dev.CraneCommandFinished(
            crane="CR1",
            aisle=aisle,
            command_id=command_id,
            kind="Retrieve" if kind == "retrieve" else "Store",
            tote=tote,
            location=location,
            ok=ok,
            reason="" if ok else "crane fault",
            sequence=sequence,
            replayed=False,
            at=self.clock.utcnow(),
            cycle_seconds=18.0 if ok else 0.0,
        )


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    metrics = Metrics()
    store = SqliteOrderStore(tmp_path / "line.db")
    await store.open()
    inventory = Inventory(LINE, store, clock, metrics)
    await inventory.open()
    cranes = RecordingCranes()
    flows = AsrsFlows(LINE, cranes, inventory, store, clock, metrics)
    await flows.open()
    try:
        yield Setup(flows, cranes, store, inventory, clock)
    finally:
        await store.close()


async def test_a_retrieve_is_written_then_sent_under_a_deterministic_id(setup: Setup) -> None:
    await setup.flows.request_retrieve(TOTE.tote, "order", order_id="B-1")
    assert await setup.flows.plan_once() == 1
    ((kind, aisle, command_id, tote, location),) = setup.cranes.calls
    assert (kind, aisle, tote, location) == ("retrieve", AISLE, TOTE.tote, TOTE.location)
    assert command_id.endswith(f"-{AISLE}-R1.1")
    (sent,) = await setup.store.asrs_commands(states=[CommandState.SENT])
    assert sent.command_id == command_id


async def test_a_held_line_sends_no_crane_command_until_resumed(setup: Setup) -> None:
    setup.flows.held = True
    await setup.flows.request_retrieve(TOTE.tote, "order", order_id="B-1")
    assert await setup.flows.plan_once() == 0
    assert setup.cranes.calls == []
    assert await setup.store.asrs_commands() == []  # nothing planned either
    setup.flows.held = False
    assert await setup.flows.plan_once() == 1
    assert [c[0] for c in setup.cranes.calls] == ["retrieve"]


async def test_a_tote_not_in_the_rack_or_asked_for_twice_is_refused(setup: Setup) -> None:
    with pytest.raises(AsrsRequestError, match="not in the AS/RS rack"):
        await setup.flows.request_retrieve("NO-SUCH-TOTE", "order")
    await setup.flows.request_retrieve(TOTE.tote, "order")
    with pytest.raises(AsrsRequestError):
        await setup.flows.request_retrieve(TOTE.tote, "order")


async def test_unreachable_cranes_keep_the_command_and_get_it_again(setup: Setup) -> None:
    await setup.flows.request_retrieve(TOTE.tote, "order")
    setup.cranes.refuse_with = DeviceUnavailable("AS/RS not connected")
    assert await setup.flows.plan_once() == 0
    (pending,) = await setup.store.asrs_commands(states=[CommandState.PENDING])
    setup.cranes.refuse_with = None
    await setup.flows.handle(dev.CranesAvailability(True, "connected", setup.clock.utcnow()))
    assert await setup.flows.plan_once() == 1
    assert [c[2] for c in setup.cranes.calls] == [pending.command_id, pending.command_id]


async def test_a_completion_moves_the_tote_once_even_when_replayed(setup: Setup) -> None:
    await setup.flows.request_retrieve(TOTE.tote, "order")
    await setup.flows.plan_once()
    done = setup.finished(setup.cranes.calls[0])
    await setup.flows.handle(done)
    await setup.flows.handle(dev.CraneCommandFinished(**{**done.__dict__, "replayed": True}))
    assert (await setup.store.asrs_tote_locations())[TOTE.tote] == f"PD:{AISLE}"
    moves = [m for m in await setup.inventory.movements(sku=TOTE.sku) if m.ref == done.command_id]
    assert len(moves) == 2  # out of the rack, onto the P&D output: one pair, not two
    assert sum(m.delta for m in moves) == 0


async def test_a_store_refused_for_an_occupied_location_gets_another(setup: Setup) -> None:
    await setup.flows.request_retrieve(TOTE.tote, "order")
    await setup.flows.plan_once()
    await setup.flows.handle(setup.finished(setup.cranes.calls[0]))
    await setup.flows.tote_at_pd(TOTE.tote, AISLE)
    setup.cranes.refuse_next = [CommandRejected("Store: BadEntryExists")]
    await setup.flows.plan_once()
    stores = [c for c in setup.cranes.calls if c[0] == "store"]
    assert len(stores) == 2
    assert stores[0][4] != stores[1][4]  # a new location
    assert stores[0][2] != stores[1][2] and stores[1][2].endswith(".2")  # a new attempt's id
    (sent,) = await setup.store.asrs_commands(states=[CommandState.SENT])
    assert sent.command_id == stores[1][2]


async def test_a_store_refused_every_time_is_given_up_after_three_locations(
    setup: Setup,
) -> None:
    await setup.flows.request_retrieve(TOTE.tote, "order")
    await setup.flows.plan_once()
    await setup.flows.handle(setup.finished(setup.cranes.calls[0]))
    await setup.flows.tote_at_pd(TOTE.tote, AISLE)
    setup.cranes.refuse_with = CommandRejected("Store: BadResourceUnavailable")
    await setup.flows.plan_once()
    stores = [c for c in setup.cranes.calls if c[0] == "store"]
    assert len({c[4] for c in stores}) == 3  # three locations tried
    assert not [r for r in setup.flows.open_requests() if r.tote == TOTE.tote]

"""Replenishment of robot pick locations from the AS/RS (controller/replenishment.py) at its
seams: when a task starts and which tote it brings, the tote's way to the chute, the put
confirmed as one inventory transaction, tasks given up, and the rebuild after a restart from
the open tote reservations. AsrsFlows and Inventory are real, over one SQLite file; only the
cranes are a recording stand-in (tests/unit/test_asrs_flows_unit)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller import topology
from controller.asrs import AsrsFlows
from controller.clock import ManualClock
from controller.config.checks import cross_check
from controller.config.model import (
    AsrsTote,
    Chute,
    ChuteKind,
    Divert,
    LineConfig,
    Sku,
    StockEntry,
)
from controller.inventory import Inventory
from controller.metrics import Metrics
from controller.replenishment import Replenishment, ReplenishTask, UnknownReplenishment
from controller.store.inventory import ToteLine
from controller.store.sqlite import SqliteOrderStore
from controller.trips import InFlight, Trip
from devices import base as dev
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


@pytest.fixture
async def setup(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Setup]:
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


# --- starting a task ----------------------------------------------------------------------------


async def test_the_test_line_is_a_valid_line_with_a_replenishment_chute(setup: Setup) -> None:
    assert cross_check(setup.config) == []
    assert setup.repl.active and setup.repl.chutes == frozenset({CHUTE})
    assert set(setup.repl.rules) == {"L01A", "L01B"}


async def test_a_location_below_its_level_gets_the_tote_closest_to_what_is_missing(
    setup: Setup,
) -> None:
    task = await started(setup)  # L01A: 5 on hand, up to 30: 25 missing, T-30 covers it
    assert (task.location, task.sku, task.tote, task.units, task.state, task.aisle) == (
        "L01A",
        "SKU-A",
        "T-30",
        25,
        "retrieving",
        "A1",
    )
    assert task.id.startswith("RPL-L01A-")
    assert await setup.reservations() == [(task.id, "L01A", "SKU-A", "T-30", 25)]
    assert setup.inventory.tote_view()["SKU-A"]["T-30"] == 5
    [request] = setup.flows.open_requests()
    assert (request.tote, request.purpose, request.order_id, request.priority) == (
        "T-30",
        "replenish",
        task.id,
        6,
    )
    assert request.due == START + timedelta(minutes=30)
    assert setup.stage("requested") == 1
    assert setup.repl.open_tasks() == [task] and setup.repl.totes_in_use() == {"T-30"}

    assert await setup.repl.check() == []  # 5 on hand + 25 on the way: not below 10 now
    assert len(setup.flows.open_requests()) == 1


async def test_an_empty_location_without_a_target_gets_the_fullest_whole_tote_first(
    setup: Setup,
) -> None:
    await setup.inventory.count("L01B", "SKU-B", 0, "op-1")
    await setup.inventory.count("L01A", "SKU-A", 10, "op-2")  # at its level: not below
    [task] = await setup.repl.check()
    assert (task.location, task.tote, task.units, task.aisle) == ("L01B", "T-B9", 9, "A2")
    [request] = setup.flows.open_requests()
    assert (request.priority, request.due) == (8, START + timedelta(minutes=5))
    # still below: 0 + 9 < 10, so the other tote follows
    [second] = await setup.repl.check()
    assert (second.tote, second.units) == ("T-B4", 4)
    assert await setup.repl.check() == []  # no SKU-B tote left to bring


@pytest.mark.parametrize(
    ("need", "expected"),
    [
        (10, ("T-12", 10)),
        (12, ("T-12", 12)),
        (13, ("T-18", 13)),
        (25, ("T-30", 25)),
        (40, ("T-30", 30)),  # none holds 40: the fullest, all of it
        (None, ("T-30", 30)),  # no target: the fullest, whole
    ],
)
async def test_tote_choice(
    setup: Setup, need: int | None, expected: tuple[str | None, int]
) -> None:
    assert await setup.repl._tote("SKU-A", need) == expected


async def test_tote_choice_skips_busy_totes_totes_in_use_and_totes_out_of_the_rack(
    setup: Setup,
) -> None:
    await setup.flows.request_retrieve("T-12", "case_pick", order_id="B-1")
    assert await setup.repl._tote("SKU-A", 10) == ("T-18", 10)
    setup.repl.tasks["RPL-X"] = ReplenishTask("RPL-X", "L09A", "SKU-A", "T-18", 5)
    assert await setup.repl._tote("SKU-A", 10) == ("T-30", 10)
    await setup.inventory.tote_moved("T-30", "STATION:VAS-1", "moved-1")
    assert await setup.repl._tote("SKU-A", 10) == (None, 0)
    assert await setup.repl._tote("SKU-Z", 10) == (None, 0)


async def test_no_tote_no_task(setup: Setup) -> None:
    for tote in ("T-12", "T-18", "T-30"):
        await setup.flows.request_retrieve(tote, "case_pick", order_id="B-1")
    assert await setup.repl.check() == []
    assert await setup.reservations() == []
    assert "L01A" in setup.repl._no_tote
    assert setup.stage("requested") is None


async def test_a_refused_retrieve_gives_the_reservation_back(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the choice and the request a case pick asks for the same tote."""
    reserve = setup.inventory.reserve_totes

    async def racing(holder: str, lines: list[ToteLine], ref_id: str = "") -> None:
        await reserve(holder, lines, ref_id)
        await setup.flows.request_retrieve(lines[0].tote, "case_pick", order_id="B-1")

    monkeypatch.setattr(setup.inventory, "reserve_totes", racing)
    assert await setup.repl.check() == []
    assert setup.repl.tasks == {}
    assert await setup.reservations() == []
    assert setup.inventory.tote_view()["SKU-A"]["T-30"] == 30
    assert [(r.tote, r.purpose) for r in setup.flows.open_requests()] == [("T-30", "case_pick")]


async def test_nothing_is_watched_without_a_replenishment_chute(setup: Setup) -> None:
    sorter = setup.config.conveyor.sorter
    chutes = [c for c in sorter.chutes if c.kind is not ChuteKind.REPLENISHMENT]
    config = setup.config.model_copy(
        update={
            "conveyor": setup.config.conveyor.model_copy(
                update={"sorter": sorter.model_copy(update={"chutes": chutes})}
            )
        }
    )
    repl = Replenishment(config, setup.inventory, setup.flight, setup.clock, setup.metrics)
    repl.asrs = setup.flows
    assert not repl.active
    assert await repl.check() == []
    assert setup.flows.open_requests() == []


# --- on the way ---------------------------------------------------------------------------------


async def test_the_retrieved_tote_is_sorted_to_the_replenishment_chute(setup: Setup) -> None:
    task = await started(setup)
    assert await setup.crane_done() == "T-30"
    assert (task.state, task.aisle) == ("on_conveyor", "A1")
    trip = setup.trip(task)
    assert (trip.trip_id, trip.induction, trip.destination, trip.purpose, trip.case_tote) == (
        f"replenish-{task.id}",
        "PD:A1",
        topology.REPLENISHMENT_DESTINATION,
        "replenish",
        True,
    )
    assert topology.sort_plan(setup.config).chutes[topology.REPLENISHMENT_DESTINATION] == (CHUTE,)

    await setup.repl.arrived(trip, CHUTE)
    assert (task.state, task.station) == ("at_station", CHUTE)
    assert setup.inventory.tote_location("T-30") == f"STATION:{CHUTE}"
    assert "T-30" not in setup.flight.by_tote and trip.trip_id not in setup.flight.trips
    assert setup.repl.open_tasks(CHUTE) == [task] and setup.repl.open_tasks("VAS-1") == []
    assert task.document() == {
        "id": task.id,
        "location": "L01A",
        "sku": "SKU-A",
        "tote": "T-30",
        "units": 25,
        "state": "at_station",
        "aisle": "A1",
        "station": CHUTE,
    }
    assert setup.stage("at_station") == 1
    assert await setup.reservations() == [(task.id, "L01A", "SKU-A", "T-30", 25)]


async def test_a_tote_sorted_elsewhere_ends_the_task_and_the_next_check_starts_another(
    setup: Setup,
) -> None:
    task = await started(setup)
    await setup.crane_done()
    await setup.repl.arrived(setup.trip(task), "REJECT")
    assert setup.repl.tasks == {}
    assert await setup.reservations() == []
    assert setup.inventory.tote_location("T-30") == "STATION:REJECT"
    assert setup.stage("failed") == 1 and setup.stage("at_station") is None
    [again] = await setup.repl.check()  # T-30 is out of the rack: the fullest of the others
    assert (again.tote, again.units) == ("T-18", 18)


async def test_a_tote_lost_on_the_conveyor_ends_the_task(setup: Setup) -> None:
    task = await started(setup)
    await setup.crane_done()
    assert await setup.repl.check() == []  # on its way: nothing new
    setup.flight.forget(setup.trip(task))  # what the conveyor's watch does with a lost tote
    [again] = await setup.repl.check()
    assert task.id not in setup.repl.tasks and again.id in setup.repl.tasks
    assert [r[0] for r in await setup.reservations()] == [again.id]
    assert setup.stage("failed") == 1


async def test_a_failed_retrieve_ends_the_task(setup: Setup) -> None:
    task = await started(setup)
    [request] = setup.flows.open_requests()
    await setup.repl.retrieve_failed(replace(request, reason="crane fault"))
    assert setup.repl.tasks == {}
    assert await setup.reservations() == []
    assert setup.inventory.tote_view()["SKU-A"]["T-30"] == 30
    assert setup.stage("failed") == 1
    await setup.repl.retrieve_failed(replace(request, order_id=task.id))  # told twice
    assert setup.stage("failed") == 1


# --- the put ------------------------------------------------------------------------------------


async def test_the_confirmed_put_moves_the_units_in_one_transaction(setup: Setup) -> None:
    task = await at_chute(setup)
    await setup.repl.confirm(task.id, 25, "op-7")

    assert setup.inventory.on_hand("L01A", "SKU-A") == 30
    [tote] = [r for r in await setup.inventory.rows(sku="SKU-A") if r.tote == "T-30"]
    assert (tote.location, tote.on_hand, tote.reserved) == (f"STATION:{CHUTE}", 5, 0)
    moves = [
        (m.kind.value, m.location, m.tote, m.delta)
        for m in await setup.inventory.movements(sku="SKU-A")
        if m.ref == f"{task.id}-put"
    ]
    assert sorted(moves) == [
        ("put_confirmed", "L01A", None, 25),
        ("tote_pick_confirmed", f"STATION:{CHUTE}", "T-30", -25),
    ]
    assert setup.repl.tasks == {} and setup.stage("put") == 1
    assert await setup.reservations() == []
    assert await setup.repl.check() == []  # 30 on hand now


async def test_a_short_put_leaves_the_rest_in_the_tote(setup: Setup) -> None:
    task = await at_chute(setup)
    await setup.repl.confirm(task.id, 20, "op-7")
    assert setup.inventory.on_hand("L01A", "SKU-A") == 25
    assert setup.inventory.tote_view()["SKU-A"]["T-30"] == 10  # nothing held any more
    [short] = [e for e in await setup.inventory.events() if e.type == "short_pick"]
    assert (short.data["tote"], short.data["reserved"], short.data["picked"]) == ("T-30", 25, 20)


@pytest.mark.parametrize("put", [-1, 26])
async def test_a_put_out_of_range_is_refused_and_changes_nothing(setup: Setup, put: int) -> None:
    task = await at_chute(setup)
    with pytest.raises(ValueError, match=rf"put must be 0\.\.25 units, got {put}"):
        await setup.repl.confirm(task.id, put, "op-7")
    assert setup.repl.tasks == {task.id: task}
    assert setup.inventory.on_hand("L01A", "SKU-A") == 5
    assert await setup.reservations() == [(task.id, "L01A", "SKU-A", "T-30", 25)]


async def test_only_a_task_waiting_at_a_chute_can_be_confirmed(setup: Setup) -> None:
    task = await started(setup)  # still in the rack
    with pytest.raises(UnknownReplenishment, match=task.id):
        await setup.repl.confirm(task.id, 25, "op-7")
    with pytest.raises(UnknownReplenishment, match="RPL-NOPE"):
        await setup.repl.confirm("RPL-NOPE", 1, "op-7")
    assert setup.inventory.on_hand("L01A", "SKU-A") == 5
    assert setup.stage("put") is None


# --- restart ------------------------------------------------------------------------------------


async def test_open_rebuilds_the_tasks_from_the_reservations_and_the_totes_places(
    setup: Setup,
) -> None:
    a = await started(setup)  # L01A, T-30 (aisle A1): will be on the conveyor
    await setup.crane_done()
    await setup.inventory.count("L01B", "SKU-B", 0, "op-1")
    [b] = await setup.repl.check()  # L01B, T-B9 (aisle A2): will be at the chute
    await setup.crane_done()
    await setup.repl.arrived(setup.trip(b), CHUTE)
    [c] = await setup.repl.check()  # L01B again, T-B4: still asked for
    # a holder that no transport serves any more: its tote is in the rack, not asked for
    lost = f"RPL-L01A-{uuid.uuid4().hex[:8]}"
    await setup.inventory.reserve_totes(lost, [ToteLine("L01A", "SKU-A", "T-12", 3)], lost)
    states = {a.id: "on_conveyor", b.id: "at_station", c.id: "retrieving"}
    assert {t.id: t.state for t in setup.repl.tasks.values()} == states

    repl = await setup.restarted()
    assert {t.id: (t.state, t.tote, t.location, t.units) for t in repl.tasks.values()} == {
        a.id: ("on_conveyor", "T-30", "L01A", 25),
        b.id: ("at_station", "T-B9", "L01B", 9),
        c.id: ("retrieving", "T-B4", "L01B", 4),
    }
    assert repl.tasks[a.id].aisle == "A1" and repl.tasks[b.id].station == CHUTE
    [trip] = setup.flight.trips.values()  # only the tote on the conveyor is tracked
    assert (trip.order_id, trip.tote, trip.induction) == (a.id, "T-30", "PD:A1")
    assert [h for h, *_ in await setup.reservations()] == [a.id, b.id, c.id]  # lost: released
    assert setup.inventory.tote_view()["SKU-A"]["T-12"] == 12

    await repl.confirm(b.id, 9, "op-7")  # the restarted controller carries on
    assert setup.inventory.on_hand("L01B", "SKU-B") == 9


async def test_open_leaves_alone_a_case_order_whose_id_starts_like_a_task(setup: Setup) -> None:
    # B2B order "RPL-7" (a valid order id): 12 units reserved in T-18, the tote at its station
    await setup.inventory.reserve_totes(
        "RPL-7", [ToteLine("90", "SKU-A", "T-18", 12)], "case-RPL-7"
    )
    await setup.inventory.tote_moved("T-18", "STATION:VAS-1", "case-RPL-7-T-18-in-VAS-1")
    repl = await setup.restarted()
    assert repl.tasks == {}
    assert await setup.reservations() == [("RPL-7", "90", "SKU-A", "T-18", 12)]

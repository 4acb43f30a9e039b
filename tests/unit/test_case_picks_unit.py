"""B2B case picks (controller/case_picks.py) at their seams: the tote plan, the release to the
AS/RS and its undoing, the totes' way to the station, the verification, the returns, orders
that end otherwise and the rebuild after a restart. AsrsFlows, Inventory and History are real,
over one SQLite file; only the cranes are a recording stand-in (tests/unit/test_asrs_flows_unit)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest

from controller.asrs import AsrsFlows
from controller.case_picks import CasePicks, Shortage, _Plan
from controller.clock import ManualClock
from controller.config.model import AsrsTote, LineConfig, Sku, StockEntry
from controller.history import History
from controller.inventory import Inventory
from controller.metrics import Metrics
from controller.orders import OrderIn, OrderLine, OrderRecord, OrderStatus, OrderType
from controller.stations import StationTask
from controller.store.asrs import RequestState
from controller.store.inventory import ToteLine
from controller.store.sqlite import SqliteOrderStore
from controller.tote_returns import ReturnTote, ToteReturns
from controller.trips import InFlight, Trip
from devices import base as dev
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


@pytest.fixture
async def setup(reference_line: LineConfig, tmp_path: Path) -> AsyncIterator[Setup]:
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


def planned(plan: _Plan | Shortage) -> list[tuple[str, str, int]]:
    assert isinstance(plan, _Plan), plan
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
    unwind = cp._unwind

    async def observed(order_id: str) -> None:
        try:
            await unwind(order_id)
        finally:
            done[order_id].set()

    async def unwound(order_id: str) -> None:
        async with asyncio.timeout(5):
            await done[order_id].wait()

    monkeypatch.setattr(cp, "_unwind", observed)
    runner = asyncio.create_task(cp.run())
    try:
        yield unwound
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


# --- the plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cases", "expected"),
    [
        (2, [("90", "T-12", 12)]),  # exactly the smallest tote
        (3, [("90", "T-18", 18)]),  # the smallest of those that cover 18
        (1, [("90", "T-12", 6)]),  # partial: the smallest covering tote, not the fullest
        (4, [("90", "T-30", 24)]),  # only T-30 covers 24
        (7, [("90", "T-30", 30), ("90", "T-12", 12)]),  # none covers 42: fullest, then 12 left
        (8, [("90", "T-30", 30), ("90", "T-18", 18)]),  # 18 left: T-18 covers it, T-12 not
        (10, [("90", "T-30", 30), ("90", "T-18", 18), ("90", "T-12", 12)]),
    ],
)
async def test_plan_takes_the_smallest_covering_tote_else_the_fullest(
    setup: Setup, cases: int, expected: list[tuple[str, str, int]]
) -> None:
    line = OrderLine(line_id="90", sku="SKU-A", quantity=cases, uom="case")
    assert planned(await setup.cp._plan([line])) == expected


async def test_plan_short_of_stock_names_what_is_missing(setup: Setup) -> None:
    line = OrderLine(line_id="90", sku="SKU-A", quantity=11, uom="case")  # 66 of 60 in totes
    plan = await setup.cp._plan([line])
    assert isinstance(plan, Shortage)
    # what the rack totes hold, not the SKU's loose stock at pick locations
    assert plan.reason == "stock_short: SKU-A missing 6 in the AS/RS (60 units free in rack totes)"


async def test_plan_skips_busy_totes_totes_out_of_the_rack_and_reserved_ones(
    setup: Setup,
) -> None:
    two = [OrderLine(line_id="90", sku="SKU-A", quantity=2, uom="case")]  # 12 units
    await setup.flows.request_retrieve("T-12", "replenish", order_id="RPL-X")  # busy
    assert planned(await setup.cp._plan(two)) == [("90", "T-18", 12)]
    await setup.inventory.tote_moved("T-18", "STATION:VAS-2", "moved-1")  # not in the rack
    assert planned(await setup.cp._plan(two)) == [("90", "T-30", 12)]
    await setup.inventory.reserve_totes("O-9", [ToteLine("1", "SKU-A", "T-30", 25)])
    plan = await setup.cp._plan(two)  # T-30 has 5 free: not enough, and nothing else is free
    assert isinstance(plan, Shortage)
    assert plan.reason.startswith("stock_short: SKU-A missing 7 in the AS/RS")


async def test_two_lines_of_one_sku_share_a_tote_that_holds_both(setup: Setup) -> None:
    lines = [
        OrderLine(line_id="1", sku="SKU-B", quantity=1, uom="case"),
        OrderLine(line_id="2", sku="SKU-B", quantity=1, uom="case"),
    ]
    # T-B holds 4 units, the order asks for 2
    assert planned(await setup.cp._plan(lines)) == [("1", "T-B", 1), ("2", "T-B", 1)]


# --- release ------------------------------------------------------------------------------------


async def test_release_reserves_in_the_totes_and_asks_for_each_once(setup: Setup) -> None:
    rec = await setup.order("C1", ("90", "SKU-A", 7, "case"), ("91", "SKU-B", 3, "case"))
    assert [ln.line_id for ln in setup.cp.asrs_lines(rec)] == ["90", "91"]
    assert await setup.cp.release(rec, robot_part=False) is None

    assert setup.inventory.tote_view()["SKU-A"] == {"T-12": 0, "T-18": 18, "T-30": 0}
    assert setup.inventory.tote_view()["SKU-B"] == {"T-B": 1}
    assert setup.inventory.view()["SKU-A"]["L01A"] == 50  # loose stock untouched
    requests = setup.flows.open_requests()
    assert [(r.tote, r.aisle, r.purpose, r.order_id, r.priority) for r in requests] == [
        ("T-30", "A1", "case_pick", "C1", 3),
        ("T-12", "A1", "case_pick", "C1", 3),
        ("T-B", "A2", "case_pick", "C1", 3),
    ]
    assert all((r.due, r.deliver_from, r.deliver_until) == (DUE, *WINDOW) for r in requests)
    assert setup.cp.serves("C1") and setup.cp.released("C1") == frozenset({"90", "91"})
    assert not setup.cp.needs_robot("C1")

    rec = await setup.rec("C1")
    assert (rec.status, rec.step, rec.waiting_reason) == (
        OrderStatus.RELEASED,
        "asrs_retrieving",
        None,
    )
    [event] = [e for e in await setup.store.history("C1") if e.type == "case_pick_released"]
    assert event.data["totes"] == [
        {
            "tote": tote,
            "aisle": aisle,
            "location": location,
            "request": r.id,
            "lines": [{"line_id": line, "sku": sku, "units": units}],
        }
        for (tote, aisle, location, line, sku, units), r in zip(
            [
                ("T-30", "A1", "A1-L-01-03", "90", "SKU-A", 30),
                ("T-12", "A1", "A1-L-01-01", "90", "SKU-A", 12),
                ("T-B", "A2", "A2-L-01-01", "91", "SKU-B", 3),
            ],
            requests,
            strict=True,
        )
    ]
    assert setup.stage("requested") == 3


async def test_release_with_a_robot_part_leaves_the_status_to_the_robot(setup: Setup) -> None:
    rec = await setup.order("C2", ("10", "SKU-E", 3, "each"), ("90", "SKU-A", 1, "case"))
    assert [ln.line_id for ln in setup.cp.asrs_lines(rec)] == ["90"]
    assert await setup.cp.release(rec, robot_part=True) is None
    rec = await setup.rec("C2")
    assert rec.status is OrderStatus.ACCEPTED
    assert (await setup.steps("C2"))[-1] == "case_pick_released"
    assert setup.cp.released("C2") == frozenset({"90"}) and setup.cp.needs_robot("C2")
    assert waiting(setup) == {"T-12": "case_pick"}


async def test_release_short_of_stock_reserves_and_asks_nothing(setup: Setup) -> None:
    rec = await setup.order("C3", ("90", "SKU-A", 1, "case"), ("91", "SKU-B", 5, "case"))
    why = await setup.cp.release(rec, robot_part=False)
    assert why == "stock_short: SKU-B missing 1 in the AS/RS (4 units free in rack totes)"
    assert setup.flows.open_requests() == []
    assert setup.inventory.totals("SKU-A").reserved == 0
    assert not setup.cp.serves("C3")
    assert await setup.steps("C3") == ["accepted"]


async def test_a_refused_retrieve_withdraws_the_others_and_gives_back_the_reservation(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the plan and the requests another flow asks for one of the planned totes: the
    AS/RS refuses that one; what was asked is withdrawn and nothing stays reserved."""
    reserve = setup.inventory.reserve_totes

    async def racing(order_id: str, lines: list[ToteLine], ref_id: str = "") -> None:
        await reserve(order_id, lines, ref_id)
        await setup.flows.request_retrieve("T-12", "replenish", order_id="RPL-L01A-1")

    monkeypatch.setattr(setup.inventory, "reserve_totes", racing)
    rec = await setup.order("C4", ("90", "SKU-A", 7, "case"))  # T-30 then T-12
    why = await setup.cp.release(rec, robot_part=False)

    assert why is not None and why.startswith("asrs_unavailable: tote T-12 already has an open")
    assert waiting(setup) == {"T-12": "replenish"}  # only the other flow's request
    [withdrawn] = [
        r for r in await setup.store.asrs_requests(states=[RequestState.FAILED]) if r.tote == "T-30"
    ]
    assert (withdrawn.order_id, withdrawn.reason) == ("C4", "withdrawn")
    assert setup.inventory.tote_view()["SKU-A"] == {"T-12": 12, "T-18": 18, "T-30": 30}
    assert not setup.cp.serves("C4")
    assert await setup.steps("C4") == ["accepted"]


# --- on the way, at the station -----------------------------------------------------------------


# --- on the way, at the station -----------------------------------------------------------------


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
        dropped=True,
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


async def test_a_retrieved_case_tote_rides_the_conveyor_to_the_order(setup: Setup) -> None:
    await setup.order("C5", ("90", "SKU-A", 2, "case"))
    assert await setup.cp.release(await setup.rec("C5"), robot_part=False) is None
    assert await setup.crane_done() == "T-12"

    [trip] = setup.flight.case_totes("C5")
    assert setup.flight.by_tote["T-12"] is trip
    assert (trip.trip_id, trip.induction, trip.destination, trip.b2b, trip.cancelled) == (
        "case-C5-T-12",
        "PD:A1",
        "CUST-ACME",
        True,
        False,
    )
    assert setup.inventory.tote_location("T-12") == "PD:A1"
    rec = await setup.rec("C5")
    assert (rec.status, rec.step) == (OrderStatus.IN_TRANSIT, "on_conveyor")
    [event] = [e for e in await setup.store.history("C5") if e.type == "case_tote_retrieved"]
    assert event.data == {"tote": "T-12", "aisle": "A1"}
    assert setup.stage("retrieved") == 1

    await setup.cp.retrieved("T-18", "A1", "replenish", "C5")  # not a case pick's tote
    assert [t.tote for t in setup.flight.case_totes("C5")] == ["T-12"]
    assert (await setup.steps("C5")).count("case_tote_retrieved") == 1


async def test_the_task_opens_when_the_robot_tote_and_the_case_tote_are_there(
    setup: Setup,
) -> None:
    await setup.order("C6", ("10", "SKU-E", 3, "each"), ("90", "SKU-A", 3, "case"))
    assert await setup.cp.release(await setup.rec("C6"), robot_part=True) is None
    assert await setup.crane_done() == "T-18"
    [case] = setup.flight.case_totes("C6")

    assert await setup.cp.arrived(case, await setup.rec("C6"), "VAS-1") is None
    rec = await setup.rec("C6")
    assert rec.step == "collecting_totes" and rec.status is not OrderStatus.SORTED
    assert setup.inventory.tote_location("T-18") == "STATION:VAS-1"
    assert setup.stage("at_station") == 1

    ready = await setup.cp.arrived(robot_trip("C6"), await setup.rec("C6"), "VAS-1")
    assert ready is not None
    assert ready.totes == ["RT-1", "T-18"]  # the robot's tote first
    assert ready.case_lines == frozenset({"90"})
    assert (ready.order.status, ready.order.step) == (OrderStatus.SORTED, "at_station")
    [event] = [e for e in await setup.store.history("C6") if e.type == "sorted"]
    assert event.data == {"tote": "RT-1", "chute": "VAS-1", "totes": ["RT-1", "T-18"]}
    assert setup.stage("at_station") == 1  # the robot's tote is not an AS/RS tote


async def test_a_case_tote_in_the_reject_chute_puts_the_order_in_exception_and_unwinds(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup.order("C7", ("90", "SKU-A", 2, "case"))
    assert await setup.cp.release(await setup.rec("C7"), robot_part=False) is None
    await setup.crane_done()
    [trip] = setup.flight.case_totes("C7")
    async with unwinding(setup.cp, monkeypatch) as unwound:
        assert await setup.cp.arrived(trip, await setup.rec("C7"), "REJECT") is None
        rec = await setup.rec("C7")
        assert (rec.status, rec.step) == (OrderStatus.EXCEPTION, "reject_chute")
        assert (await setup.steps("C7"))[-1] == "rejected"
        await unwound("C7")
    assert not setup.cp.serves("C7")
    assert setup.inventory.tote_view()["SKU-A"]["T-12"] == 12  # the reservation is back
    assert setup.inventory.tote_location("T-12") == "STATION:REJECT"
    assert [r.tote for r in await setup.returns().returns("REJECT")] == ["T-12"]


# --- verification and returns ------------------------------------------------------------------


async def tote_row(s: Setup, tote: str) -> tuple[int, int]:
    [row] = [r for r in await s.inventory.rows(sku="SKU-A") if r.tote == tote]
    return row.on_hand, row.reserved


async def test_verified_cases_leave_the_tote_and_the_tote_is_sent_back(setup: Setup) -> None:
    await setup.order("C8", ("90", "SKU-A", 2, "case"))
    task = await at_station(setup, "C8")
    assert task.totes == ("T-12",) and task.case_lines == frozenset({"90"})

    assert await setup.cp.settle(task, await setup.rec("C8"), ok=True) == []
    assert await tote_row(setup, "T-12") == (0, 0)
    taken = [
        (m.ref, m.order_id, m.tote, m.delta)
        for m in await setup.inventory.movements(sku="SKU-A")
        if m.kind.value == "tote_pick_confirmed"
    ]
    assert taken == [("verify-C8-T-12-90", "C8", "T-12", -12)]
    assert not setup.cp.serves("C8")

    aisle = await setup.flows.aisle_for_return()
    assert aisle in ("A1", "A2")
    returns = setup.returns()
    assert await returns.returns("VAS-1") == [ReturnTote("T-12", "VAS-1", aisle)]
    sent = await returns.send_back("VAS-1", "T-12")
    assert sent == ReturnTote("T-12", "VAS-1", aisle, sent=True)
    assert setup.inventory.tote_location("T-12") == f"RETURN:{aisle}"
    assert await returns.send_back("VAS-1", "T-12") == sent  # told twice: the same answer
    assert setup.metrics.registry.get_sample_value("linectl_tote_returns_total") == 1
    assert await returns.returns("VAS-1") == []
    with pytest.raises(LookupError, match="'T-18' is not waiting for return at 'VAS-1'"):
        await returns.send_back("VAS-1", "T-18")


async def test_a_mismatch_takes_nothing_and_gives_the_reservation_back(setup: Setup) -> None:
    await setup.order("C9", ("90", "SKU-A", 2, "case"))
    task = await at_station(setup, "C9")
    assert await tote_row(setup, "T-12") == (12, 12)
    assert await setup.cp.settle(task, await setup.rec("C9"), ok=False) == []
    assert await tote_row(setup, "T-12") == (12, 0)
    assert not [
        m
        for m in await setup.inventory.movements(sku="SKU-A")
        if m.kind.value.startswith("tote_pick")
    ]
    assert [r.tote for r in await setup.returns().returns("VAS-1")] == ["T-12"]


async def test_a_tote_holding_fewer_than_counted_is_a_problem_and_frees_the_rest(
    setup: Setup,
) -> None:
    await setup.order("C10", ("90", "SKU-A", 3, "case"))  # 18 units: T-18
    task = await at_station(setup, "C10")
    await setup.inventory.take_from_tote("T-18", "SKU-A", 10, "damaged-1")  # 8 left
    problems = await setup.cp.settle(task, await setup.rec("C10"), ok=True)
    assert len(problems) == 1
    assert problems[0].startswith("tote T-18: ") and "cannot take 18" in problems[0]
    assert await tote_row(setup, "T-18") == (8, 0)
    assert not setup.cp.serves("C10")


async def test_returns_leave_out_totes_an_open_task_or_a_replenishment_still_needs(
    setup: Setup,
) -> None:
    await setup.order("C11", ("90", "SKU-A", 2, "case"))
    await at_station(setup, "C11", chute="VAS-2")  # T-12, its task still open
    await setup.inventory.tote_moved("T-18", "STATION:VAS-2", "moved-18")
    await setup.inventory.tote_moved("T-30", "STATION:VAS-2", "moved-30")
    held = setup.returns({"T-18"})  # T-18: a replenishment not yet put
    assert [r.tote for r in await held.returns("VAS-2")] == ["T-30"]
    assert await held.returns("VAS-1") == []
    with pytest.raises(LookupError):
        await held.send_back("VAS-2", "T-12")
    assert [r.tote for r in await setup.returns().returns("VAS-2")] == ["T-18", "T-30"]


# --- orders that end otherwise ------------------------------------------------------------------


async def test_a_cancelled_order_withdraws_waiting_retrieves_and_voids_its_totes(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup.order("C12", ("90", "SKU-A", 7, "case"))  # T-30 and T-12, both in aisle A1
    assert await setup.cp.release(await setup.rec("C12"), robot_part=False) is None
    await setup.flows.plan_once()  # one command at a time per aisle: T-30 is under way
    assert [c[3] for c in setup.cranes.calls] == ["T-30"]

    async with unwinding(setup.cp, monkeypatch) as unwound:
        await setup.history.record(await setup.rec("C12"), "cancelled", OrderStatus.CANCELLED)
        await unwound("C12")
    assert not setup.cp.serves("C12")
    assert waiting(setup) == {"T-30": "case_pick"}  # the crane has it: it goes on
    [gone] = await setup.store.asrs_requests(states=[RequestState.FAILED])
    assert (gone.tote, gone.reason) == ("T-12", "withdrawn")
    assert setup.inventory.tote_view()["SKU-A"] == {"T-12": 12, "T-18": 18, "T-30": 30}

    assert await setup.finish_last() == "T-30"  # out after the cancel: void, to the reject chute
    [trip] = setup.flight.case_totes("C12")
    assert trip.tote == "T-30" and trip.cancelled
    assert "case_tote_retrieved" not in await setup.steps("C12")


async def test_an_ended_order_is_unwound_once_and_its_totes_on_the_way_voided(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup.order("C16", ("90", "SKU-A", 7, "case"))
    assert await setup.cp.release(await setup.rec("C16"), robot_part=False) is None
    assert await setup.crane_done() == "T-30"
    [trip] = setup.flight.case_totes("C16")
    assert not trip.cancelled
    rec = await setup.history.record(await setup.rec("C16"), "cancelled", OrderStatus.CANCELLED)
    setup.cp.ended(rec)  # told again
    assert setup.cp._ended.qsize() == 1
    async with unwinding(setup.cp, monkeypatch) as unwound:
        await unwound("C16")
    assert not setup.cp.serves("C16")
    assert trip.cancelled
    assert setup.flows.open_requests() == []  # T-12 withdrawn, T-30 done
    assert setup.inventory.totals("SKU-A").reserved == 0


# --- restart ------------------------------------------------------------------------------------


async def test_restore_rebuilds_the_totes_states_and_tracks_those_on_the_conveyor(
    setup: Setup,
) -> None:
    await setup.order("C13", ("90", "SKU-A", 7, "case"))
    assert await setup.cp.release(await setup.rec("C13"), robot_part=False) is None
    assert await setup.crane_done() == "T-30"
    assert await setup.crane_done() == "T-12"
    [t12] = [t for t in setup.flight.case_totes("C13") if t.tote == "T-12"]
    assert await setup.cp.arrived(t12, await setup.rec("C13"), "VAS-2") is None

    cp = setup.fresh()
    rec = await setup.rec("C13")
    assert cp.restore(rec, await setup.store.history("C13"))
    co = cp.orders["C13"]
    assert {t: ct.state for t, ct in co.totes.items()} == {
        "T-30": "retrieved",
        "T-12": "at_station",
    }
    assert co.totes["T-30"].lines == [ToteLine("90", "SKU-A", "T-30", 30)]
    assert co.totes["T-30"].aisle == "A1"
    assert (co.station, co.robot_part, co.ended) == ("VAS-2", False, False)
    assert cp.released("C13") == frozenset({"90"}) and not cp.needs_robot("C13")
    assert cp.orders["C13"].totes_at_station() == ["T-12"]
    [trip] = cp.flight.case_totes("C13")
    assert (trip.trip_id, trip.tote, trip.induction, trip.cancelled) == (
        "case-C13-T-30",
        "T-30",
        "PD:A1",
        False,
    )

    ready = await cp.arrived(trip, rec, "VAS-2")  # the restarted controller carries on
    assert ready is not None and ready.totes == ["T-30", "T-12"]


async def test_restore_follows_the_robot_tote_until_the_order_is_requeued(setup: Setup) -> None:
    await setup.order("C14", ("10", "SKU-E", 3, "each"), ("90", "SKU-A", 2, "case"))
    assert await setup.cp.release(await setup.rec("C14"), robot_part=True) is None
    assert await setup.cp.arrived(robot_trip("C14"), await setup.rec("C14"), "VAS-1") is None

    cp = setup.fresh()
    assert cp.restore(await setup.rec("C14"), await setup.store.history("C14"))
    assert cp.needs_robot("C14") and cp.orders["C14"].totes_at_station() == ["RT-1"]
    assert cp.robot_tote_at_station("C14")  # not to be tracked on the conveyor again
    assert cp.orders["C14"].totes["T-12"].state == "requested"
    assert cp.flight.case_totes("C14") == []  # nothing of it on the conveyor yet

    await setup.history.record(await setup.rec("C14"), "requeued", OrderStatus.ACCEPTED)
    cp = setup.fresh()
    assert cp.restore(await setup.rec("C14"), await setup.store.history("C14"))
    assert cp.orders["C14"].robot_tote is None and cp.orders["C14"].totes_at_station() == []
    assert not cp.robot_tote_at_station("C14")
    assert cp.released("C14") == frozenset({"90"})


async def test_restore_of_an_order_without_case_picks_says_so(setup: Setup) -> None:
    await setup.order("C15", ("10", "SKU-E", 3, "each"))
    cp = setup.fresh()
    assert not cp.restore(await setup.rec("C15"), await setup.store.history("C15"))
    assert not cp.serves("C15") and cp.needs_robot("C15")


async def test_restore_keeps_the_totes_of_an_order_in_exception_void(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup.order("C17", ("90", "SKU-A", 7, "case"))
    assert await setup.cp.release(await setup.rec("C17"), robot_part=False) is None
    assert await setup.crane_done() == "T-30"  # on the conveyor
    [t12] = [r for r in setup.flows.open_requests() if r.tote == "T-12"]
    async with unwinding(setup.cp, monkeypatch) as unwound:
        await setup.cp.retrieve_failed(replace(t12, reason="crane fault"))
        await unwound("C17")
    assert not setup.cp.serves("C17")
    rec = await setup.rec("C17")
    assert rec.status is OrderStatus.EXCEPTION and rec.step == "exception"
    [before] = setup.flight.case_totes("C17")
    assert before.cancelled  # before the restart: void, to the reject chute

    cp = setup.fresh()
    cp.restore(
        rec, await setup.store.history("C17")
    )  # the orchestrator restores every active order
    [after] = cp.flight.case_totes("C17")
    assert after.tote == "T-30"
    assert after.cancelled


async def test_no_more_orders_than_max_case_orders_have_totes_out(setup: Setup) -> None:
    setup.cp.config = setup.config.model_copy(
        update={"asrs": setup.config.asrs.model_copy(update={"max_case_orders": 2})}
    )
    assert setup.cp.busy() is None
    for order_id in ("C30", "C31"):
        rec = await setup.order(order_id, ("90", "SKU-A", 1, "case"))
        assert await setup.cp.release(rec, robot_part=False) is None
    assert setup.cp.busy() == "asrs_busy: 2 orders' case totes out (at most 2)"
    setup.cp.ended(await setup.rec("C30"))  # an order that ends frees its place at once
    assert setup.cp.busy() is None


async def test_a_release_cut_short_by_a_restart_is_cleared_before_the_next(setup: Setup) -> None:
    # an earlier run reserved T-12 and asked for it, then stopped before recording the release
    rec = await setup.order("C32", ("90", "SKU-A", 2, "case"))
    await setup.inventory.reserve_totes("C32", [ToteLine("90", "SKU-A", "T-12", 12)], "case-C32")
    await setup.flows.request_retrieve("T-12", "case_pick", order_id="C32")
    assert await tote_row(setup, "T-12") == (12, 12)
    assert await setup.cp.release(rec, robot_part=False) is None
    # the leftovers are gone: one reservation and one request, for the tote the plan chose
    assert await tote_row(setup, "T-12") == (12, 12)
    assert [(r.tote, r.order_id) for r in setup.flows.open_requests()] == [("T-12", "C32")]
    steps = [e.type for e in await setup.store.history("C32")]
    assert steps.count("case_pick_released") == 1

"""B2B case picks at the station: the retrieved totes' way there on the conveyor, the task that
opens when all of an order's totes are in, the reject chute, the verification of the cases
taken and the totes' return to the AS/RS.

Each test gets the ``setup`` fixture of :mod:`tests.unit.case_picks_support`: real AsrsFlows,
Inventory and History over one SQLite file, only the cranes a recording stand-in.
"""

from __future__ import annotations

import pytest

from controller.asrs.returns import ReturnTote
from controller.orders.model import OrderStatus
from tests.unit.case_picks_support import (
    Setup,
    at_station,
    case_picks_setup,  # noqa: F401 (the setup fixture)
    robot_trip,
    tote_row,
    unwinding,
)

# --- on the way, at the station -----------------------------------------------------------------


async def test_a_retrieved_case_tote_rides_the_conveyor_to_the_order(setup: Setup) -> None:
    await setup.order("C5", ("90", "SKU-A", 2, "case"))
    assert await setup.cp.release(await setup.rec("C5"), robot_part=False) is None
    assert await setup.crane_done() == "T-12"

    [trip] = setup.flight.case_totes("C5")
    assert setup.flight.by_tote["T-12"] is trip
    assert (trip.trip_id, trip.induction, trip.destination, trip.b2b, trip.void) == (
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

"""B2B case picks of orders that end otherwise than by verification (cancelled, in exception):
waiting retrieves withdrawn, reservations given back, totes on the way voided - also after a
restart.

Each test gets the ``setup`` fixture of :mod:`tests.unit.case_picks_support`: real AsrsFlows,
Inventory and History over one SQLite file, only the cranes a recording stand-in.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from controller.orders.model import OrderStatus
from controller.store.asrs import RequestState
from tests.unit.case_picks_support import (
    Setup,
    case_picks_setup,  # noqa: F401 (the setup fixture)
    unwinding,
    waiting,
)


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
    assert trip.tote == "T-30" and trip.void
    assert "case_tote_retrieved" not in await setup.steps("C12")


async def test_an_ended_order_is_unwound_once_and_its_totes_on_the_way_voided(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup.order("C16", ("90", "SKU-A", 7, "case"))
    assert await setup.cp.release(await setup.rec("C16"), robot_part=False) is None
    assert await setup.crane_done() == "T-30"
    [trip] = setup.flight.case_totes("C16")
    assert not trip.void
    rec = await setup.history.record(await setup.rec("C16"), "cancelled", OrderStatus.CANCELLED)
    setup.cp.ended(rec)  # told again
    assert setup.cp.recovery.to_unwind.qsize() == 1
    async with unwinding(setup.cp, monkeypatch) as unwound:
        await unwound("C16")
    assert not setup.cp.serves("C16")
    assert trip.void
    assert setup.flows.open_requests() == []  # T-12 withdrawn, T-30 done
    assert setup.inventory.totals("SKU-A").reserved == 0


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
    assert before.void  # before the restart: void, to the reject chute

    cp = setup.fresh()
    cp.restore(
        rec, await setup.store.history("C17")
    )  # the orchestrator restores every active order
    [after] = cp.flight.case_totes("C17")
    assert after.tote == "T-30"
    assert after.void

"""B2B case picks after a restart: the state of an order's totes rebuilt from its history, the
robot's tote followed until the order is requeued, and a release cut short cleared before the
next.

Each test gets the ``setup`` fixture of :mod:`tests.unit.case_picks_support`: real AsrsFlows,
Inventory and History over one SQLite file, only the cranes a recording stand-in.
"""

from __future__ import annotations

from controller.orders.model import OrderStatus
from controller.store.inventory import ToteLine
from tests.unit.case_picks_support import (
    Setup,
    case_picks_setup,  # noqa: F401 (the setup fixture)
    robot_trip,
    tote_row,
)


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
    assert (trip.trip_id, trip.tote, trip.induction, trip.void) == (
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

"""Replenishment of robot pick locations after a task starts: the tote's way to the chute and
the ways a task ends on it, the put confirmed as one inventory transaction, and the tasks rebuilt
from the open tote reservations after a restart, wherever they were on that way.

Each test gets the ``setup`` fixture of :mod:`tests.unit.replenishment_support`: real
AsrsFlows and Inventory over one SQLite file, only the cranes a recording stand-in.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from controller.asrs.replenishment import UnknownReplenishment
from controller.line import topology
from controller.store.inventory import ToteLine
from tests.unit.replenishment_support import (
    CHUTE,
    Setup,
    at_chute,
    replenishment_setup,  # noqa: F401 (the setup fixture)
    started,
)

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

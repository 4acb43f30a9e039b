"""Replenishment of robot pick locations: when a task starts and which tote it brings - the
location's level and target, the tote closest to what is missing, totes busy, in use or out of
the rack, a refused retrieve, and a line without a replenishment chute.

Each test gets the ``setup`` fixture of :mod:`tests.unit.replenishment_support`: real
AsrsFlows and Inventory over one SQLite file, only the cranes a recording stand-in.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.asrs.replenishment import Replenishment, ReplenishTask
from controller.linefile.checks import cross_check
from controller.store.inventory import ToteLine
from kernel.config.model import ChuteKind
from tests.unit.replenishment_support import (
    CHUTE,
    START,
    Setup,
    replenishment_setup,  # noqa: F401 (the setup fixture)
    started,
)


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

"""B2B case picks: the tote plan (which rack totes cover an order's cases), the release to the
AS/RS with its reservations and requests, its undoing when a request is refused, and the limit
on orders with totes out.

Each test gets the ``setup`` fixture of :mod:`tests.unit.case_picks_support`: real AsrsFlows,
Inventory and History over one SQLite file, only the cranes a recording stand-in.
"""

from __future__ import annotations

import pytest

from controller.orders.model import OrderLine, OrderStatus
from controller.orders.waiting import AsrsStockShort, AsrsUnavailable
from controller.store.asrs import RequestState
from controller.store.inventory import ToteLine
from tests.unit.case_picks_support import (
    DUE,
    WINDOW,
    Setup,
    case_picks_setup,  # noqa: F401 (the setup fixture)
    planned,
    waiting,
)

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
    assert planned(await setup.cp.releases.plan([line])) == expected


async def test_plan_short_of_stock_names_what_is_missing(setup: Setup) -> None:
    line = OrderLine(line_id="90", sku="SKU-A", quantity=11, uom="case")  # 66 of 60 in totes
    plan = await setup.cp.releases.plan([line])
    assert isinstance(plan, AsrsStockShort)
    # what the rack totes hold, not the SKU's loose stock at pick locations
    assert (
        plan.render() == "stock_short: SKU-A missing 6 in the AS/RS (60 units free in rack totes)"
    )


async def test_plan_skips_busy_totes_totes_out_of_the_rack_and_reserved_ones(
    setup: Setup,
) -> None:
    two = [OrderLine(line_id="90", sku="SKU-A", quantity=2, uom="case")]  # 12 units
    await setup.flows.request_retrieve("T-12", "replenish", order_id="RPL-X")  # busy
    assert planned(await setup.cp.releases.plan(two)) == [("90", "T-18", 12)]
    await setup.inventory.tote_moved("T-18", "STATION:VAS-2", "moved-1")  # not in the rack
    assert planned(await setup.cp.releases.plan(two)) == [("90", "T-30", 12)]
    await setup.inventory.reserve_totes("O-9", [ToteLine("1", "SKU-A", "T-30", 25)])
    plan = await setup.cp.releases.plan(two)  # T-30 has 5 free: not enough, nothing else is free
    assert isinstance(plan, AsrsStockShort)
    assert plan.render().startswith("stock_short: SKU-A missing 7 in the AS/RS")


async def test_two_lines_of_one_sku_share_a_tote_that_holds_both(setup: Setup) -> None:
    lines = [
        OrderLine(line_id="1", sku="SKU-B", quantity=1, uom="case"),
        OrderLine(line_id="2", sku="SKU-B", quantity=1, uom="case"),
    ]
    # T-B holds 4 units, the order asks for 2
    assert planned(await setup.cp.releases.plan(lines)) == [("1", "T-B", 1), ("2", "T-B", 1)]


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
    assert why is not None
    assert why.render() == "stock_short: SKU-B missing 1 in the AS/RS (4 units free in rack totes)"
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

    assert isinstance(why, AsrsUnavailable)
    assert why.render().startswith("asrs_unavailable: tote T-12 already has an open")
    assert waiting(setup) == {"T-12": "replenish"}  # only the other flow's request
    [withdrawn] = [
        r for r in await setup.store.asrs_requests(states=[RequestState.FAILED]) if r.tote == "T-30"
    ]
    assert (withdrawn.order_id, withdrawn.reason) == ("C4", "withdrawn")
    assert setup.inventory.tote_view()["SKU-A"] == {"T-12": 12, "T-18": 18, "T-30": 30}
    assert not setup.cp.serves("C4")
    assert await setup.steps("C4") == ["accepted"]


async def test_no_more_orders_than_max_case_orders_have_totes_out(setup: Setup) -> None:
    setup.cp.config = setup.config.model_copy(
        update={"asrs": setup.config.asrs.model_copy(update={"max_case_orders": 2})}
    )
    assert setup.cp.busy() is None
    for order_id in ("C30", "C31"):
        rec = await setup.order(order_id, ("90", "SKU-A", 1, "case"))
        assert await setup.cp.release(rec, robot_part=False) is None
    busy = setup.cp.busy()
    assert busy is not None and busy.render() == "asrs_busy: 2 orders' case totes out (at most 2)"
    setup.cp.ended(await setup.rec("C30"))  # an order that ends frees its place at once
    assert setup.cp.busy() is None

"""The live inventory over a real store on every engine (SQLite, PostgreSQL): confirmed events
only, a ledger for every change, reservations within what is available, idempotent
confirmations, a restart keeps the stock."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.line.inventory import Inventory
from controller.store.inventory import InsufficientStock, NegativeStock
from controller.store.sql.store import SqlStore
from kernel.clock import ManualClock
from kernel.config.model import AsrsTote, LineConfig, Sku, StockEntry
from kernel.metrics import Metrics
from routing.dispatch import Pick
from tests.store_backends import StoreBackend
from tests.store_sql import run_sql


def small_line(reference_line: LineConfig) -> LineConfig:
    """Two pick locations of the reference line with a few units, and one AS/RS tote."""
    locations = [loc.id for loc in reference_line.robots.storage_locations][:2]
    return reference_line.model_copy(
        update={
            "skus": [Sku(sku="SKU-A", low_stock=5), Sku(sku="SKU-B", low_stock=0)],
            "stock": [
                StockEntry(location=locations[0], sku="SKU-A", quantity=6),
                StockEntry(location=locations[1], sku="SKU-B", quantity=4),
            ],
            "asrs": reference_line.asrs.model_copy(
                update={
                    "totes": [AsrsTote(tote="T1", location="A1-L-01-01", sku="SKU-A", quantity=10)]
                }
            ),
        }
    )


async def opened(config: LineConfig, backend: StoreBackend) -> tuple[SqlStore, Inventory]:
    store = backend.new()
    await store.open()
    inventory = Inventory(config, store, ManualClock(), Metrics())
    await inventory.open()
    return store, inventory


@pytest.fixture
def line(reference_line: LineConfig) -> LineConfig:
    return small_line(reference_line)


@pytest.fixture
async def inv(line: LineConfig, store_backend: StoreBackend) -> AsyncIterator[Inventory]:
    store, inventory = await opened(line, store_backend)
    try:
        yield inventory
    finally:
        await store.close()


@contextmanager
def fresh_database(engine: str) -> Iterator[StoreBackend]:
    """A new, empty database of the engine, dropped after: one per example of a property test
    (hypothesis runs many examples in one test, so the test's own database would carry over)."""
    with tempfile.TemporaryDirectory() as tmp:
        backend = StoreBackend(engine, Path(tmp))
        try:
            yield backend
        finally:
            backend.cleanup()


def loc(line: LineConfig, i: int) -> str:
    return line.stock[i].location


def pick(line: LineConfig, quantity: int, line_id: str = "1") -> Pick:
    location = loc(line, 0)
    node = {s.id: s.node for s in line.robots.storage_locations}[location]
    return Pick(line_id, "SKU-A", location, node, quantity)


def ledger_matches(backend: StoreBackend) -> None:
    """Every (location, tote, SKU): the ledger's deltas add up to on-hand; none negative."""
    sums = {
        (r[0], r[1], r[2]): r[3]
        for r in run_sql(
            backend,
            "SELECT location, tote, sku, SUM(delta) FROM stock_movements"
            " GROUP BY location, tote, sku",
        )
    }
    stock = {
        (r[0], r[1], r[2]): r[3]
        for r in run_sql(backend, "SELECT location, tote, sku, on_hand FROM stock")
    }
    for key in sums.keys() | stock.keys():
        assert sums.get(key, 0) == stock.get(key, 0), key
        assert stock.get(key, 0) >= 0


async def test_initial_load_fills_the_view_of_pick_locations(
    inv: Inventory, line: LineConfig
) -> None:
    assert inv.view() == {"SKU-A": {loc(line, 0): 6}, "SKU-B": {loc(line, 1): 4}}
    assert inv.totals("SKU-A").on_hand == 16  # the tote in the AS/RS counts too
    rows = await inv.rows(sku="SKU-A")
    assert {(r.location, r.tote, r.on_hand) for r in rows} == {
        (loc(line, 0), None, 6),
        ("A1-L-01-01", "T1", 10),
    }


async def test_restart_keeps_stock_and_does_not_load_the_line_file_again(
    line: LineConfig, store_backend: StoreBackend
) -> None:
    store, inv = await opened(line, store_backend)
    await inv.reserve("O1", [pick(line, 2)], "trip-1")
    await inv.confirm_pick("O1", "trip-1", pick(line, 2), 2, "act-1")
    await inv.reserve("O2", [pick(line, 1)], "trip-2")  # open when the controller stops
    await store.close()

    store, inv = await opened(line, store_backend)
    try:
        assert inv.view()["SKU-A"][loc(line, 0)] == 4  # picked units gone, reservation freed
        initial = await inv.movements(sku="SKU-A")
        assert [m.kind.value for m in initial].count("initial_load") == 2
        ledger_matches(store_backend)
    finally:
        await store.close()


async def test_reservation_is_all_or_nothing(inv: Inventory, line: LineConfig) -> None:
    other = Pick("2", "SKU-B", loc(line, 1), pick(line, 1).node, 5)  # only 4 there
    with pytest.raises(InsufficientStock, match="on hand 4, reserved 0"):
        await inv.reserve("O1", [pick(line, 2), other], "trip-1")
    assert inv.view()["SKU-A"][loc(line, 0)] == 6
    await inv.reserve("O1", [pick(line, 6)], "trip-1")
    with pytest.raises(InsufficientStock):
        await inv.reserve("O2", [pick(line, 1)], "trip-2")
    await inv.release("O1", [pick(line, 6)], "trip-1")
    assert inv.view()["SKU-A"][loc(line, 0)] == 6


async def test_confirmed_pick_is_applied_once(
    inv: Inventory, line: LineConfig, store_backend: StoreBackend
) -> None:
    await inv.reserve("O1", [pick(line, 3)], "trip-1")
    first = await inv.confirm_pick("O1", "trip-1", pick(line, 3), 3, "act-1")
    again = await inv.confirm_pick("O1", "trip-1", pick(line, 3), 3, "act-1")
    assert not first.duplicate and again.duplicate and first.short == 0
    assert inv.totals("SKU-A").on_hand == 13
    assert inv.view()["SKU-A"][loc(line, 0)] == 3
    picks = await inv.movements(sku="SKU-A", after=0)
    assert [m.kind.value for m in picks].count("robot_pick_confirmed") == 1
    ledger_matches(store_backend)


async def test_short_pick_has_a_reason_and_frees_nothing_twice(
    inv: Inventory, line: LineConfig
) -> None:
    await inv.reserve("O1", [pick(line, 3)], "trip-1")
    outcome = await inv.confirm_pick("O1", "trip-1", pick(line, 3), 1, "act-1")
    assert outcome.short == 2
    assert outcome.reason == f"short pick: SKU SKU-A at {loc(line, 0)}: picked 1 of 3"
    await inv.release("O1", [pick(line, 3)], "trip-1")  # the trip ends: nothing left to free
    assert inv.view()["SKU-A"][loc(line, 0)] == 5
    events = [e.type for e in await inv.events()]
    assert "short_pick" in events


async def test_on_hand_never_goes_negative(inv: Inventory, line: LineConfig) -> None:
    await inv.count(loc(line, 0), "SKU-A", 1, "op-1")
    with pytest.raises(NegativeStock, match="on hand 1, cannot take 2"):
        await inv.confirm_pick("O1", "trip-1", pick(line, 2), 2, "act-1")
    assert inv.totals("SKU-A").on_hand == 11


async def test_low_stock_is_raised_once_and_cleared(inv: Inventory, line: LineConfig) -> None:
    await inv.take_from_tote("T1", "SKU-A", 10, "cmd-1")  # 6 left, level 5
    await inv.count(loc(line, 0), "SKU-A", 4, "op-1")  # 4: low
    await inv.count(loc(line, 0), "SKU-A", 3, "op-1")  # still low: no second alert
    types = [(e.type, e.sku) for e in await inv.events() if e.type.startswith("low_stock")]
    assert types == [("low_stock", "SKU-A")]
    assert inv.metrics.registry.get_sample_value("linectl_low_stock_skus") == 1
    await inv.put_to_location(loc(line, 0), "SKU-A", 10, "put-1")
    kinds = [e.type for e in await inv.events() if e.type.startswith("low_stock")]
    assert kinds == ["low_stock", "low_stock_cleared"]
    assert inv.metrics.registry.get_sample_value("linectl_low_stock_skus") == 0


async def test_tote_moves_with_its_contents(
    inv: Inventory, line: LineConfig, store_backend: StoreBackend
) -> None:
    await inv.tote_retrieved("T1", "PD:A1", "cmd-1")
    await inv.tote_retrieved("T1", "PD:A1", "cmd-1")  # repeated completion: applied once
    await inv.tote_moved("T1", "STATION:VAS-1", "conv-1")
    await inv.take_from_tote("T1", "SKU-A", 4, "take-1")
    await inv.put_to_location(loc(line, 0), "SKU-A", 4, "put-1")
    await inv.tote_stored("T1", "A1-L-02-02", "cmd-2")
    rows = await inv.rows(sku="SKU-A")
    assert {(r.location, r.tote, r.on_hand) for r in rows} == {
        (loc(line, 0), None, 10),
        ("A1-L-02-02", "T1", 6),
    }
    kinds = [m.kind.value for m in await inv.movements(sku="SKU-A")]
    assert kinds.count("crane_retrieve_confirmed") == 2  # out of the rack, onto the P&D
    ledger_matches(store_backend)


async def test_reconcile_records_differences_without_inventing_stock(inv: Inventory) -> None:
    before = inv.totals("SKU-A")
    found = await inv.reconcile_asrs({"A1-L-01-01": None, "A1-L-04-04": None})
    assert [(d.kind, d.location) for d in found] == [("tote_missing", "A1-L-01-01")]
    found = await inv.reconcile_asrs({"A1-L-01-01": "T1", "A1-L-03-03": "T9"})
    assert [(d.kind, d.reported_tote) for d in found] == [("unexpected_tote", "T9")]
    await inv.tote_retrieved("T1", "PD:A1", "cmd-1")
    found = await inv.reconcile_asrs({"A1-L-05-05": "T1"})
    assert [(d.kind, d.expected_location) for d in found] == [("tote_elsewhere", "PD:A1")]
    assert inv.totals("SKU-A") == before
    assert [e.type for e in await inv.events()].count("asrs_difference") == 3


# --- random sequences ---------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "release", "pick", "count", "take", "put", "move"]),
        st.integers(min_value=0, max_value=8),  # quantity
        st.integers(min_value=0, max_value=3),  # order / trip number
        st.integers(min_value=0, max_value=5),  # event reference (repeats are duplicates)
    ),
    max_size=30,
)
# examples of a property test per engine: each makes a database of its own, which on PostgreSQL
# (a schema created, migrated and dropped) takes several times as long as a SQLite file
EXAMPLES = {"sqlite": 25, "postgresql": 10}


def test_random_sequences_keep_the_invariants(
    reference_line: LineConfig, store_backend: StoreBackend
) -> None:
    line = small_line(reference_line)

    async def run(backend: StoreBackend, ops: list[tuple[str, int, int, int]]) -> None:
        store, inv = await opened(line, backend)
        try:
            for op, qty, n, ref in ops:
                order, trip, pk = f"O{n}", f"trip-{n}", pick(line, max(qty, 1))
                available = inv.view()["SKU-A"][loc(line, 0)]
                try:
                    if op == "reserve":
                        await inv.reserve(order, [pk], trip)
                        assert pk.quantity <= available
                    elif op == "release":
                        await inv.release(order, [pk], trip)
                    elif op == "pick":
                        await inv.confirm_pick(order, trip, pk, qty, f"act-{ref}")
                    elif op == "count":
                        await inv.count(loc(line, 0), "SKU-A", qty, "op", ref=f"count-{ref}")
                    elif op == "take":
                        await inv.take_from_tote("T1", "SKU-A", qty, f"take-{ref}")
                    elif op == "put":
                        await inv.put_to_location(loc(line, 0), "SKU-A", qty, f"put-{ref}")
                    else:
                        await inv.tote_moved("T1", f"PLACE-{qty}", f"move-{ref}")
                except InsufficientStock:
                    assert pk.quantity > available
                except NegativeStock:
                    pass
                for row in await inv.rows(sku="SKU-A"):
                    assert row.on_hand >= 0
                mirror = inv.view()["SKU-A"][loc(line, 0)]
                truth = [r for r in await inv.rows(location=loc(line, 0)) if r.tote is None]
                assert mirror == truth[0].available
        finally:
            await store.close()
        ledger_matches(backend)

    @settings(max_examples=EXAMPLES[store_backend.name], deadline=None)
    @given(ops=OPS)
    def check(ops: list[tuple[str, int, int, int]]) -> None:
        with fresh_database(store_backend.name) as backend:
            asyncio.run(run(backend, ops))

    check()

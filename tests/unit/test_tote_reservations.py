"""Reservations in AS/RS totes over a real store on every engine (SQLite, PostgreSQL): all lines
or none within what the tote holds, the reservation follows the tote to a station, the units
counted out there consume it once, a restart keeps it while loose reservations are given back,
and the ledger stays whole; and the SQLite migration that made reservations loose ones."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.line.inventory import Inventory
from controller.store.inventory import (
    InsufficientStock,
    InventoryError,
    NegativeStock,
    ToteLine,
    UnknownTote,
)
from controller.store.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from controller.store.sqlite.store import SqliteOrderStore
from kernel.config.model import AsrsTote, LineConfig
from tests.store_backends import StoreBackend
from tests.unit.test_inventory import (
    EXAMPLES,
    fresh_database,
    ledger_matches,
    loc,
    opened,
    pick,
    small_line,
)


def tote_line(reference_line: LineConfig) -> LineConfig:
    """The small line with three totes: T1 (10 SKU-A), T2 (5 SKU-A), T3 (3 SKU-B)."""
    line = small_line(reference_line)
    totes = [
        AsrsTote(tote="T1", location="A1-L-01-01", sku="SKU-A", quantity=10),
        AsrsTote(tote="T2", location="A1-L-01-02", sku="SKU-A", quantity=5),
        AsrsTote(tote="T3", location="A1-L-01-03", sku="SKU-B", quantity=3),
    ]
    return line.model_copy(update={"asrs": line.asrs.model_copy(update={"totes": totes})})


@pytest.fixture
def line(reference_line: LineConfig) -> LineConfig:
    return tote_line(reference_line)


@pytest.fixture
async def inv(line: LineConfig, store_backend: StoreBackend) -> AsyncIterator[Inventory]:
    store, inventory = await opened(line, store_backend)
    try:
        yield inventory
    finally:
        await store.close()


def gauge(inv: Inventory, state: str) -> float | None:
    return inv.metrics.registry.get_sample_value("linectl_stock_units", {"state": state})


async def reserved_in(inv: Inventory, tote: str) -> int:
    return sum(r.reserved for r in await inv.rows() if r.tote == tote)


async def test_tote_reservation_is_all_or_nothing_and_shows_everywhere(
    inv: Inventory, line: LineConfig
) -> None:
    assert inv.tote_view() == {"SKU-A": {"T1": 10, "T2": 5}, "SKU-B": {"T3": 3}}
    with pytest.raises(InsufficientStock, match="tote T2 at A1-L-01-02: on hand 5, reserved 0"):
        await inv.reserve_totes(
            "O1", [ToteLine("1", "SKU-A", "T1", 4), ToteLine("2", "SKU-A", "T2", 6)]
        )
    with pytest.raises(UnknownTote, match="holds no SKU SKU-B"):
        await inv.reserve_totes(
            "O1", [ToteLine("1", "SKU-A", "T1", 4), ToteLine("2", "SKU-B", "T1", 1)]
        )
    with pytest.raises(UnknownTote):
        await inv.reserve_totes("O1", [ToteLine("1", "SKU-A", "T9", 1)])
    assert await reserved_in(inv, "T1") == 0  # nothing of the refused calls stayed

    await inv.reserve_totes(
        "O1", [ToteLine("1", "SKU-A", "T1", 4), ToteLine("2", "SKU-A", "T1", 3)]
    )
    with pytest.raises(InsufficientStock, match="reserved 7, cannot reserve 4 more"):
        await inv.reserve_totes("O2", [ToteLine("1", "SKU-A", "T1", 4)], "req-2")
    await inv.reserve_totes("O2", [ToteLine("1", "SKU-A", "T1", 3)], "req-2")

    assert inv.tote_view()["SKU-A"] == {"T1": 0, "T2": 5}
    assert await reserved_in(inv, "T1") == 10
    assert inv.totals("SKU-A").reserved == 10
    assert inv.totals("SKU-A").available == 11  # 6 loose + 5 in T2
    assert inv.view()["SKU-A"] == {loc(line, 0): 6}  # loose stock is not touched
    assert (gauge(inv, "reserved"), gauge(inv, "available")) == (10, 18)

    await inv.reserve("O3", [pick(line, 6)], "trip-3")  # loose reservations are their own
    assert inv.view()["SKU-A"][loc(line, 0)] == 0
    assert inv.tote_view()["SKU-A"]["T2"] == 5


async def test_reservation_follows_the_tote_and_the_pick_consumes_it_once(
    inv: Inventory, store_backend: StoreBackend
) -> None:
    await inv.reserve_totes("O1", [ToteLine("1", "SKU-A", "T1", 4)], "req-1")
    assert inv.tote_location("T1") == "A1-L-01-01"
    await inv.tote_retrieved("T1", "PD:A1", "cmd-1")
    await inv.tote_moved("T1", "CONVEYOR", "conv-1")
    await inv.tote_moved("T1", "STATION:VAS-1", "conv-2")
    assert inv.tote_location("T1") == "STATION:VAS-1"
    assert inv.tote_location("T9") is None
    [row] = await inv.rows(location="STATION:VAS-1")
    assert (row.tote, row.on_hand, row.reserved) == ("T1", 10, 4)
    assert inv.tote_view()["SKU-A"]["T1"] == 6

    first = await inv.confirm_tote_pick("O1", "1", "T1", "SKU-A", 4, "count-1")
    again = await inv.confirm_tote_pick("O1", "1", "T1", "SKU-A", 4, "count-1")
    assert (first.reserved, first.picked, first.short, first.duplicate) == (4, 4, 0, False)
    assert (first.location, first.tote) == ("STATION:VAS-1", "T1")
    assert again.duplicate and again.picked == 4
    [row] = await inv.rows(location="STATION:VAS-1")
    assert (row.on_hand, row.reserved) == (6, 0)
    assert inv.tote_view()["SKU-A"]["T1"] == 6
    picks = [m for m in await inv.movements(sku="SKU-A") if m.kind.value == "tote_pick_confirmed"]
    assert [(m.ref, m.order_id, m.tote, m.delta, m.on_hand) for m in picks] == [
        ("count-1", "O1", "T1", -4, 6)
    ]
    ledger_matches(store_backend)


async def test_short_tote_pick_has_a_reason_and_frees_the_rest(inv: Inventory) -> None:
    await inv.reserve_totes("O1", [ToteLine("1", "SKU-A", "T2", 5)])
    outcome = await inv.confirm_tote_pick("O1", "1", "T2", "SKU-A", 3, "count-1")
    assert outcome.short == 2
    assert outcome.reason == "short pick: SKU SKU-A in tote T2 at A1-L-01-02: picked 3 of 5"
    assert inv.metrics.registry.get_sample_value("linectl_short_picks_total") == 1
    await inv.release("O1")  # the order ends: nothing left to give back
    assert inv.tote_view()["SKU-A"]["T2"] == 2
    [event] = [e for e in await inv.events() if e.type == "short_pick"]
    assert (event.location, event.data["tote"], event.data["short"]) == ("A1-L-01-02", "T2", 2)


async def test_tote_pick_never_takes_more_than_on_hand(
    inv: Inventory, store_backend: StoreBackend
) -> None:
    await inv.reserve_totes("O1", [ToteLine("1", "SKU-B", "T3", 3)])
    with pytest.raises(NegativeStock, match="on hand 3, cannot take 4"):
        await inv.confirm_tote_pick("O1", "1", "T3", "SKU-B", 4, "count-1")
    [row] = [r for r in await inv.rows(sku="SKU-B") if r.tote == "T3"]
    assert (row.on_hand, row.reserved) == (3, 3)
    outcome = await inv.confirm_tote_pick("O1", "1", "T3", "SKU-B", 3, "count-1")
    assert not outcome.duplicate and outcome.short == 0  # the refused try was not recorded
    await inv.take_from_tote("T3", "SKU-B", 0, "take-1")
    with pytest.raises(InventoryError, match="applied as a plain tote adjustment"):
        await inv.confirm_tote_pick("O1", "1", "T3", "SKU-B", 0, "take-1")
    ledger_matches(store_backend)


async def test_tote_pick_checks_low_stock(inv: Inventory, line: LineConfig) -> None:
    await inv.count(loc(line, 0), "SKU-A", 0, "op-1")  # 15 left in the totes, level 5
    await inv.reserve_totes("O1", [ToteLine("1", "SKU-A", "T1", 10)])
    await inv.confirm_tote_pick("O1", "1", "T1", "SKU-A", 10, "count-1")
    assert [e for e in await inv.events() if e.type == "low_stock"] == []  # 5: at the level
    await inv.reserve_totes("O2", [ToteLine("1", "SKU-A", "T2", 1)])
    await inv.confirm_tote_pick("O2", "1", "T2", "SKU-A", 1, "count-2")
    low = [(e.type, e.data["on_hand"]) for e in await inv.events() if e.type == "low_stock"]
    assert low == [("low_stock", 4)]


async def test_release_gives_back_tote_reservations_of_the_order(
    inv: Inventory, line: LineConfig
) -> None:
    await inv.reserve_totes(
        "O1", [ToteLine("1", "SKU-A", "T1", 2), ToteLine("2", "SKU-A", "T2", 1)], "req-1"
    )
    await inv.reserve_totes("O1", [ToteLine("3", "SKU-B", "T3", 1)], "req-3")
    await inv.reserve("O1", [pick(line, 1)], "trip-1")
    await inv.reserve_totes("O2", [ToteLine("1", "SKU-A", "T1", 5)])

    await inv.release("O1", tote="T2")
    assert inv.tote_view()["SKU-A"] == {"T1": 3, "T2": 5}
    await inv.release("O1", [pick(line, 1)], "trip-1")  # loose picks leave the totes alone
    assert inv.view()["SKU-A"][loc(line, 0)] == 6
    assert inv.tote_view()["SKU-A"]["T1"] == 3
    await inv.release("O1", trip_id="req-3")  # one transport's reservations
    assert inv.tote_view()["SKU-B"]["T3"] == 3
    assert inv.tote_view()["SKU-A"]["T1"] == 3
    await inv.release("O1")  # cancelled: everything of the order
    assert inv.tote_view()["SKU-A"] == {"T1": 5, "T2": 5}  # O2 keeps its 5
    with pytest.raises(ValueError, match="not both"):
        await inv.release("O2", [pick(line, 1)], tote="T1")


async def test_restart_keeps_tote_reservations_and_frees_loose_ones(
    line: LineConfig, store_backend: StoreBackend
) -> None:
    store, inv = await opened(line, store_backend)
    await inv.reserve_totes("O1", [ToteLine("1", "SKU-A", "T1", 4)], "req-1")
    await inv.reserve("O2", [pick(line, 2)], "trip-2")
    await inv.tote_retrieved("T1", "PD:A1", "cmd-1")
    await store.close()

    store, inv = await opened(line, store_backend)
    try:
        assert inv.view()["SKU-A"][loc(line, 0)] == 6
        assert inv.tote_view()["SKU-A"]["T1"] == 6
        assert inv.tote_location("T1") == "PD:A1"
        outcome = await inv.confirm_tote_pick("O1", "1", "T1", "SKU-A", 4, "count-1")
        assert (outcome.reserved, outcome.short) == (4, 0)
        ledger_matches(store_backend)
    finally:
        await store.close()


async def test_migration_keeps_open_reservations_as_loose(line: LineConfig, tmp_path: Path) -> None:
    path = tmp_path / "line.db"
    conn = sqlite3.connect(path)
    for statements in MIGRATIONS[:4]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (4)")
    ts = datetime(2024, 1, 1, tzinfo=UTC).isoformat()
    conn.execute("INSERT INTO stock VALUES ('L1', '', 'SKU-A', 5, ?)", (ts,))
    conn.execute(
        "INSERT INTO reservations (order_id, trip_id, line_id, sku, location, quantity, state,"
        " created_at, updated_at) VALUES ('O1', 'trip-1', '1', 'SKU-A', 'L1', 2, 'reserved', ?, ?)",
        (ts, ts),
    )
    conn.commit()
    conn.close()

    store = SqliteOrderStore(path)
    await store.open()
    try:
        [row] = await store.inventory_stock(location="L1")
        assert (row.on_hand, row.reserved) == (5, 2)
        assert await store.inventory_release_open(datetime.now(UTC), "restart") == 1
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT tote FROM reservations").fetchall() == [("",)]
    finally:
        conn.close()


# --- random sequences ---------------------------------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "release", "release_tote", "pick", "take", "move"]),
        st.integers(min_value=0, max_value=8),  # quantity
        st.integers(min_value=0, max_value=2),  # order number
        st.sampled_from(["T1", "T2"]),
        st.integers(min_value=0, max_value=5),  # event reference (repeats are duplicates)
    ),
    max_size=30,
)


def test_random_tote_sequences_keep_the_invariants(
    reference_line: LineConfig, store_backend: StoreBackend
) -> None:
    line = tote_line(reference_line)

    async def run(backend: StoreBackend, ops: list[tuple[str, int, int, str, int]]) -> None:
        store, inv = await opened(line, backend)
        try:
            for op, qty, n, tote, ref in ops:
                order = f"O{n}"
                available = inv.tote_view().get("SKU-A", {}).get(tote, 0)
                try:
                    if op == "reserve":
                        await inv.reserve_totes(order, [ToteLine("1", "SKU-A", tote, max(qty, 1))])
                        assert max(qty, 1) <= available
                    elif op == "release":
                        await inv.release(order)
                    elif op == "release_tote":
                        await inv.release(order, tote=tote)
                    elif op == "pick":
                        await inv.confirm_tote_pick(order, "1", tote, "SKU-A", qty, f"pick-{ref}")
                    elif op == "take":
                        await inv.take_from_tote(tote, "SKU-A", qty, f"take-{ref}")
                    else:
                        await inv.tote_moved(tote, f"PLACE-{qty}", f"move-{ref}")
                except InsufficientStock:
                    assert max(qty, 1) > available
                except (NegativeStock, InventoryError):
                    pass
                truth = {r.tote: r for r in await inv.rows(sku="SKU-A") if r.tote is not None}
                assert all(r.on_hand >= 0 for r in truth.values())
                assert inv.tote_view().get("SKU-A", {}) == {
                    t: r.available for t, r in truth.items()
                }
                for t, r in truth.items():
                    assert inv.tote_location(t) == r.location
        finally:
            await store.close()
        ledger_matches(backend)

    @settings(max_examples=EXAMPLES[store_backend.name], deadline=None)
    @given(ops=OPS)
    def check(ops: list[tuple[str, int, int, str, int]]) -> None:
        with fresh_database(store_backend.name) as backend:
            asyncio.run(run(backend, ops))

    check()

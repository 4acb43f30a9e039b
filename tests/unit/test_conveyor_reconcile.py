"""Reconciling the controller's items with the conveyor's tracking table after it came back.

One seam: the sorter is a recording stand-in; the store is a real SQLite file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.conveyor.tracking import ConveyorReconciler
from controller.line.history import History
from controller.line.trips import InFlight, Trip
from controller.orders.model import OrderIn, OrderStatus
from controller.store.sqlite.store import SqliteOrderStore
from devices import base as dev
from devices.errors import CommandRejected, InvalidMessage
from devices.opcua.translate import journal_from_outputs, tracking_from_outputs
from kernel.clock import ManualClock
from kernel.metrics import Metrics

GRACE = 60.0


def b2c_order() -> OrderIn:
    return OrderIn.model_validate(
        {
            "type": "b2c",
            "due_at": "2026-03-02T16:00:00Z",
            "destination": "DHL",
            "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
        }
    )


class RecordingSorter:
    def __init__(self) -> None:
        self.diverts: list[tuple[str, str]] = []
        self.refuse = False

    async def run(self, events: object) -> None:  # pragma: no cover - not used
        raise NotImplementedError

    async def divert(self, item_id: str, chute_id: str) -> None:
        if self.refuse:
            raise CommandRejected("Divert: BadInvalidArgument")
        self.diverts.append((item_id, chute_id))

    async def command(self, name: str) -> None:  # pragma: no cover - not used
        raise NotImplementedError

    def snapshot(self) -> dev.ConveyorSnapshot:
        return dev.ConveyorSnapshot("C1", True, "Execute")


class Setup:
    def __init__(self, store: SqliteOrderStore, clock: ManualClock) -> None:
        self.store = store
        self.clock = clock
        self.metrics = Metrics()
        self.history = History(store, clock, self.metrics)
        self.flight = InFlight()
        self.sorter = RecordingSorter()
        self.reconciler = ConveyorReconciler(
            self.flight, self.sorter, self.history, self.metrics, clock, GRACE
        )

    async def on_conveyor(self, order_id: str, tote: str) -> Trip:
        _, rec = await self.store.create_order(order_id, b2c_order(), self.clock.utcnow())
        rec = await self.history.record(rec, "dropped", OrderStatus.IN_TRANSIT, step="on_conveyor")
        trip = Trip(
            f"trip-{order_id}", order_id, "R1", tote, (), "IN1", self.clock.utcnow(), "DHL", False
        )
        trip.drop()
        self.flight.start(f"job-{order_id}", [trip], {})
        return trip

    def tracking(self, *items: dev.BeltItem, reset: bool = False) -> dev.ConveyorTracking:
        return dev.ConveyorTracking("C1", items, self.clock.utcnow(), journal_reset=reset)

    def count(self, action: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "linectl_conveyor_reconciled_total", {"conveyor": "C1", "action": action}
        )
        return value or 0.0


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = SqliteOrderStore(tmp_path / "orders.db")
    await store.open()
    try:
        yield Setup(store, ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC)))
    finally:
        await store.close()


async def test_a_divert_the_conveyor_forgot_is_requested_again(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    item = setup.flight.item("C1-000001")
    item.tote, item.chute, item.passes = "T-1", "CH-DHL", 1
    await setup.reconciler.reconcile(
        setup.tracking(dev.BeltItem("C1-000001", "T-1", "Z06", True, None))
    )
    assert setup.sorter.diverts == [("C1-000001", "CH-DHL")]
    assert setup.count("divert_resent") == 1
    assert not setup.reconciler.missing


async def test_a_divert_the_conveyor_still_holds_is_not_sent_twice(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    item = setup.flight.item("C1-000001")
    item.tote, item.chute = "T-1", "CH-DHL"
    await setup.reconciler.reconcile(
        setup.tracking(dev.BeltItem("C1-000001", "T-1", "Z06", True, "CH-DHL"))
    )
    assert setup.sorter.diverts == []


async def test_a_tote_under_a_new_tracking_id_keeps_its_passes_and_divert(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    old = setup.flight.item("C1-000007")
    old.tote, old.chute, old.passes = "T-1", "CH-UPS", 2
    await setup.reconciler.reconcile(
        setup.tracking(dev.BeltItem("C1-000001", "T-1", "Z03", True, None))
    )
    assert "C1-000007" not in setup.flight.items
    new = setup.flight.items["C1-000001"]
    assert (new.tote, new.chute, new.passes) == ("T-1", "CH-UPS", 2)
    assert setup.sorter.diverts == [("C1-000001", "CH-UPS")]


async def test_a_refused_divert_leaves_the_tote_for_its_next_scan(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    item = setup.flight.item("C1-000001")
    item.tote, item.chute = "T-1", "CH-DHL"
    setup.sorter.refuse = True
    await setup.reconciler.reconcile(
        setup.tracking(dev.BeltItem("C1-000001", "T-1", "Z06", True, None))
    )
    assert setup.flight.items["C1-000001"].chute is None


async def test_a_tote_that_never_shows_up_puts_its_order_into_exception(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    await setup.reconciler.reconcile(setup.tracking(reset=True))
    assert set(setup.reconciler.missing) == {"T-1"}

    await setup.clock.advance(GRACE - 1)
    await setup.reconciler.check_missing()
    rec = await setup.history.get("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT  # still within the grace

    await setup.clock.advance(2)
    await setup.reconciler.check_missing()
    rec = await setup.history.get("O-1")
    assert rec is not None and rec.status is OrderStatus.EXCEPTION
    assert rec.waiting_reason is not None and "T-1" in rec.waiting_reason
    events = [e.type for e in await setup.store.history("O-1")]
    assert events[-1] == "tote_lost_on_conveyor"
    assert "T-1" not in setup.flight.by_tote
    assert setup.count("tote_lost") == 1


async def test_a_tote_scanned_within_the_grace_is_not_lost(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    await setup.reconciler.reconcile(setup.tracking())
    setup.flight.item("C1-000009").tote = "T-1"  # the robot's hand-over went through late
    await setup.clock.advance(GRACE + 1)
    await setup.reconciler.check_missing()
    rec = await setup.history.get("O-1")
    assert rec is not None and rec.status is OrderStatus.IN_TRANSIT
    assert not setup.reconciler.missing


async def test_a_tote_whose_arrival_was_read_back_is_not_missing(setup: Setup) -> None:
    await setup.on_conveyor("O-1", "T-1")
    replay = dev.ItemDiverted(
        "D1", "C1-000004", "CH-DHL", True, setup.clock.utcnow(), "T-1", 12, replayed=True
    )
    setup.reconciler.diverted(replay)
    assert setup.flight.items["C1-000004"].tote == "T-1"  # known to the sortation path
    await setup.reconciler.reconcile(setup.tracking())
    assert not setup.reconciler.missing
    assert "C1-000004" in setup.flight.items  # the sortation path removes it on arrival


async def test_items_the_conveyor_no_longer_tracks_are_forgotten(setup: Setup) -> None:
    setup.flight.item("C1-000001").tote = "GHOST"
    await setup.reconciler.reconcile(setup.tracking())
    assert setup.flight.items == {}


def test_tracking_outputs_are_checked() -> None:
    items = tracking_from_outputs(
        [["C1-000001", "C1-000002"], ["T-1", "T-2"], ["Z03", "Z01"], [True, False], ["", "VAS-1"]]
    )
    assert items == (
        dev.BeltItem("C1-000001", "T-1", "Z03", True, None),
        dev.BeltItem("C1-000002", "T-2", "Z01", False, "VAS-1"),
    )
    assert tracking_from_outputs([[], [], [], [], []]) == ()
    with pytest.raises(InvalidMessage, match="ToteIds"):
        tracking_from_outputs([["C1-000001"], [], ["Z03"], [True], [""]])
    with pytest.raises(InvalidMessage, match="outputs"):
        tracking_from_outputs([["C1-000001"]])
    with pytest.raises(InvalidMessage, match="OnBelt"):
        tracking_from_outputs([["C1-000001"], ["T-1"], ["Z03"], ["yes"], [""]])


def test_journal_outputs_are_checked_and_sorted() -> None:
    last, entries = journal_from_outputs(
        [7, [7, 6], ["C1-2", "C1-1"], ["T-2", "T-1"], ["CH-DHL", "VAS-1"], [True, False]]
    )
    assert last == 7
    assert [(e.sequence, e.tote_id, e.ok) for e in entries] == [(6, "T-1", False), (7, "T-2", True)]
    assert journal_from_outputs([0, None, None, None, None, None]) == (0, [])
    with pytest.raises(InvalidMessage, match="Last"):
        journal_from_outputs([-1, [], [], [], [], []])
    with pytest.raises(InvalidMessage, match="ChuteIds"):
        journal_from_outputs([1, [1], ["C1-1"], ["T-1"], [], [True]])


async def test_a_tote_found_only_in_the_journal_arrived_while_the_controller_was_away(
    setup: Setup,
) -> None:
    await setup.on_conveyor("O-1", "T-1")
    await setup.on_conveyor("O-2", "T-2")
    journal = (
        dev.DivertRecord(40, "C1-000003", "T-1", "CH-POST", False),  # an earlier, refused pass
        dev.DivertRecord(41, "C1-000003", "T-1", "CH-DHL", True),
        dev.DivertRecord(42, "C1-000009", "T-9", "CH-UPS", True),  # not ours
    )
    tracking = dev.ConveyorTracking(
        "C1",
        (dev.BeltItem("C1-000004", "T-2", "Z02", True, None),),
        setup.clock.utcnow(),
        journal=journal,
    )
    arrivals = await setup.reconciler.reconcile(tracking)
    assert [(a.item_id, a.tote_id, a.chute_id, a.ok, a.replayed) for a in arrivals] == [
        ("C1-000003", "T-1", "CH-DHL", True, True)
    ]
    assert arrivals[0].sequence == 41
    assert not setup.reconciler.missing  # T-1 arrived, T-2 is on the belt
    assert setup.flight.items["C1-000004"].tote == "T-2"


async def test_a_drop_booked_after_the_first_contact_finds_its_tote_already_delivered(
    setup: Setup,
) -> None:
    """A robot taken over at start reports its drop after the conveyor's first contact, whose
    journal already held the tote's arrival in its chute: the arrival is handed over then."""
    journal = (dev.DivertRecord(4, "C1-000003", "T-LATE", "CH-DHL", True),)
    first_contact = dev.ConveyorTracking("C1", (), setup.clock.utcnow(), journal=journal)
    assert await setup.reconciler.reconcile(first_contact) == []  # nothing known on the belt
    assert setup.reconciler.late_arrivals() == []
    await setup.on_conveyor("O-9", "T-LATE")  # the robot's drop, booked at its take-over
    [arrival] = setup.reconciler.late_arrivals()
    assert (arrival.tote_id, arrival.chute_id, arrival.item_id) == ("T-LATE", "CH-DHL", "C1-000003")
    assert arrival.replayed and arrival.sequence == 4
    assert setup.reconciler.late_arrivals() == []  # handed over once


async def test_an_arrival_of_the_first_contact_is_not_claimed_after_the_grace(
    setup: Setup,
) -> None:
    journal = (dev.DivertRecord(4, "C1-000003", "T-OLD", "CH-DHL", True),)
    first_contact = dev.ConveyorTracking("C1", (), setup.clock.utcnow(), journal=journal)
    await setup.reconciler.reconcile(first_contact)
    await setup.clock.advance(GRACE + 1)
    await setup.on_conveyor("O-9", "T-OLD")
    assert setup.reconciler.late_arrivals() == []

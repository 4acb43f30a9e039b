"""The line view's own parts: zones a jam holds, the conveyor's zones with their totes, the
orders summary."""

from __future__ import annotations

from datetime import timedelta

from controller.line.trips import InFlight, ItemOnBelt, Trip
from controller.orders.model import OrderStatus
from controller.orders.waiting import NoRobotFree
from controller.robots.queue import Pending
from controller.service import line_view as views
from devices import base as dev
from kernel.config.model import LineConfig
from tests.unit.test_dispatch_queue import T0, record


def test_a_jam_holds_its_zone_and_the_ones_before_it_round_the_loop(
    reference_line: LineConfig,
) -> None:
    assert reference_line.conveyor.jam_hold_zones == 2
    assert views.held_zones(reference_line, ["Z10"]) == {"Z08", "Z09", "Z10"}
    assert views.held_zones(reference_line, ["Z01"]) == {"Z23", "Z24", "Z01"}  # a loop
    assert views.held_zones(reference_line, ["Z02", "Z04"]) == {"Z24", "Z01", "Z02", "Z03", "Z04"}
    assert views.held_zones(reference_line, ["Z99"]) == set()  # not on this line


def trip(order_id: str, tote: str, serial: str = "R01") -> Trip:
    return Trip(
        trip_id=f"t-{order_id}",
        order_id=order_id,
        serial=serial,
        tote=tote,
        picks=(),
        induction="INDUCT1",
        started_at=T0,
        destination="DHL",
        b2b=False,
    )


def test_zones_carry_the_tote_and_order_of_their_leading_item(reference_line: LineConfig) -> None:
    flight = InFlight()
    t = trip("O-1", "TOTE-1")
    flight.by_tote[t.tote] = t
    flight.items["C1-000007"] = ItemOnBelt("C1-000007", tote="TOTE-1", chute="CH-DHL")
    zones = tuple(
        dev.ZoneSnapshot(
            z.id,
            running=z.id not in {"Z08", "Z09", "Z10"},
            occupied=z.id in {"Z03", "Z06"},
            item_id={"Z03": "C1-000007", "Z06": "C1-000099"}.get(z.id),
        )
        for z in reference_line.conveyor.zones
    )
    snap = dev.ConveyorSnapshot("C1", True, "Execute", jammed_zones=("Z10",), zones=zones)
    view = views.conveyor(snap, reference_line, flight)
    by_id = {z["zone_id"]: z for z in view["zones"]}
    assert [z["zone_id"] for z in view["zones"]] == [z.id for z in reference_line.conveyor.zones]
    assert by_id["Z03"] == {
        "zone_id": "Z03",
        "running": True,
        "occupied": True,
        "item_id": "C1-000007",
        "tote": "TOTE-1",
        "order_id": "O-1",
        "chute": "CH-DHL",
        "jammed": False,
        "held": False,
    }
    assert by_id["Z06"]["tote"] is None and by_id["Z06"]["item_id"] == "C1-000099"  # not ours
    assert [z for z, v in by_id.items() if v["held"]] == ["Z08", "Z09", "Z10"]
    assert by_id["Z10"]["jammed"] and view["available"]
    # not connected: nothing is known of the zones, the jams stay as last reported
    offline = views.conveyor(
        dev.ConveyorSnapshot("C1", False, "Unknown", zones=zones), reference_line, flight
    )
    assert all(z["running"] is None and z["item_id"] is None for z in offline["zones"])
    assert not any(z["held"] for z in offline["zones"]) and not offline["available"]


def test_the_orders_summary_lists_every_status_and_the_oldest_queued_first() -> None:
    queue = []
    for seq, minutes in enumerate([5, 1, 9, 3]):
        r = record(f"O-{seq}", due_in=60).model_copy(
            update={"created_at": T0 + timedelta(minutes=minutes)}
        )
        queue.append(Pending(r, seq, waiting=NoRobotFree() if seq != 3 else None))
    summary = views.orders({OrderStatus.ACCEPTED: 4}, T0, queue, 4, limit=3)
    assert summary["by_status"] == {
        s.value: 4 if s is OrderStatus.ACCEPTED else 0 for s in OrderStatus
    }
    assert [o["order_id"] for o in summary["oldest_waiting"]] == ["O-1", "O-3", "O-0"]
    assert [o["waiting_reason"] for o in summary["oldest_waiting"]] == [
        "no_robot_free",
        None,
        "no_robot_free",
    ]
    assert summary["queued"] == 4 and summary["counted_at"] == T0


def test_robots_carry_the_orders_of_their_trips_until_the_drop() -> None:
    flight = InFlight()
    trips = [trip("O-1", "T-1"), trip("O-2", "T-2"), trip("O-3", "T-3", serial="R02")]
    for t in trips:
        flight.trips[t.trip_id] = t
    trips[1].drop()  # on the conveyor now
    assert views.carried(flight) == {
        "R01": [{"order_id": "O-1", "tote": "T-1"}],
        "R02": [{"order_id": "O-3", "tote": "T-3"}],
    }

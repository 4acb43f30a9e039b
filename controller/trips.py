"""What is in flight: robot trips, the totes they carry, and items on the conveyor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from routing.dispatch import Pick


@dataclass
class Trip:
    """One robot trip for one order: picks at storage nodes, then a drop at an induction."""

    trip_id: str
    order_id: str
    serial: str
    tote: str
    picks: tuple[Pick, ...]
    induction: str
    started_at: datetime
    destination: str
    b2b: bool
    dropped: bool = False
    picked: dict[str, int] = field(default_factory=dict)  # line_id -> units picked
    picks_done: set[int] = field(default_factory=set)  # indexes into picks
    # the trip no longer serves its order (cancelled, or requeued on another robot): whatever
    # it carries goes to the reject chute for restocking
    cancelled: bool = False
    requeued: bool = False  # void because the order was given to another robot
    returning: bool = False  # a trip that only brings a void trip's tote back

    def unpicked(self) -> list[Pick]:
        return [pk for i, pk in enumerate(self.picks) if i not in self.picks_done]


@dataclass
class ItemOnBelt:
    """A tote on the conveyor, keyed by the conveyor's tracking id."""

    item_id: str
    passes: int = 0
    tote: str | None = None
    chute: str | None = None  # divert requested to this chute


class InFlight:
    """Indexes over trips and totes; the single place that knows what is moving."""

    def __init__(self) -> None:
        self.trips: dict[str, Trip] = {}
        self.by_tote: dict[str, Trip] = {}
        self.busy_robots: set[str] = set()
        self.items: dict[str, ItemOnBelt] = {}

    def start(self, trip: Trip) -> None:
        self.trips[trip.trip_id] = trip
        self.by_tote[trip.tote] = trip
        self.busy_robots.add(trip.serial)

    def robot_done(self, serial: str, trip_id: str) -> Trip | None:
        """The robot finished the trip (or its cancellation); it is free for new work."""
        self.busy_robots.discard(serial)
        return self.trips.get(trip_id)

    def rekey(self, trip: Trip, trip_id: str, induction: str) -> None:
        """The trip continues as a new robot order (a return trip)."""
        self.trips.pop(trip.trip_id, None)
        trip.trip_id = trip_id
        trip.induction = induction
        self.trips[trip_id] = trip
        self.busy_robots.add(trip.serial)

    def forget(self, trip: Trip) -> None:
        self.trips.pop(trip.trip_id, None)
        self.by_tote.pop(trip.tote, None)

    def item(self, item_id: str) -> ItemOnBelt:
        found = self.items.get(item_id)
        if found is None:
            found = self.items[item_id] = ItemOnBelt(item_id)
        return found

    def trip_of_order(self, order_id: str) -> Trip | None:
        """The trip serving the order (not a void one kept only to bring a tote back)."""
        return next(
            (t for t in self.trips.values() if t.order_id == order_id and not t.requeued), None
        )

    def trip_of_robot(self, serial: str) -> Trip | None:
        return next((t for t in self.trips.values() if t.serial == serial and not t.dropped), None)

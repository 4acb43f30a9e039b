"""What is in flight: robot jobs, the order trips they carry, and items on the conveyor.

A *job* is one VDA 5050 order sent to one robot. It carries one *trip* per order (a B2C batch
carries several): each trip has its own tote, its picks and its drop at the induction.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from routing.dispatch import Pick

UNDROPPED_KEPT = 1000  # forgotten trips kept for a drop reported late


@dataclass
class Trip:
    """One order's part of a robot job: picks into its own tote, then a drop at an induction."""

    trip_id: str
    order_id: str
    serial: str
    tote: str
    picks: tuple[Pick, ...]
    induction: str
    started_at: datetime
    destination: str
    b2b: bool
    job_id: str = ""
    dropped: bool = False
    picked: dict[str, int] = field(default_factory=dict)  # line_id -> units picked
    picks_done: set[int] = field(default_factory=set)  # indexes into picks
    # the trip no longer serves its order (cancelled, or requeued on another robot): whatever
    # it carries goes to the reject chute for restocking
    cancelled: bool = False
    requeued: bool = False  # void because the order was given to another robot
    returning: bool = False  # only brings a void trip's tote back
    case_tote: bool = False  # an AS/RS tote (no robot): a B2B order's case picks, ...
    purpose: str = ""  # ... or what else the AS/RS brought it out for (``replenish``)
    # taken over from the last run: its picks left and its drop go out as a new job from
    # where the robot stands
    continuing: bool = False
    # its robot is being stopped to give way in a traffic jam: what the cancel fails is no
    # fault, and once the robot stands the trip continues from there (picks left, its drop)
    stopping: bool = False

    def unpicked(self) -> list[Pick]:
        return [pk for i, pk in enumerate(self.picks) if i not in self.picks_done]

    @property
    def live(self) -> bool:
        """Still serving its order on the robot."""
        return not self.cancelled and not self.dropped


@dataclass(frozen=True)
class ActionRef:
    trip_id: str
    kind: Literal["pick", "drop"]
    index: int = 0  # into the trip's picks


@dataclass
class ItemOnBelt:
    """A tote on the conveyor, keyed by the conveyor's tracking id."""

    item_id: str
    passes: int = 0
    tote: str | None = None
    chute: str | None = None  # divert requested to this chute


class InFlight:
    """Indexes over jobs, trips and totes; the single place that knows what is moving."""

    def __init__(self) -> None:
        self.trips: dict[str, Trip] = {}
        self.jobs: dict[str, list[str]] = {}  # job id -> trip ids
        self.actions: dict[str, ActionRef] = {}
        self.by_tote: dict[str, Trip] = {}
        self.busy_robots: set[str] = set()
        self.items: dict[str, ItemOnBelt] = {}
        # trips forgotten before their drop was reported: the robot's report of the drop may
        # come after the conveyor already scanned and sorted the tote
        self.undropped: OrderedDict[str, Trip] = OrderedDict()

    def start(self, job_id: str, trips: list[Trip], actions: dict[str, ActionRef]) -> None:
        """A job was sent to a robot (also a return job for trips already known)."""
        for trip in trips:
            trip.job_id = job_id
            self.trips[trip.trip_id] = trip
            self.by_tote[trip.tote] = trip
            self.busy_robots.add(trip.serial)
        self.jobs[job_id] = [t.trip_id for t in trips]
        self.actions.update(actions)

    def on_conveyor(self, trip: Trip) -> None:
        """A trip whose tote was already on the conveyor when the controller started."""
        self.trips[trip.trip_id] = trip
        self.by_tote[trip.tote] = trip

    def start_errand(self, job_id: str, serial: str) -> None:
        """A job that carries no order (to a charger, out of the way): the robot is busy."""
        self.jobs[job_id] = []
        self.busy_robots.add(serial)

    def action(self, action_id: str) -> tuple[Trip, ActionRef] | None:
        ref = self.actions.get(action_id)
        trip = self.trips.get(ref.trip_id) if ref is not None else None
        return None if trip is None or ref is None else (trip, ref)

    def job_done(self, serial: str, job_id: str) -> list[Trip]:
        """The robot finished the job (or its cancellation); it is free for new work."""
        self.busy_robots.discard(serial)
        trip_ids = self.jobs.pop(job_id, [])
        for trip_id in trip_ids:
            self.undropped.pop(trip_id, None)
        for action_id in [a for a, ref in self.actions.items() if ref.trip_id in trip_ids]:
            del self.actions[action_id]
        return [self.trips[t] for t in trip_ids if t in self.trips]

    def job_trips(self, job_id: str) -> list[Trip]:
        return [self.trips[t] for t in self.jobs.get(job_id, []) if t in self.trips]

    def forget(self, trip: Trip) -> None:
        self.trips.pop(trip.trip_id, None)
        self.by_tote.pop(trip.tote, None)
        if trip.live and not trip.requeued and trip.job_id in self.jobs:
            self.undropped[trip.trip_id] = trip
            while len(self.undropped) > UNDROPPED_KEPT:
                self.undropped.popitem(last=False)

    def late_drop(self, action_id: str) -> Trip | None:
        """The forgotten trip whose drop ``action_id`` is, reported after the tote went on."""
        ref = self.actions.get(action_id)
        if ref is None or ref.kind != "drop":
            return None
        return self.undropped.pop(ref.trip_id, None)

    def item(self, item_id: str) -> ItemOnBelt:
        found = self.items.get(item_id)
        if found is None:
            found = self.items[item_id] = ItemOnBelt(item_id)
        return found

    def trip_of_order(self, order_id: str) -> Trip | None:
        """The trip serving the order (not a void one kept only to bring a tote back)."""
        return next(
            (
                t
                for t in self.trips.values()
                if t.order_id == order_id and not t.requeued and not t.case_tote
            ),
            None,
        )

    def case_totes(self, order_id: str) -> list[Trip]:
        """The order's AS/RS totes on their way to its station."""
        return [t for t in self.trips.values() if t.order_id == order_id and t.case_tote]

    def on_robot(self, serial: str) -> list[Trip]:
        """Trips whose tote is still on the robot."""
        return [t for t in self.trips.values() if t.serial == serial and not t.dropped]

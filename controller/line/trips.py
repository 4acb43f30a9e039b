"""What is in flight: robot jobs, the order trips they carry, and items on the conveyor.

A *job* is one VDA 5050 order sent to one robot. It carries one *trip* per order (a B2C batch
carries several): each trip has its own tote, its picks and its drop at the induction.

A trip's lifecycle has two sides that change independently: whether it still serves its order
(:class:`Serving`) and where its tote is on its way (:class:`Leg`). Each changes only through an
event method of :class:`Trip`, and only along the moves listed in :data:`SERVING_MOVES` and
:data:`LEG_MOVES`.
"""

from __future__ import annotations

import enum
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal

from routing.dispatch import Pick

log = logging.getLogger(__name__)

UNDROPPED_KEPT = 1000  # forgotten trips kept for a drop reported late


class Serving(enum.Enum):
    """Whether the trip still serves its order. A void trip (cancelled or requeued) still
    carries its tote: whatever is in it goes to the reject chute for restocking."""

    LIVE = "live"
    # void: the order was cancelled or stopped (a short pick, an ended order); the tote's way
    # to the reject chute ends a cancellation
    CANCELLED = "cancelled"
    # void: the order was given to another robot (or the tote belongs to no order); the tote
    # only comes back
    REQUEUED = "requeued"


class Leg(enum.Enum):
    """Where the trip's tote is on its way."""

    ON_ROBOT = "on_robot"  # on its robot: picks left, then the drop (or waiting to be settled)
    # its robot is being stopped to give way in a traffic jam: what the cancel fails is no
    # fault, and once the robot stands the trip continues from there (picks left, its drop)
    STOPPING = "stopping"
    # its robot stands without a job for it (taken over at start, or after giving way): its
    # picks left and its drop go out as a new job from where the robot stands
    CONTINUING = "continuing"
    RETURNING = "returning"  # a void trip's tote on its robot, only brought back
    ON_CONVEYOR = "on_conveyor"  # dropped at an induction (or an AS/RS tote out of the rack)
    RETURNED = "returned"  # a void trip's tote dropped at an induction by its return


VOID = frozenset({Serving.CANCELLED, Serving.REQUEUED})
ANY = frozenset(Serving)

# The legal moves of each side, and nothing else. A move of the tote's leg is legal only while
# the trip's serving is one of those given.
SERVING_MOVES: frozenset[tuple[Serving, Serving]] = frozenset(
    {
        (Serving.LIVE, Serving.CANCELLED),  # cancel(): cancelled, short pick, order ended
        (Serving.LIVE, Serving.REQUEUED),  # requeue(): the order goes to another robot
    }
)
LEG_MOVES: Mapping[tuple[Leg, Leg], frozenset[Serving]] = {
    # drop(): at the induction (a void trip's tote in a batch too) ...
    (Leg.ON_ROBOT, Leg.ON_CONVEYOR): ANY,
    (Leg.STOPPING, Leg.ON_CONVEYOR): ANY,  # ... also done before the stop to give way took
    (Leg.RETURNING, Leg.RETURNED): VOID,  # ... or by the tote's return
    # give_way(): traffic control stops the robot of a live trip
    (Leg.ON_ROBOT, Leg.STOPPING): frozenset({Serving.LIVE}),
    # stood() once the robot stands, keep_going() when its stop could not be sent
    (Leg.STOPPING, Leg.ON_ROBOT): ANY,
    # continue_later(): a live trip goes on from where its robot stands
    (Leg.ON_ROBOT, Leg.CONTINUING): frozenset({Serving.LIVE}),
    # continued() when sent as a new job, stop_continuing() when void before that
    (Leg.CONTINUING, Leg.ON_ROBOT): ANY,
    # bring_back(): a void trip's robot holds its tote; it is dropped for the reject chute
    (Leg.ON_ROBOT, Leg.RETURNING): VOID,
    (Leg.STOPPING, Leg.RETURNING): VOID,
}


class IllegalTransition(Exception):
    """A trip was asked to move where its lifecycle does not go (raised only when
    :attr:`Trip.strict` is on, as in the tests)."""

    def __init__(self, trip: Trip, before: enum.Enum, after: enum.Enum) -> None:
        super().__init__(
            f"trip {trip.trip_id} (order {trip.order_id}): {before.value} -> {after.value} "
            f"is not a legal move (serving {trip.serving.value}, leg {trip.leg.value})"
        )
        self.trip_id = trip.trip_id
        self.before = before
        self.after = after


@dataclass
class Trip:
    """One order's part of a robot job: picks into its own tote, then a drop at an induction.

    Its lifecycle (``serving``, ``leg``) changes only through the event methods below. An
    illegal move is a bug of the controller: with :attr:`strict` on it raises
    :class:`IllegalTransition`; in the service it is logged once per trip and move, and the
    trip follows the event all the same. The event did happen (a robot reported the drop, the
    order already went back to the queue): a trip left behind would contradict what the rest
    of the controller does next and could lose the order or its tote."""

    # raise on an illegal move instead of logging it (the tests turn it on)
    strict: ClassVar[bool] = False

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
    picked: dict[str, int] = field(default_factory=dict)  # line_id -> units picked
    picks_done: set[int] = field(default_factory=set)  # indexes into picks
    serving: Serving = Serving.LIVE
    leg: Leg = Leg.ON_ROBOT
    case_tote: bool = False  # an AS/RS tote (no robot): a B2B order's case picks, ...
    purpose: str = ""  # ... or what else the AS/RS brought it out for (``replenish``)
    # illegal moves already logged, so that a repeated one is logged once
    _illegal: set[tuple[enum.Enum, enum.Enum]] = field(
        default_factory=set, init=False, repr=False, compare=False
    )

    def unpicked(self) -> list[Pick]:
        return [pk for i, pk in enumerate(self.picks) if i not in self.picks_done]

    # --- the state, read --------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Still serving its order on the robot."""
        return self.serving is Serving.LIVE and not self.dropped

    @property
    def void(self) -> bool:
        """No longer serves its order (cancelled or requeued): its tote goes to the reject
        chute."""
        return self.serving is not Serving.LIVE

    @property
    def requeued(self) -> bool:
        """Void because the order was given to another robot."""
        return self.serving is Serving.REQUEUED

    @property
    def dropped(self) -> bool:
        """Its tote left the robot at an induction (or never was on one)."""
        return self.leg in (Leg.ON_CONVEYOR, Leg.RETURNED)

    @property
    def returning(self) -> bool:
        """Only brings a void trip's tote back (before and after its drop)."""
        return self.leg in (Leg.RETURNING, Leg.RETURNED)

    @property
    def continuing(self) -> bool:
        """Waits, on a standing robot, to go on as a new job."""
        return self.leg is Leg.CONTINUING

    @property
    def stopping(self) -> bool:
        """Its robot is being stopped to give way."""
        return self.leg is Leg.STOPPING

    # --- events -------------------------------------------------------------------------------

    def drop(self) -> None:
        """The robot dropped the tote at the induction."""
        self._leg(Leg.RETURNED if self.leg is Leg.RETURNING else Leg.ON_CONVEYOR)

    def cancel(self) -> None:
        """The order no longer wants the trip: cancelled, stopped by a short pick, ended."""
        self._serving(Serving.CANCELLED)

    def requeue(self) -> None:
        """The order goes back to the queue for another robot."""
        self._serving(Serving.REQUEUED)

    def bring_back(self) -> None:
        """The void trip's robot holds its tote: it only brings it back to an induction."""
        self._leg(Leg.RETURNING)

    def give_way(self) -> None:
        """Traffic control stops the trip's robot to let others pass."""
        self._leg(Leg.STOPPING)

    def keep_going(self) -> None:
        """The stop to give way could not be sent: the robot goes on with the trip."""
        self._leg(Leg.ON_ROBOT)

    def stood(self) -> None:
        """The robot stopped to give way stands now (also found so at a take-over)."""
        self._leg(Leg.ON_ROBOT)

    def continue_later(self) -> None:
        """The robot stands without a job for the trip: it goes on from there as a new job."""
        self._leg(Leg.CONTINUING)

    def continued(self) -> None:
        """The trip went out again as a new job from where the robot stands."""
        self._leg(Leg.ON_ROBOT)

    def stop_continuing(self) -> None:
        """The trip turned void before it went out again: it is settled where it stands."""
        self._leg(Leg.ON_ROBOT)

    def _serving(self, after: Serving) -> None:
        if (self.serving, after) not in SERVING_MOVES:
            self._illegal_move(self.serving, after)
        self.serving = after

    def _leg(self, after: Leg) -> None:
        if self.serving not in LEG_MOVES.get((self.leg, after), frozenset()):
            self._illegal_move(self.leg, after)
        self.leg = after

    def _illegal_move(self, before: enum.Enum, after: enum.Enum) -> None:
        if self.strict:
            raise IllegalTransition(self, before, after)
        if (before, after) in self._illegal:
            return
        self._illegal.add((before, after))
        log.error(
            "illegal trip transition; the trip follows the event",
            extra={
                "trip": self.trip_id,
                "order": self.order_id,
                "robot": self.serial,
                "from": before.value,
                "to": after.value,
                "serving": self.serving.value,
                "leg": self.leg.value,
            },
        )


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

    def loaded_robots(self) -> set[str]:
        """The robots with totes of trips still on them."""
        return {t.serial for t in self.trips.values() if not t.dropped}

    def on_robot(self, serial: str) -> list[Trip]:
        """Trips whose tote is still on the robot."""
        return [t for t in self.trips.values() if t.serial == serial and not t.dropped]

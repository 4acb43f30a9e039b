"""The take-over decisions: what a restarted controller makes of a robot's first report.

A controller that starts (after a crash, a kill or a deploy) finds robots that may still be
running the jobs the last run sent them, carry totes of its trips, or have finished them while
no one listened. These functions decide on one robot's report (its state message, as a
:class:`devices.base.RobotSnapshot`) and the trips the order store says are on that robot
(:class:`TripFacts`); they do no I/O, so every case is tested on its own.

1. :func:`outcomes`: the actions of the robot's current job that ended and are not booked yet
   (a pick finished, a drop done, an action failed). They are booked as if reported live; the
   pick's action id keeps the ledger from booking it twice.
2. :func:`must_stop`: a robot still executing an order is stopped (``cancelOrder``) before
   anything else, so that every later decision is made on a robot that stands still. The
   traffic plan that released its way died with the last run; a continuation starts from where
   it stands, planned with everyone else.
3. :func:`settle`: once it stands, each trip on it gets its :class:`Fate` and every load no
   trip accounts for is named, to be dropped at an induction (and sorted to the reject chute).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from devices.base import RobotSnapshot

FINISHED = "FINISHED"
FAILED = "FAILED"


@dataclass(frozen=True)
class TripFacts:
    """A trip the store puts on the robot, as it stands now in the controller."""

    trip_id: str
    tote: str
    job_id: str
    live: bool  # still serves its order (not cancelled nor given to another robot)
    pick_actions: Mapping[str, int] = field(default_factory=dict)  # action id -> pick index
    drop_action: str = ""
    booked: frozenset[int] = frozenset()  # pick indexes booked
    dropped: bool = False


class Fate(enum.Enum):
    """What becomes of a trip the robot no longer drives."""

    CONTINUE = "continue"  # a new job from where the robot stands: its picks left, its drop
    REQUEUE = "requeue"  # neither its job nor its tote is on the robot: the order is queued
    RETURN = "return"  # a void trip's tote is on the robot: dropped, sorted to the reject chute
    RELEASE = "release"  # a void trip with no tote on the robot: its stock is given back


@dataclass(frozen=True)
class Outcomes:
    finished: tuple[str, ...] = ()  # action ids
    failed: tuple[tuple[str, str], ...] = ()  # (action id, reason)


@dataclass(frozen=True)
class Settlement:
    fates: Mapping[str, Fate]  # trip id -> fate
    unknown_loads: tuple[str, ...]  # load ids no trip on the robot accounts for
    unnamed_loads: int = 0  # loads reported without a loadId


def outcomes(
    snap: RobotSnapshot,
    trips: Iterable[TripFacts],
    *,
    failures: bool = True,
    applied: frozenset[str] = frozenset(),
) -> Outcomes:
    """The trips' actions in the robot's current job that ended and were not booked yet.
    ``failures``: also the failed ones (off once the controller cancelled the job itself: its
    cancel fails what was not done, which is no failure of the trip)."""
    states = {a.action_id: a for a in snap.actions}
    finished: list[str] = []
    failed: list[tuple[str, str]] = []
    for trip in trips:
        if trip.job_id != snap.order_id:
            continue
        ids = [*trip.pick_actions, trip.drop_action]
        for action_id in ids:
            state = states.get(action_id)
            if state is None or action_id in applied:
                continue
            done = (
                trip.dropped
                if action_id == trip.drop_action
                else trip.pick_actions[action_id] in trip.booked
            )
            if state.status == FINISHED and not done:
                finished.append(action_id)
            elif state.status == FAILED and failures and not done:
                failed.append((action_id, state.result or FAILED))
    return Outcomes(tuple(finished), tuple(failed))


def must_stop(snap: RobotSnapshot) -> bool:
    """The robot still executes an order (nodes, edges or actions left)."""
    return snap.executing


def settle(snap: RobotSnapshot, trips: Sequence[TripFacts]) -> Settlement:
    """Each undropped trip's fate on a robot that stands still, and the loads nobody expects."""
    loads = [ld.load_id for ld in snap.loads]
    on_board = {ld for ld in loads if ld}
    fates: dict[str, Fate] = {}
    for trip in trips:
        if trip.dropped:
            continue
        carried = trip.tote in on_board
        if trip.live:
            has_job = bool(snap.order_id) and trip.job_id == snap.order_id
            fates[trip.trip_id] = Fate.CONTINUE if carried or has_job else Fate.REQUEUE
        else:
            fates[trip.trip_id] = Fate.RETURN if carried else Fate.RELEASE
    claimed = {t.tote for t in trips if not t.dropped}
    unknown = tuple(sorted(ld for ld in on_board if ld not in claimed))
    return Settlement(fates, unknown, sum(1 for ld in loads if not ld))

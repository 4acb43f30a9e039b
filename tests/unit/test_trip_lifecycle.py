"""The trip's lifecycle: every legal move through its event method, and illegal ones refused
(raised with ``Trip.strict`` on, as in every test; logged once in the service)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from controller.line.trips import (
    LEG_MOVES,
    SERVING_MOVES,
    IllegalTransition,
    Leg,
    Serving,
    Trip,
)

L, C, R = Serving.LIVE, Serving.CANCELLED, Serving.REQUEUED


def trip(serving: Serving = L, leg: Leg = Leg.ON_ROBOT) -> Trip:
    return Trip(
        "trip-1", "O-1", "R01", "T-1", (), "IN1", datetime.now(UTC), "DHL", False,
        serving=serving, leg=leg,
    )  # fmt: skip


Event = Callable[[Trip], None]

# (event, serving, leg before, leg after): every legal move of the tote's leg
LEG_CASES: list[tuple[Event, Serving, Leg, Leg]] = [
    *[(Trip.drop, s, Leg.ON_ROBOT, Leg.ON_CONVEYOR) for s in (L, C, R)],
    *[(Trip.drop, s, Leg.STOPPING, Leg.ON_CONVEYOR) for s in (L, C, R)],
    *[(Trip.drop, s, Leg.RETURNING, Leg.RETURNED) for s in (C, R)],
    (Trip.give_way, L, Leg.ON_ROBOT, Leg.STOPPING),
    *[(Trip.keep_going, s, Leg.STOPPING, Leg.ON_ROBOT) for s in (L, C, R)],
    *[(Trip.stood, s, Leg.STOPPING, Leg.ON_ROBOT) for s in (L, C, R)],
    (Trip.continue_later, L, Leg.ON_ROBOT, Leg.CONTINUING),
    *[(Trip.continued, s, Leg.CONTINUING, Leg.ON_ROBOT) for s in (L, C, R)],
    *[(Trip.stop_continuing, s, Leg.CONTINUING, Leg.ON_ROBOT) for s in (L, C, R)],
    *[(Trip.bring_back, s, Leg.ON_ROBOT, Leg.RETURNING) for s in (C, R)],
    *[(Trip.bring_back, s, Leg.STOPPING, Leg.RETURNING) for s in (C, R)],
]


@pytest.mark.parametrize(("event", "serving", "before", "after"), LEG_CASES)
def test_every_legal_leg_move(event: Event, serving: Serving, before: Leg, after: Leg) -> None:
    t = trip(serving, before)
    event(t)
    assert (t.leg, t.serving) == (after, serving)


def test_the_cases_cover_the_leg_table_exactly() -> None:
    covered: dict[tuple[Leg, Leg], set[Serving]] = {}
    for _, serving, before, after in LEG_CASES:
        covered.setdefault((before, after), set()).add(serving)
    assert covered == {k: set(v) for k, v in LEG_MOVES.items()}


@pytest.mark.parametrize("leg", list(Leg))
@pytest.mark.parametrize(
    ("event", "after"), [(Trip.cancel, Serving.CANCELLED), (Trip.requeue, Serving.REQUEUED)]
)
def test_every_legal_serving_move(event: Event, after: Serving, leg: Leg) -> None:
    """A live trip is cancelled or requeued wherever its tote is; the leg stays."""
    t = trip(L, leg)
    event(t)
    assert (t.serving, t.leg) == (after, leg)
    assert (L, after) in SERVING_MOVES
    assert len(SERVING_MOVES) == 2


@pytest.mark.parametrize(
    ("event", "serving", "leg"),
    [
        (Trip.cancel, C, Leg.ON_ROBOT),  # cancelled twice
        (Trip.cancel, R, Leg.ON_ROBOT),  # a requeued trip is not cancelled after
        (Trip.requeue, C, Leg.ON_ROBOT),
        (Trip.requeue, R, Leg.ON_ROBOT),
        (Trip.drop, L, Leg.ON_CONVEYOR),  # dropped twice
        (Trip.drop, C, Leg.RETURNED),
        (Trip.drop, L, Leg.CONTINUING),  # not in a job: nothing to drop
        (Trip.give_way, C, Leg.ON_ROBOT),  # only a live trip's robot gives way
        (Trip.give_way, L, Leg.CONTINUING),
        (Trip.give_way, L, Leg.STOPPING),
        (Trip.stood, L, Leg.ON_ROBOT),
        (Trip.continue_later, C, Leg.ON_ROBOT),  # a void trip does not go on
        (Trip.continue_later, L, Leg.STOPPING),  # the robot stands first
        (Trip.continued, L, Leg.ON_ROBOT),
        (Trip.bring_back, L, Leg.ON_ROBOT),  # a live trip's tote is not brought back
        (Trip.bring_back, C, Leg.RETURNING),
        (Trip.bring_back, C, Leg.ON_CONVEYOR),
        (Trip.bring_back, C, Leg.CONTINUING),
    ],
)
def test_illegal_moves_are_refused(event: Event, serving: Serving, leg: Leg) -> None:
    t = trip(serving, leg)
    with pytest.raises(IllegalTransition):
        event(t)
    assert (t.serving, t.leg) == (serving, leg)


def test_the_service_logs_an_illegal_move_once_and_follows_the_event(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Outside the tests nothing raises: the trip follows what happened (the robot did drop
    the tote), and the controller is told once per trip and move."""
    monkeypatch.setattr(Trip, "strict", False)
    t = trip(L, Leg.ON_CONVEYOR)
    with caplog.at_level(logging.ERROR, logger="controller.line.trips"):
        t.drop()
        t.drop()
    assert t.leg is Leg.ON_CONVEYOR
    illegal = [r for r in caplog.records if r.getMessage().startswith("illegal trip transition")]
    assert len(illegal) == 1
    rec = illegal[0]
    assert (rec.__dict__["trip"], rec.__dict__["from"], rec.__dict__["to"]) == (
        "trip-1",
        "on_conveyor",
        "on_conveyor",
    )
    t2 = trip(C, Leg.ON_ROBOT)
    with caplog.at_level(logging.ERROR, logger="controller.line.trips"):
        t2.requeue()
    assert t2.requeued  # the order went back to the queue: the trip follows


def test_the_properties_read_the_state() -> None:
    t = trip()
    assert t.live and not t.void and not t.dropped and not t.returning
    t.give_way()
    assert t.stopping and t.live
    t.stood()
    t.continue_later()
    assert t.continuing and not t.stopping
    t.continued()
    t.cancel()
    assert t.void and not t.requeued and not t.live
    t.bring_back()
    assert t.returning and not t.dropped
    t.drop()
    assert t.returning and t.dropped  # a returned tote keeps saying it came back
    r = trip()
    r.requeue()
    r.drop()
    assert r.requeued and r.void and r.dropped and not r.returning

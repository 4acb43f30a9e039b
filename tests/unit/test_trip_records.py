"""A trip written into its order's history and read back exactly, as a restart needs it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controller.line.trips import ActionRef, Trip
from controller.orders.model import HistoryEvent, OrderStatus
from controller.robots.trip_records import job_data, stored_trips, tote_trip
from routing.dispatch import Pick

AT = datetime(2026, 1, 1, tzinfo=UTC)
PICKS = (Pick("1", "SKU-1", "L-1", "N1", 2), Pick("2", "SKU-2", "L-2", "N2", 1))


def trip() -> Trip:
    return Trip("t1", "O-1", "R01", "TOTE-1", PICKS, "IND-1", AT, "DHL", False)


def event(seq: int, kind: str, **data: Any) -> HistoryEvent:
    return HistoryEvent(seq=seq, at=AT, type=kind, status=OrderStatus.PICKING, data=data)


FIRST = {"t1-pick-0": ActionRef("t1", "pick", 0), "t1-pick-1": ActionRef("t1", "pick", 1)}
FIRST["t1-drop-a"] = ActionRef("t1", "drop")


def test_a_trip_is_rebuilt_with_its_job_actions_and_booked_picks() -> None:
    events = [
        event(1, "accepted"),
        event(2, "robot_assigned", **job_data(trip(), "R01", "job-1", FIRST)),
        event(3, "picked", trip="t1", pick=0, line_id="1", quantity=2, action="t1-pick-0"),
    ]
    [st] = stored_trips("O-1", events)
    assert (st.robot, st.job_id, st.tote, st.induction) == ("R01", "job-1", "TOTE-1", "IND-1")
    assert st.picks == PICKS
    assert st.pick_actions == {"t1-pick-0": 0, "t1-pick-1": 1}
    assert st.drop_action == "t1-drop-a"
    assert st.booked == frozenset({0})
    assert st.picked == {"1": 2}
    assert st.refs() == FIRST


def test_a_continued_trip_keeps_what_was_booked_under_its_first_job() -> None:
    t = trip()
    t.picks_done = {0}
    later = {"t1-pick-1-x": ActionRef("t1", "pick", 1), "t1-drop-b": ActionRef("t1", "drop")}
    events = [
        event(1, "robot_assigned", **job_data(trip(), "R01", "job-1", FIRST)),
        event(2, "picked", trip="t1", pick=0, line_id="1", quantity=2),
        event(3, "robot_taken_over", robot="R01", trip="t1", decision="continue"),
        event(4, "robot_continued", **job_data(t, "R01", "job-2", later)),
    ]
    [st] = stored_trips("O-1", events)
    assert st.job_id == "job-2"
    assert st.pick_actions == {"t1-pick-1-x": 1}  # the pick done before has no action here
    assert st.drop_action == "t1-drop-b"
    assert st.booked == frozenset({0})


def test_a_trip_whose_robot_gave_way_is_still_on_it_and_known_as_stopping() -> None:
    t = trip()
    t.picks_done = {0}
    later = {"t1-pick-1-x": ActionRef("t1", "pick", 1), "t1-drop-b": ActionRef("t1", "drop")}
    assigned = event(1, "robot_assigned", **job_data(trip(), "R01", "job-1", FIRST))
    picked = event(2, "picked", trip="t1", pick=0, line_id="1", quantity=2)
    giving_way = event(3, "robot_giving_way", robot="R01", trip="t1", job="job-1")
    [st] = stored_trips("O-1", [assigned, picked, giving_way])
    assert st.stopping and st.job_id == "job-1" and st.booked == frozenset({0})
    # once continued, the new job runs: nothing stops it
    continued = event(4, "robot_continued", **job_data(t, "R01", "job-2", later))
    [st] = stored_trips("O-1", [assigned, picked, giving_way, continued])
    assert not st.stopping and st.job_id == "job-2"
    # a give-way named for another job does not stop this one
    [st] = stored_trips("O-1", [assigned, picked, event(3, "robot_giving_way", job="job-0")])
    assert not st.stopping


def test_no_trip_once_it_ended_or_when_the_record_is_too_old_to_rebuild() -> None:
    assigned = event(1, "robot_assigned", **job_data(trip(), "R01", "job-1", FIRST))
    assert stored_trips("O-1", [assigned, event(2, "dropped", tote="TOTE-1")]) == []
    assert stored_trips("O-1", [assigned, event(2, "robot_lost", robot="R01")]) == []
    old = event(1, "robot_assigned", robot="R01", job="j", trip="t", tote="T", picks=[])
    assert stored_trips("O-1", [old]) == []
    assert stored_trips("O-1", []) == []


def test_a_dropped_tote_is_read_back_with_what_was_picked_into_it() -> None:
    events = [
        event(1, "robot_assigned", **job_data(trip(), "R01", "job-1", FIRST)),
        event(2, "picked", trip="t1", pick=1, line_id="2", quantity=1),
        event(3, "dropped", robot="R01", tote="TOTE-1", induction="IND-1"),
    ]
    assert stored_trips("O-1", events) == []  # no longer on a robot ...
    st = tote_trip("O-1", events, "TOTE-1")  # ... but its contents are known
    assert st is not None and st.trip_id == "t1"
    assert st.booked == frozenset({1}) and st.picked == {"2": 1}
    assert tote_trip("O-1", events, "TOTE-OTHER") is None

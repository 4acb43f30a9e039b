"""The take-over decisions on one robot's first report after a controller start."""

from __future__ import annotations

from typing import Any

from controller.robots.takeover_plan import Fate, TripFacts, must_stop, outcomes, settle
from devices.base import ActionStatus, RobotLoad, RobotSnapshot


def snap(order_id: str = "job-1", **kw: Any) -> RobotSnapshot:
    base: dict[str, Any] = {
        "serial": "R01",
        "manufacturer": "m",
        "version": "2.0.0",
        "connection": "ONLINE",
        "operating_mode": "AUTOMATIC",
        "last_node_id": "N1",
        "x": 0.0,
        "y": 0.0,
        "driving": False,
        "order_id": order_id or None,
        "battery": 80.0,
        "errors": (),
        "state_age": 0.1,
        "available": True,
    }
    return RobotSnapshot(**{**base, **kw})


def acts(**statuses: str) -> tuple[ActionStatus, ...]:
    return tuple(ActionStatus(a, "drop" if "drop" in a else "pick", s) for a, s in statuses.items())


def loads(*ids: str | None) -> tuple[RobotLoad, ...]:
    return tuple(RobotLoad(i) for i in ids)


TRIP = TripFacts(
    "t1",
    "TOTE-1",
    "job-1",
    live=True,
    pick_actions={"p0": 0, "p1": 1},
    drop_action="d",
)


def test_finished_picks_not_yet_booked_are_booked_once() -> None:
    report = snap(actions=acts(p0="FINISHED", p1="FINISHED", d="WAITING"))
    assert outcomes(report, [TRIP]).finished == ("p0", "p1")
    booked = TripFacts(**{**TRIP.__dict__, "booked": frozenset({0})})
    assert outcomes(report, [booked]).finished == ("p1",)  # p0 is in the ledger already


def test_a_finished_drop_is_recorded_unless_it_was() -> None:
    report = snap(actions=acts(p0="FINISHED", p1="FINISHED", d="FINISHED"))
    done = TripFacts(**{**TRIP.__dict__, "booked": frozenset({0, 1})})
    assert outcomes(report, [done]).finished == ("d",)
    dropped = TripFacts(**{**done.__dict__, "dropped": True})
    assert outcomes(report, [dropped]).finished == ()


def test_failures_before_the_take_over_count_those_of_its_own_cancel_do_not() -> None:
    report = snap(
        actions=(
            ActionStatus("p0", "pick", "FAILED", "load already picked"),
            *acts(p1="WAITING", d="WAITING"),
        )
    )
    assert outcomes(report, [TRIP]).failed == (("p0", "load already picked"),)
    assert outcomes(report, [TRIP], failures=False).failed == ()


def test_actions_of_another_order_are_not_the_trips() -> None:
    report = snap("job-9", actions=acts(p0="FINISHED"))
    assert outcomes(report, [TRIP]) == outcomes(snap("job-9"), [])


def test_a_robot_still_executing_is_stopped_first() -> None:
    assert must_stop(snap(nodes_left=("N2",), actions=acts(p0="WAITING")))
    assert must_stop(snap(actions=acts(p0="RUNNING")))
    assert must_stop(snap(edges_left=1))
    assert not must_stop(snap(actions=acts(p0="FINISHED", d="FAILED")))


def test_a_trip_whose_job_or_tote_is_on_the_robot_continues() -> None:
    cancelled = snap(actions=acts(p0="FINISHED", p1="FAILED", d="FAILED"), loads=loads("TOTE-1"))
    assert settle(cancelled, [TRIP]).fates == {"t1": Fate.CONTINUE}
    # nothing picked yet (no tote on board), but the job is the robot's: it continues
    assert settle(snap(actions=acts(p0="FAILED")), [TRIP]).fates == {"t1": Fate.CONTINUE}
    # the robot lost its order (rebooted) but carries the tote
    assert settle(snap("", loads=loads("TOTE-1")), [TRIP]).fates == {"t1": Fate.CONTINUE}


def test_a_trip_whose_job_and_tote_are_gone_goes_back_to_the_queue() -> None:
    assert settle(snap(""), [TRIP]).fates == {"t1": Fate.REQUEUE}
    assert settle(snap("job-9"), [TRIP]).fates == {"t1": Fate.REQUEUE}


def test_void_trips_bring_their_tote_back_or_free_their_stock() -> None:
    void = TripFacts(**{**TRIP.__dict__, "live": False})
    assert settle(snap(loads=loads("TOTE-1")), [void]).fates == {"t1": Fate.RETURN}
    assert settle(snap(), [void]).fates == {"t1": Fate.RELEASE}


def test_loads_no_trip_accounts_for_are_stray() -> None:
    dropped = TripFacts("t2", "TOTE-2", "job-0", live=True, dropped=True)
    report = snap(loads=loads("TOTE-1", "TOTE-2", "TOTE-X", None))
    found = settle(report, [TRIP, dropped])
    assert found.fates == {"t1": Fate.CONTINUE}  # a dropped trip has no fate left here
    # TOTE-2 was dropped per the store yet is on the robot: nobody expects it there
    assert found.unknown_loads == ("TOTE-2", "TOTE-X")
    assert found.unnamed_loads == 1


def test_an_idle_empty_robot_has_nothing_to_settle() -> None:
    found = settle(snap(""), [])
    assert (found.fates, found.unknown_loads, found.unnamed_loads) == ({}, (), 0)

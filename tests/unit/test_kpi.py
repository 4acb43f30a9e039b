"""The KPIs from hand-built history rows; every number below is worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest

from controller.app.report import kpi, summary
from controller.app.report.model import CommandRow, Distribution, EventRow, OnTime, OrderRow, Window

T0 = 1_800_000_000.0  # any line time; everything below is seconds after it
WINDOW = Window(T0, T0 + 1200)


def order(oid: str, typ: str, created: float, cutoff: float, status: str = "completed") -> OrderRow:
    return OrderRow(oid, typ, status, T0 + created, T0 + cutoff)


def ev(oid: str, at: float, typ: str, **data: Any) -> EventRow:
    return EventRow(oid, T0 + at, typ, data)


ORDERS = [
    order("A", "b2c", 0, 600),  # completed at 300: on time, cycle 300
    order("B", "b2c", 60, 600),  # completed at 900: late, cycle 840
    order("C", "b2b", 0, 1200),  # completed at 1000: on time, cycle 1000
    order("D", "b2c", 100, 500, status="released"),  # cut-off passed, not completed: overdue
    order("E", "b2b", 0, 200, status="cancelled"),  # cancelled: not counted
]
COMPLETIONS = [ev("A", 300, "completed"), ev("B", 900, "completed"), ev("C", 1000, "completed")]


def test_completion_is_the_first_completed_event_of_a_known_order() -> None:
    events = [*COMPLETIONS, ev("A", 400, "completed"), ev("ZZ", 10, "completed")]
    assert kpi.completions(ORDERS, events) == {"A": T0 + 300, "B": T0 + 900, "C": T0 + 1000}


def test_throughput_counts_completions_per_bucket_by_type() -> None:
    done = kpi.completions(ORDERS, COMPLETIONS)
    tp = kpi.throughput(ORDERS, done, WINDOW, bucket=300)
    assert tp.starts == (T0, T0 + 300, T0 + 600, T0 + 900)
    # A at 300 opens bucket 1; B at 900 and C at 1000 fall in bucket 3
    assert tp.counts == {"b2c": (0, 1, 0, 1), "b2b": (0, 0, 0, 1)}
    late_window = kpi.throughput(ORDERS, done, Window(T0 + 600, T0 + 1200), bucket=300)
    assert late_window.counts == {"b2c": (0, 1), "b2b": (0, 1)}


def test_bucket_gives_at_most_48_bars() -> None:
    assert kpi.bucket_for(1200) == 60  # 20 bars of a minute
    assert kpi.bucket_for(8 * 3600) == 600  # 48 bars of 10 minutes
    assert kpi.bucket_for(9 * 3600) == 900  # 54 of 10 minutes is too many: 36 of 15
    assert kpi.bucket_for(3 * 86400) == 7200  # 36 bars of 2 hours
    assert kpi.bucket_for(0) == 60


def test_cycle_times_by_type() -> None:
    done = kpi.completions(ORDERS, COMPLETIONS)
    ct = kpi.cycle_times(ORDERS, done, WINDOW)
    assert ct["b2c"].values == (300.0, 840.0)
    assert ct["b2c"].p50 == 570.0
    assert ct["b2c"].p95 == 840.0  # nearest rank: ceil(0.95 * 2) = 2nd value
    assert ct["b2b"].as_dict() == {"count": 1, "p50": 1000.0, "p95": 1000.0, "max": 1000.0}
    assert kpi.cycle_times(ORDERS, done, Window(T0, T0 + 500))["b2c"].values == (300.0,)


def test_distribution_percentiles_by_nearest_rank() -> None:
    d = Distribution.of(float(v) for v in range(20, 0, -1))  # 1..20, given unsorted
    assert (d.count, d.p50, d.p95, d.max) == (20, 10.5, 19.0, 20.0)
    empty = Distribution.of([])
    assert empty.as_dict() == {"count": 0, "p50": None, "p95": None, "max": None}


def test_on_time_late_and_overdue_by_type() -> None:
    done = kpi.completions(ORDERS, COMPLETIONS)
    result = kpi.on_time(ORDERS, done, WINDOW)
    assert result == {"b2c": OnTime(1, 1, 1), "b2b": OnTime(1, 0, 0)}
    assert result["b2c"].share == pytest.approx(1 / 3)
    # before D's cut-off (500) and B's completion nothing is overdue or late yet
    assert kpi.on_time(ORDERS, done, Window(T0, T0 + 400))["b2c"] == OnTime(1, 0, 0)
    assert OnTime(0, 0, 0).share is None


TRIPS = [
    # one batch job J1 of R1 serves A and B: [10, 130] when merged
    ev("A", 10, "robot_assigned", robot="R1", job="J1"),
    ev("B", 20, "robot_assigned", robot="R1", job="J1"),
    ev("A", 110, "dropped", robot="R1"),
    ev("B", 130, "dropped", robot="R1"),
    # R2 gives way, then brings C's tote back: its trip lasts to the return, [100, 260]
    ev("C", 100, "robot_assigned", robot="R2", job="J2"),
    ev("C", 200, "robot_gave_way", robot="R2"),
    ev("C", 260, "tote_returned", robot="R2"),
    ev("C", 300, "robot_assigned", robot="R1", job="J3"),
    ev("C", 400, "dropped", robot="R1"),
    # D's trip has not ended: it runs to the end of the window
    ev("D", 1100, "robot_assigned", robot="R2", job="J4"),
    ev("D", 1150, "waiting"),  # no robot: not a trip event
    # no drop recorded for F: the scan of its tote at the sorter ends the trip
    ev("F", 500, "robot_assigned", robot="R3", job="J5"),
    ev("F", 560, "scanned", outcome="diverted"),
    ev("F", 600, "completed"),
]


def test_trip_spans_from_assignment_to_drop_or_return() -> None:
    spans = kpi.trip_spans(TRIPS, until=T0 + 1200)
    assert sorted(spans["R1"]) == [(T0 + 10, T0 + 110), (T0 + 20, T0 + 130), (T0 + 300, T0 + 400)]
    assert sorted(spans["R2"]) == [(T0 + 100, T0 + 260), (T0 + 1100, T0 + 1200)]
    assert spans["R3"] == [(T0 + 500, T0 + 560)]


def test_robot_utilisation_is_the_share_of_the_window_on_trips() -> None:
    use = kpi.robot_use(TRIPS, WINDOW)
    assert use["R1"].busy_seconds == 220.0  # 120 (batch, overlap counted once) + 100
    assert use["R1"].trips == 2  # jobs J1 and J3
    assert use["R1"].share == pytest.approx(220 / 1200)
    assert use["R2"].busy_seconds == 260.0  # 160 + 100 to the window's end
    assert use["R2"].trips == 2
    clipped = kpi.robot_use(TRIPS, Window(T0 + 50, T0 + 350))
    assert clipped["R1"].busy_seconds == 130.0  # [50, 130] and [300, 350]
    assert clipped["R1"].trips == 1  # only J3 started in the window
    assert clipped["R1"].intervals == ((T0 + 50, T0 + 130), (T0 + 300, T0 + 350))
    assert clipped["R2"].busy_seconds == 160.0 and clipped["R2"].trips == 1  # J2 at 100


def test_merge_joins_overlapping_spans() -> None:
    assert kpi.merge([(5, 8), (0, 2), (1, 3), (3, 4)]) == [(0, 4), (5, 8)]


def test_sorter_outcomes_from_scans_and_refused_diverts() -> None:
    events = [
        ev("A", 10, "scanned", outcome="diverted", reason=None),
        ev("B", 20, "scanned", outcome="diverted", reason=None),
        ev("B", 15, "scanned", outcome="no_read", reason=None),
        ev("C", 30, "scanned", outcome="chute_full", reason="no_free_chute"),
        ev("C", 35, "divert_refused", chute="VAS-1"),
        ev("D", 40, "scanned", outcome="rejected", reason="too_many_passes"),
        ev("D", 5000, "scanned", outcome="diverted"),  # outside the window
    ]
    s = kpi.sorter_outcomes(events, WINDOW)
    assert s.diverted == 2
    assert s.recirculated == {"chute_full: no_free_chute": 1, "divert_refused": 1, "no_read": 1}
    assert s.rejected == {"too_many_passes": 1}
    assert s.total == 6


def test_asrs_cycles_by_aisle_and_kind() -> None:
    commands = [
        CommandRow("A1", "store", "done", T0 + 10, T0 + 40),
        CommandRow("A1", "store", "done", T0 + 100, T0 + 120),
        CommandRow("A1", "dual", "done", T0, T0 + 50),
        CommandRow("A2", "retrieve", "failed", T0, T0 + 70),
        CommandRow("A2", "retrieve", "sent", T0, T0 + 80),  # not done yet
        CommandRow("A2", "retrieve", "done", T0 + 1190, T0 + 1300),  # done after the window
    ]
    cycles, failed = kpi.asrs_cycles(commands, WINDOW)
    assert list(cycles) == [("A1", "dual"), ("A1", "store")]
    assert cycles[("A1", "store")].values == (20.0, 30.0)
    assert cycles[("A1", "dual")].values == (50.0,)
    assert failed == 1


def test_window_defaults_to_the_span_of_the_data() -> None:
    cmd = CommandRow("A1", "store", "done", T0 - 50, T0 + 5000)
    assert kpi.window_of(ORDERS, COMPLETIONS, [cmd]) == Window(T0 - 50, T0 + 5000)
    assert kpi.window_of(ORDERS, COMPLETIONS, [], since=T0 + 200) == Window(T0 + 200, T0 + 1000)
    assert kpi.window_of([], [], [], until=T0) == Window(T0, T0)


def test_no_data_gives_empty_kpis() -> None:
    window = kpi.window_of([], [], [])
    k = kpi.compute([], [], [], window)
    assert k.robots == {} and k.asrs == {} and k.sorter.total == 0
    assert k.throughput.counts == {"b2c": (0,), "b2b": (0,)}
    data = kpi.as_dict(k)
    assert data["completed"] == {"b2c": 0, "b2b": 0}
    assert data["on_time"]["b2c"]["share"] is None


def test_as_dict_reports_the_whole_computation() -> None:
    k = kpi.compute(ORDERS, [*COMPLETIONS, *TRIPS], [], WINDOW)
    data = kpi.as_dict(k)
    assert data["window"]["since"] == kpi.iso(T0)
    assert data["completed"] == {"b2c": 2, "b2b": 1}
    assert data["throughput"]["bucket_seconds"] == 60
    assert data["on_time"]["b2c"] == {"on_time": 1, "late": 1, "overdue": 1, "share": 0.3333}
    assert data["robots"]["R1"] == {"trips": 2, "busy_seconds": 220.0, "share": 0.1833}
    assert data["sorter"] == {"diverted": 1, "recirculated": {}, "rejected": {}}


def test_summary_rows_and_their_text() -> None:
    cmds = [
        CommandRow("A1", "retrieve", "done", T0 + 100, T0 + 130),
        CommandRow("A1", "retrieve", "done", T0 + 200, T0 + 245),
        CommandRow("A1", "store", "failed", T0 + 300, T0 + 310),
    ]
    k = kpi.compute(ORDERS, [*COMPLETIONS, *TRIPS], cmds, WINDOW)
    data = kpi.as_dict(k)["summary"]
    assert data["window_hours"] == 0.33
    assert data["orders"][2] == {
        "type": "all",
        "completed": 3,
        "orders_per_hour": 9.0,  # in the 1200 s window
        "cycle_minutes": {"p50": 14.0, "p95": 16.7, "max": 16.7},  # 300, 840 and 1000 s
        "on_time_share": 0.5,  # A and C on time, B late, D overdue
    }
    assert data["robots"] == {"with_trips": 3, "mean_utilisation": 0.15}  # 220, 260, 60 s
    rows, notes = summary.table(data)
    assert [summary.HEAD, *rows] == [
        summary.HEAD,
        ["B2C", "2", "6.0", "9.5", "14.0", "14.0", "33.3%"],
        ["B2B", "1", "3.0", "16.7", "16.7", "16.7", "100.0%"],
        ["All", "3", "9.0", "14.0", "16.7", "16.7", "50.0%"],
    ]
    assert notes == [
        ("Robots", "3 robots made trips, mean utilisation 15.0%"),
        ("Sorter", "1 diverted, 0 recirculated, 0 rejected"),
        ("AS/RS", "2 crane cycles done, 1 failed: A1 single retrieve 2 (p50 37.5 s)"),
    ]
    # an empty window: no rate, no cycle times, no share
    empty = kpi.as_dict(kpi.compute([], [], [], Window(T0, T0)))["summary"]
    assert summary.table(empty)[0][-1] == ["All", "0", "-", "-", "-", "-", "-"]

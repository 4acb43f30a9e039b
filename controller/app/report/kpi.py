"""A shift's KPIs from the order history: pure functions over rows (see
:mod:`controller.app.report.db`).

Every time is line time in seconds since the epoch (the store writes the line clock's calendar
time). A :class:`~controller.app.report.model.Window` bounds what is counted: completions, scans and
crane cycles that end in it, and the part of each robot trip that falls in it. The rows and the
results are in :mod:`controller.app.report.model`; this module computes the one from the other and
writes the results as JSON.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from controller.app.report.model import (
    ORDER_TYPES,
    TOTE_PAST_ROBOT,
    TRIP_DROPS,
    TRIP_SPOILED,
    CommandRow,
    Distribution,
    EventRow,
    Kpis,
    OnTime,
    OrderRow,
    RobotUse,
    SorterOutcomes,
    Throughput,
    Window,
)
from controller.app.report.summary import summary

# the bucket of the throughput plot: the smallest that gives at most MAX_BUCKETS bars
BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
MAX_BUCKETS = 48


def completions(orders: Sequence[OrderRow], events: Iterable[EventRow]) -> dict[str, float]:
    """When each completed order completed: its first ``completed`` event."""
    done: dict[str, float] = {}
    for e in events:
        if e.type == "completed" and e.order_id not in done:
            done[e.order_id] = e.at
    known = {o.id for o in orders}
    return {k: v for k, v in done.items() if k in known}


def bucket_for(seconds: float) -> int:
    """The bucket width that splits ``seconds`` into at most :data:`MAX_BUCKETS` bars."""
    for b in BUCKETS:
        if seconds / b <= MAX_BUCKETS:
            return b
    return BUCKETS[-1]


def throughput(
    orders: Sequence[OrderRow], done: Mapping[str, float], window: Window, bucket: int = 0
) -> Throughput:
    """Orders completed per bucket of the window, by type. Buckets start at the window's start."""
    bucket = bucket or bucket_for(window.seconds)
    n = max(math.ceil(window.seconds / bucket), 1)
    counts = {t: [0] * n for t in _types(orders)}
    for o in orders:
        at = done.get(o.id)
        if at is not None and window.holds(at):
            counts[o.type][min(int((at - window.start) // bucket), n - 1)] += 1
    starts = tuple(window.start + i * bucket for i in range(n))
    return Throughput(bucket, starts, {t: tuple(c) for t, c in counts.items()})


def cycle_times(
    orders: Sequence[OrderRow], done: Mapping[str, float], window: Window
) -> dict[str, Distribution]:
    """From creation to completion, for the orders completed in the window, by type."""
    values: dict[str, list[float]] = {t: [] for t in _types(orders)}
    for o in orders:
        at = done.get(o.id)
        if at is not None and window.holds(at):
            values[o.type].append(at - o.created_at)
    return {t: Distribution.of(v) for t, v in values.items()}


def on_time(
    orders: Sequence[OrderRow], done: Mapping[str, float], window: Window
) -> dict[str, OnTime]:
    """Orders completed in the window by their cut-off or after it, and orders not completed
    whose cut-off fell in the window (cancelled orders do not count)."""
    tally: dict[str, Counter[str]] = {t: Counter() for t in _types(orders)}
    for o in orders:
        at = done.get(o.id)
        if at is not None:
            if window.holds(at):
                tally[o.type]["on_time" if at <= o.cutoff else "late"] += 1
        elif o.status != "cancelled" and window.holds(o.cutoff):
            tally[o.type]["overdue"] += 1
    return {t: OnTime(c["on_time"], c["late"], c["overdue"]) for t, c in tally.items()}


def trip_spans(events: Iterable[EventRow], until: float) -> dict[str, list[tuple[float, float]]]:
    """Each robot's trips, as (start, end) spans, from the orders' histories.

    A trip starts at ``robot_assigned`` and ends at the order's next drop of that robot
    (``dropped``, ``tote_returned``) or the event that spoiled it (robot lost, gave way, ...),
    at the latest when the order's tote is scanned at the sorter or the order completes.
    A tote the robot brings back after a spoiled trip extends that trip to the return. A trip
    with no end yet runs until ``until``."""
    by_order: dict[str, list[EventRow]] = defaultdict(list)
    for e in events:
        by_order[e.order_id].append(e)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for history in by_order.values():
        history.sort(key=lambda e: e.at)
        open_: dict[str, float] = {}
        spoiled: dict[str, int] = {}  # robot -> index in spans[robot] of its spoiled trip
        for e in history:
            robot = str(e.data.get("robot") or "")
            if e.type in TOTE_PAST_ROBOT:
                for r, start in open_.items():
                    spans[r].append((start, e.at))
                open_.clear()
            if not robot:
                continue
            if e.type == "robot_assigned":
                if robot in open_:
                    spans[robot].append((open_[robot], e.at))
                open_[robot] = e.at
                spoiled.pop(robot, None)
            elif e.type in TRIP_DROPS or e.type in TRIP_SPOILED:
                if robot in open_:
                    spans[robot].append((open_.pop(robot), e.at))
                    if e.type in TRIP_SPOILED:
                        spoiled[robot] = len(spans[robot]) - 1
                elif e.type == "tote_returned" and robot in spoiled:
                    i = spoiled.pop(robot)
                    spans[robot][i] = (spans[robot][i][0], e.at)
        for robot, start in open_.items():
            spans[robot].append((start, max(until, start)))
    return dict(spans)


def merge(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping spans joined (a batch trip serves several orders at once)."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def robot_use(events: Iterable[EventRow], window: Window) -> dict[str, RobotUse]:
    """Per robot: the share of the window it spent on trips."""
    events = list(events)
    jobs: dict[str, set[object]] = defaultdict(set)  # a batch job is one trip for many orders
    for e in events:
        if e.type == "robot_assigned" and window.holds(e.at):
            jobs[str(e.data.get("robot") or "")].add(e.data.get("job") or (e.order_id, e.at))
    out: dict[str, RobotUse] = {}
    for robot, spans in sorted(trip_spans(events, window.end).items()):
        trips = len(jobs[robot])
        clipped = [
            (max(s, window.start), min(e, window.end))
            for s, e in merge(spans)
            if e >= window.start and s <= window.end
        ]
        busy = sum(e - s for s, e in clipped)
        if trips or busy:
            share = busy / window.seconds if window.seconds else 0.0
            out[robot] = RobotUse(trips, busy, share, tuple(clipped))
    return out


def sorter_outcomes(events: Iterable[EventRow], window: Window) -> SorterOutcomes:
    """What the sorter did with the orders' totes at each scan (``scanned``) and each divert it
    refused (``divert_refused``: the tote rides on)."""
    diverted = 0
    recirculated: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    for e in events:
        if not window.holds(e.at):
            continue
        if e.type == "divert_refused":
            recirculated["divert_refused"] += 1
        elif e.type == "scanned":
            outcome = str(e.data.get("outcome") or "unknown")
            reason = e.data.get("reason")
            if outcome == "diverted":
                diverted += 1
            elif outcome == "rejected":
                rejected[str(reason or "unknown")] += 1
            else:
                recirculated[f"{outcome}: {reason}" if reason else outcome] += 1
    return SorterOutcomes(
        diverted, dict(sorted(recirculated.items())), dict(sorted(rejected.items()))
    )


def asrs_cycles(
    commands: Iterable[CommandRow], window: Window
) -> tuple[dict[tuple[str, str], Distribution], int]:
    """Crane commands done in the window, by aisle and kind, with their time from being written
    to being done; and how many failed in the window."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    failed = 0
    for c in commands:
        if not window.holds(c.updated_at):
            continue
        if c.state == "done":
            values[(c.aisle, c.kind)].append(c.updated_at - c.created_at)
        elif c.state == "failed":
            failed += 1
    return {k: Distribution.of(v) for k, v in sorted(values.items())}, failed


def window_of(
    orders: Sequence[OrderRow],
    events: Sequence[EventRow],
    commands: Sequence[CommandRow],
    since: float | None = None,
    until: float | None = None,
) -> Window:
    """The window asked for; an open end is the first or last time in the data."""
    times = [o.created_at for o in orders] + [e.at for e in events]
    times += [t for c in commands for t in (c.created_at, c.updated_at)]
    start = since if since is not None else min(times, default=until or 0.0)
    end = until if until is not None else max(times, default=start)
    return Window(start, max(end, start))


def compute(
    orders: Sequence[OrderRow],
    events: Sequence[EventRow],
    commands: Sequence[CommandRow],
    window: Window,
) -> Kpis:
    done = completions(orders, events)
    asrs, failed = asrs_cycles(commands, window)
    return Kpis(
        window=window,
        throughput=throughput(orders, done, window),
        cycle_times=cycle_times(orders, done, window),
        on_time=on_time(orders, done, window),
        robots=robot_use(events, window),
        sorter=sorter_outcomes(events, window),
        asrs=asrs,
        asrs_failed=failed,
    )


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def as_dict(k: Kpis) -> dict[str, Any]:
    """The KPIs as JSON: times ISO 8601 (UTC), durations in line seconds, shares 0..1; and the
    headline figures as shown (``summary``, see :mod:`controller.app.report.summary`)."""
    tp = k.throughput
    return {
        "window": {"since": iso(k.window.start), "until": iso(k.window.end)},
        "summary": summary(k),
        "completed": {t: sum(c) for t, c in tp.counts.items()},
        "throughput": {
            "bucket_seconds": tp.bucket_seconds,
            "buckets": [
                {"start": iso(s), **{t: c[i] for t, c in tp.counts.items()}}
                for i, s in enumerate(tp.starts)
            ],
        },
        "cycle_time_seconds": {t: d.as_dict() for t, d in k.cycle_times.items()},
        "on_time": {
            t: {
                "on_time": o.on_time,
                "late": o.late,
                "overdue": o.overdue,
                "share": None if o.share is None else round(o.share, 4),
            }
            for t, o in k.on_time.items()
        },
        "robots": {
            r: {
                "trips": u.trips,
                "busy_seconds": round(u.busy_seconds, 1),
                "share": round(u.share, 4),
            }
            for r, u in k.robots.items()
        },
        "sorter": {
            "diverted": k.sorter.diverted,
            "recirculated": dict(k.sorter.recirculated),
            "rejected": dict(k.sorter.rejected),
        },
        "asrs": {
            "cycles": [
                {"aisle": aisle, "kind": kind, **d.as_dict()} for (aisle, kind), d in k.asrs.items()
            ],
            "failed": k.asrs_failed,
        },
    }


def _types(orders: Iterable[OrderRow]) -> list[str]:
    """B2C and B2B always (in that order, so colours and rows stay put), then any other."""
    return [*ORDER_TYPES, *sorted({o.type for o in orders} - set(ORDER_TYPES))]

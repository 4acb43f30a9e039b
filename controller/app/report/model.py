"""What the KPIs are made of: the rows of the order history they read, the window they count
in, and the results (see :mod:`controller.app.report.kpi` for how they are computed).

The rows are read by :mod:`controller.app.report.db`; :data:`EVENT_TYPES` are the only history
events it needs. Every time is line time in seconds since the epoch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ORDER_TYPES = ("b2c", "b2b")
# a robot's trip for an order starts with robot_assigned and ends with one of these
TRIP_DROPS = frozenset({"dropped", "tote_returned"})
TRIP_SPOILED = frozenset(
    {
        "robot_action_failed",
        "robot_lost",
        "robot_trip_ended_without_drop",
        "robot_cancelled_by_operator",
        "robot_gave_way",
    }
)
# the order's tote reached the sorter: its robot trip is over even if no drop was recorded
TOTE_PAST_ROBOT = frozenset({"scanned", "completed"})
# the only events the KPIs read from the history
KPI_EVENTS = frozenset({"robot_assigned", "completed", "scanned", "divert_refused"})
EVENT_TYPES = KPI_EVENTS | TRIP_DROPS | TRIP_SPOILED


@dataclass(frozen=True)
class OrderRow:
    id: str
    type: str
    status: str
    created_at: float
    cutoff: float  # B2C due_at; B2B deliver_until if given, else due_at


@dataclass(frozen=True)
class EventRow:
    order_id: str
    at: float
    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class CommandRow:
    """An AS/RS crane command (``asrs_commands``): written at ``created_at``, last changed at
    ``updated_at`` (when it was done or failed)."""

    aisle: str
    kind: str  # store, retrieve, dual
    state: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 0.0)

    def holds(self, t: float) -> bool:
        return self.start <= t <= self.end


@dataclass(frozen=True)
class Distribution:
    """Durations in seconds: how many, median, 95th percentile, longest, and all of them."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        return cls(tuple(sorted(values)))

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def p50(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def p95(self) -> float | None:
        # nearest rank: the smallest value with at least 95 % of the values at or below it
        return self.values[math.ceil(0.95 * len(self.values)) - 1] if self.values else None

    @property
    def max(self) -> float | None:
        return self.values[-1] if self.values else None

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {"count": self.count, "p50": r(self.p50), "p95": r(self.p95), "max": r(self.max)}


@dataclass(frozen=True)
class Throughput:
    bucket_seconds: int
    starts: tuple[float, ...]  # start of each bucket
    counts: Mapping[str, tuple[int, ...]]  # per order type, one count per bucket


@dataclass(frozen=True)
class OnTime:
    on_time: int  # completed by the cut-off
    late: int  # completed after it
    overdue: int  # not completed, cut-off before the window's end

    @property
    def share(self) -> float | None:
        total = self.on_time + self.late + self.overdue
        return self.on_time / total if total else None


@dataclass(frozen=True)
class RobotUse:
    trips: int  # jobs (one trip for one or a batch of orders) that started in the window
    busy_seconds: float
    share: float  # of the window
    intervals: tuple[tuple[float, float], ...]  # busy spans, clipped to the window


@dataclass(frozen=True)
class SorterOutcomes:
    diverted: int = 0  # to the chute of the item's destination
    recirculated: Mapping[str, int] = field(default_factory=dict)  # by reason
    rejected: Mapping[str, int] = field(default_factory=dict)  # to the reject chute, by reason

    @property
    def total(self) -> int:
        return self.diverted + sum(self.recirculated.values()) + sum(self.rejected.values())


@dataclass(frozen=True)
class Kpis:
    window: Window
    throughput: Throughput
    cycle_times: Mapping[str, Distribution]
    on_time: Mapping[str, OnTime]
    robots: Mapping[str, RobotUse]
    sorter: SorterOutcomes
    asrs: Mapping[tuple[str, str], Distribution]  # (aisle, kind) -> done cycles
    asrs_failed: int

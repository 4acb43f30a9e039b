"""Value-added stations: B2B totes wait there for verification before the order completes.

A station task carries the order's handling instructions (label template, packaging, free text),
the totes that make up the order (the robot's tote and the AS/RS case totes, see
:mod:`controller.asrs.case_picks.picks`) and the expected contents. The station reports what it
counted; a match completes the order, any mismatch puts it into ``exception`` with the reason. It
is never silently completed. ``settle`` (the case picks) takes the counted cases out of the AS/RS
totes before the order completes; a problem it reports puts the order into exception instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from controller.line.history import History
from controller.orders.model import Handling, OrderRecord, OrderStatus
from controller.orders.waiting import VerificationMismatch
from routing import verification


@dataclass(frozen=True)
class ExpectedLine:
    line_id: str
    sku: str
    uom: str
    quantity: int  # units in the robot's tote; cases for a line served from the AS/RS


@dataclass(frozen=True)
class StationTask:
    station_id: str
    order_id: str
    totes: tuple[str, ...]  # every tote of the order at the station, the robot's first
    handling: Handling | None
    lines: tuple[ExpectedLine, ...]
    arrived_at: datetime
    case_lines: frozenset[str] = frozenset()  # lines counted in cases from AS/RS totes

    @property
    def tote(self) -> str:
        return self.totes[0]


class UnknownTask(LookupError):
    """No open task for that order at that station."""


@dataclass(frozen=True)
class VerificationResult:
    order: OrderRecord
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


Settle = Callable[[StationTask, OrderRecord, bool], Awaitable[list[str]]]


async def _nothing_to_settle(task: StationTask, rec: OrderRecord, ok: bool) -> list[str]:
    return []


class Stations:
    def __init__(self, history: History, settle: Settle = _nothing_to_settle) -> None:
        self.history = history
        self.settle = settle
        self.tasks: dict[str, StationTask] = {}  # order id -> task

    def open(
        self,
        rec: OrderRecord,
        station_id: str,
        totes: Sequence[str],
        case_lines: Collection[str] = (),
    ) -> StationTask:
        if not totes:
            raise ValueError(f"a station task of order {rec.id} needs at least one tote")
        cases = frozenset(case_lines)
        lines = tuple(
            ExpectedLine(
                ln.line_id,
                ln.sku,
                ln.uom,
                ln.quantity if ln.line_id in cases else rec.picked.get(ln.line_id, 0),
            )
            for ln in rec.body.lines
        )
        task = StationTask(
            station_id, rec.id, tuple(totes), rec.body.handling, lines, rec.updated_at, cases
        )
        self.tasks[rec.id] = task
        return task

    def at(self, station_id: str) -> list[StationTask]:
        return sorted(
            (t for t in self.tasks.values() if t.station_id == station_id),
            key=lambda t: t.arrived_at,
        )

    def withdraw(self, order_id: str) -> StationTask | None:
        return self.tasks.pop(order_id, None)

    async def verify(
        self, station_id: str, order_id: str, counted: list[verification.Counted], operator: str
    ) -> VerificationResult:
        task = self.tasks.get(order_id)
        if task is None or task.station_id != station_id:
            raise UnknownTask(f"no open task for order {order_id!r} at station {station_id!r}")
        rec = await self.history.get(order_id)
        if rec is None or rec.status.terminal:
            self.tasks.pop(order_id, None)
            raise UnknownTask(f"order {order_id!r} is no longer waiting for verification")
        expected = [verification.Expected(ln.line_id, ln.sku, ln.quantity) for ln in task.lines]
        mismatches = [m.describe() for m in verification.verify(expected, counted)]
        data = {
            "station": station_id,
            "operator": operator,
            "counted": [
                {"line_id": c.line_id, "sku": c.sku, "quantity": c.quantity} for c in counted
            ],
        }
        del self.tasks[order_id]
        problems = await self.settle(task, rec, not mismatches)
        if problems and not mismatches:
            mismatches = problems
            data = {**data, "problems": problems}
        if mismatches:
            rec = await self.history.record(
                rec,
                "verification_failed",
                OrderStatus.EXCEPTION,
                step="exception",
                waiting=VerificationMismatch(tuple(mismatches)),
                data={**data, "mismatches": mismatches},
            )
            self.history.metrics.orders_finished.labels(rec.type.value, "exception").inc()
        else:
            counted_cases = {c.line_id: c.quantity for c in counted if c.line_id in task.case_lines}
            picked = {**rec.picked, **counted_cases}
            rec = await self.history.record(
                rec, "verified", step="verified", picked=picked, data=data
            )
            rec = await self.history.finish(rec, "completed", OrderStatus.COMPLETED, step=None)
        return VerificationResult(rec, tuple(mismatches))

"""Value-added stations: B2B totes wait there for verification before the order completes.

A station task carries the order's handling instructions (label template, packaging, free text)
and the expected contents of the tote. The station reports what it counted; a match completes the
order, any mismatch puts it into ``exception`` with the reason. It is never silently completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.history import History
from controller.orders import Handling, OrderRecord, OrderStatus
from routing import verification


@dataclass(frozen=True)
class ExpectedLine:
    line_id: str
    sku: str
    uom: str
    quantity: int  # units in the tote


@dataclass(frozen=True)
class StationTask:
    station_id: str
    order_id: str
    tote: str
    handling: Handling | None
    lines: tuple[ExpectedLine, ...]
    arrived_at: datetime


class UnknownTask(LookupError):
    """No open task for that order at that station."""


@dataclass(frozen=True)
class VerificationResult:
    order: OrderRecord
    mismatches: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatches


class Stations:
    def __init__(self, history: History) -> None:
        self.history = history
        self.tasks: dict[str, StationTask] = {}  # order id -> task

    def open(self, rec: OrderRecord, station_id: str, tote: str) -> StationTask:
        lines = tuple(
            ExpectedLine(ln.line_id, ln.sku, ln.uom, rec.picked.get(ln.line_id, 0))
            for ln in rec.body.lines
        )
        task = StationTask(station_id, rec.id, tote, rec.body.handling, lines, rec.updated_at)
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
        if mismatches:
            rec = await self.history.record(
                rec,
                "verification_failed",
                OrderStatus.EXCEPTION,
                step="exception",
                waiting_reason="verification mismatch: " + "; ".join(mismatches),
                data={**data, "mismatches": mismatches},
            )
            self.history.metrics.orders_finished.labels(rec.type.value, "exception").inc()
        else:
            rec = await self.history.record(rec, "verified", step="verified", data=data)
            rec = await self.history.finish(rec, "completed", OrderStatus.COMPLETED, step=None)
        return VerificationResult(rec, tuple(mismatches))

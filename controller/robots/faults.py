"""Robot faults: which failed actions are the robot's fault, and robots that keep failing.

VDA 5050 reports no quantity for a pick, so a failed pick says nothing about the stock unless
the robot says so. Each robot model declares in the line file how it reports a pick that found
too few units (``robots.models.<model>.pick.shortage_results``: the failed action's
``resultDescription``, or the ``errorType`` of the error that references it). Only such a report
is a :attr:`PickFailure.SHORTAGE` and books a short pick; every other failed action is a
:attr:`PickFailure.FAULT` of the robot: the stock it reserved is given back untouched, its order
goes to another robot, and the fault counts against the robot.

:class:`RobotFaults` keeps the count. A robot whose actions failed ``robots.fault_limit`` times in
a row gets no new trip for ``robots.fault_hold`` line seconds (logged once when it is taken out
and once when it is back); a finished action ends the run of failures. A trip the robot made no
progress on for its deadline counts against the robot too, but never holds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from devices import base as dev
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger(__name__)


class PickFailure(StrEnum):
    SHORTAGE = "shortage"  # the robot found fewer units at the location than asked for
    FAULT = "fault"  # anything else: the robot could not do it


def classify(reason: str, shortage_results: frozenset[str]) -> PickFailure:
    """What a failed pick reported as ``reason`` means. ``reason`` is the robot's
    ``resultDescription`` or, without one, ``"<errorType>: <errorDescription>"`` of the error
    that references the action; either the whole result or the error type must be one of the
    model's ``shortage_results``."""
    result = reason.strip()
    error_type = result.split(":", 1)[0].strip()
    if result in shortage_results or error_type in shortage_results:
        return PickFailure.SHORTAGE
    return PickFailure.FAULT


@dataclass
class _Record:
    in_a_row: int = 0
    held_until: float | None = None  # line time the robot gets trips again
    last: str = ""  # the last fault's reason


class RobotFaults:
    """Failed actions counted against each robot, and robots held out of dispatch for them."""

    def __init__(self, config: LineConfig, clock: Clock, metrics: Metrics) -> None:
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.limit = config.robots.fault_limit
        self.hold = config.robots.fault_hold
        self._robots: dict[str, _Record] = {}

    def pick_failure(self, ev: dev.RobotActionFailed) -> PickFailure:
        """Shortage or fault, by what the robot's model declares as its shortage report."""
        if ev.action_type != "pick":
            return PickFailure.FAULT
        codes = frozenset(self.config.robot_model(ev.serial).pick.shortage_results)
        return classify(ev.reason, codes)

    def overdue(self, serial: str, kind: str) -> None:
        """``serial`` made no progress on a trip for its deadline. Counted against the robot,
        but not towards its hold: a robot stuck behind others on a busy line is no broken one."""
        self.metrics.robot_faults.labels(serial, kind).inc()

    def fault(self, serial: str, kind: str, reason: str) -> None:
        """An action of ``serial`` failed through no fault of the stock."""
        self.metrics.robot_faults.labels(serial, kind).inc()
        self.expire()
        record = self._robots.setdefault(serial, _Record())
        record.in_a_row += 1
        record.last = reason
        if record.in_a_row < self.limit or record.held_until is not None:
            return
        record.held_until = self.clock.now() + self.hold
        self._gauge()
        log.warning(
            "robot taken out of dispatch after repeated faults",
            extra={
                "robot": serial,
                "faults_in_a_row": record.in_a_row,
                "last_fault": reason,
                "hold_seconds": self.hold,
            },
        )

    def succeeded(self, serial: str) -> None:
        """An action of ``serial`` finished: its run of failures is over."""
        record = self._robots.get(serial)
        if record is not None and record.held_until is None:
            record.in_a_row = 0

    def accepts_trips(self, serial: str) -> bool:
        record = self._robots.get(serial)
        return record is None or record.held_until is None or record.held_until <= self.clock.now()

    def held(self) -> dict[str, float]:
        """Robots held out of dispatch now -> line seconds left."""
        now = self.clock.now()
        return {
            serial: r.held_until - now
            for serial, r in self._robots.items()
            if r.held_until is not None and r.held_until > now
        }

    def expire(self) -> None:
        """Give robots whose hold is over their trips again (from the line's watcher)."""
        now = self.clock.now()
        for serial, record in self._robots.items():
            if record.held_until is None or record.held_until > now:
                continue
            record.held_until, record.in_a_row = None, 0
            self._gauge()
            log.warning("robot back in dispatch after its fault hold", extra={"robot": serial})

    def _gauge(self) -> None:
        self.metrics.robots_fault_held.set(
            sum(1 for r in self._robots.values() if r.held_until is not None)
        )

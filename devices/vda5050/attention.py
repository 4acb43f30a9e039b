"""What keeps one robot from new work, and what an operator does to bring it back.

:class:`RobotAttention` belongs to a :class:`~devices.vda5050.tracker.RobotTracker` and holds the
robot's :class:`~devices.vda5050.guard.OrderGuard` (order rate, backoff after rejections, the
operator flag) and its :class:`~devices.vda5050.instant.InstantActions` (instant actions followed
to an outcome; ``cancelOrder`` actions the robot refuses count against it). It says why the robot
needs an operator (the guard's flag, or it stands where no new order can start, see
:mod:`devices.vda5050.placement`), logs each of these once when it starts and once when it
ends, and counts rejections and failed instant actions in the metrics.

The operator flag clears when the robot reconnects (``connection`` ONLINE after OFFLINE or
CONNECTIONBROKEN: the tracker calls :meth:`RobotAttention.reset`), when its operating mode
leaves automatic and comes back (an operator had it in hand), or when an operator resumes it.
No I/O: tested without a broker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from devices.base import DeviceEvent, RobotAction, RobotActionFailed, RobotActionFinished
from devices.vda5050.guard import OrderGuard
from devices.vda5050.instant import InstantActions, Outcome
from devices.vda5050.placement import Misplaced, Misplacement, NodePlaces, misplacement
from kernel.clock import Clock
from kernel.metrics import Metrics

log = logging.getLogger("devices.vda5050.tracker")  # a part of the robot's tracker

AUTOMATIC = frozenset({"AUTOMATIC", "SEMIAUTOMATIC"})
JsonDict = dict[str, Any]


class RobotAttention:
    """One robot's guard, its instant actions, and why it needs an operator."""

    def __init__(
        self,
        serial: str,
        clock: Clock,
        deviation: float,
        *,
        nodes: NodePlaces | None = None,
        guard: OrderGuard | None = None,
        action_deadline: float = 10.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.serial = serial
        self._clock = clock
        self._deviation = deviation
        self._nodes = nodes
        self._metrics = metrics
        self.guard = guard or OrderGuard()
        self.instants = InstantActions(action_deadline)
        self._left_automatic = False  # out of automatic mode since the operator flag was set
        self._misplaced: Misplaced | None = None  # as last logged
        # the misplacement of the state message looked at last: a state message is never
        # changed once received, and snapshots ask for every robot many times a second
        self._placed: tuple[Mapping[str, Any] | None, Misplacement | None] = (None, None)
        self._failing: dict[str, str] = {}  # action type -> why it failed last, until it works

    # --- why the robot needs an operator ------------------------------------------------------

    def reason(self, state: Mapping[str, Any] | None) -> str | None:
        """Why the robot needs an operator before it works again, or None."""
        if self.guard.operator is not None:
            return f"needs an operator: {self.guard.operator}"
        return self.reason_placed(self.misplacement(state))

    def reason_placed(self, misplaced: Misplacement | None) -> str | None:
        """:meth:`reason`, with the robot's :meth:`misplacement` already known."""
        if self.guard.operator is not None:
            return f"needs an operator: {self.guard.operator}"
        return None if misplaced is None else str(misplaced)

    def misplacement(self, state: Mapping[str, Any] | None) -> Misplacement | None:
        """What keeps a new order from starting where the robot of ``state`` stands."""
        if state is None or self._nodes is None:
            return None
        seen, placed = self._placed
        if seen is not state:
            placed = misplacement(state, self._nodes, self._deviation)
            self._placed = (state, placed)
        return placed

    def log_misplacement(self, misplaced: Misplacement | None) -> None:
        """Logged when it starts (or changes kind) and when the robot is back on a node."""
        kind = None if misplaced is None else misplaced.kind
        if kind == self._misplaced:
            return
        if misplaced is not None:
            log.warning(str(misplaced), extra={"serial": self.serial, "kind": kind})
        else:
            log.info("robot back on a node", extra={"serial": self.serial})
        self._misplaced = kind

    def reset(self, why: str) -> bool:
        """The robot is back in use after needing an operator; True if it needed one."""
        flag = self.guard.reset()
        self._left_automatic = False
        if flag is not None:
            log.warning("robot back in use", extra={"serial": self.serial, "why": why, "was": flag})
        return flag is not None

    def operating_mode(self, mode: str) -> None:
        """Out of automatic mode and back, an operator has had the robot in hand."""
        if self.guard.operator is None:
            return
        if mode not in AUTOMATIC:
            self._left_automatic = True
        elif self._left_automatic:
            self.reset("operating mode back to automatic")

    # --- rejected orders ----------------------------------------------------------------------

    def rejected(self, order_id: str, reason: str) -> None:
        """Count a rejected order; the first of a run and the operator flag are logged."""
        self.count_rejection("order")
        first = self.guard.rejections == 0
        if self.guard.rejected(self._clock.now(), reason):
            log.error(
                "robot needs an operator", extra={"serial": self.serial, "why": self.guard.operator}
            )
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "order rejected by the robot",
            extra={
                "serial": self.serial,
                "order_id": order_id,
                "error": reason,
                "in_a_row": self.guard.rejections,
                "backoff": round(self.guard.backoff_until - self._clock.now(), 1),
            },
        )

    def count_rejection(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.robot_orders_rejected.labels(kind).inc()

    # --- instant actions ----------------------------------------------------------------------

    def track_instant(
        self, actions: list[RobotAction], header_id: int, state: JsonDict | None
    ) -> None:
        order_id = state["orderId"] if state else ""
        self.instants.track(actions, header_id, order_id, self._clock.now(), state)

    def on_state(self, message: JsonDict) -> list[DeviceEvent]:
        """The outcomes the state shows for instant actions sent."""
        return self._events(self.instants.on_state(message))

    def overdue(self, deadline: float) -> list[DeviceEvent]:
        """Instant actions without an answer ``deadline`` line seconds after sending."""
        return self._events(self.instants.overdue(self._clock.now(), deadline))

    def _events(self, outcomes: list[Outcome]) -> list[DeviceEvent]:
        if not outcomes:
            return []
        at: datetime = self._clock.utcnow()
        events: list[DeviceEvent] = []
        for o in outcomes:
            if o.action_type == "cancelOrder":
                self._cancel_outcome(o)
            if not o.failed:
                self._failing.pop(o.action_type, None)
                events.append(
                    RobotActionFinished(self.serial, o.order_id, o.action_id, o.action_type, "", at)
                )
                continue
            if self._metrics is not None:
                how = "unanswered" if o.unanswered else "failed"
                self._metrics.robot_instant_actions_failed.labels(o.action_type, how).inc()
            # logged when an action type starts failing or fails for another reason
            again = self._failing.get(o.action_type) == o.reason
            self._failing[o.action_type] = o.reason
            log.log(
                logging.DEBUG if again else logging.WARNING,
                "instant action failed",
                extra={"serial": self.serial, "action": o.action_type, "error": o.reason},
            )
            events.append(
                RobotActionFailed(
                    self.serial, o.order_id, o.action_id, o.action_type, "", o.reason, at
                )
            )
        return events

    def _cancel_outcome(self, outcome: Outcome) -> None:
        """A cancel the robot refused counts against it; one that went unanswered does not (a
        message late on a loaded broker or network is no refusal; the controller still sends
        it again and stops waiting after robots.cancel_attempts)."""
        if not outcome.failed:
            self.guard.cancel_done()
        elif not outcome.unanswered and self.guard.cancel_failed(outcome.reason):
            log.error(
                "robot needs an operator", extra={"serial": self.serial, "why": self.guard.operator}
            )

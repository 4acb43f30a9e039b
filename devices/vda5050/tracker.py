"""What master control knows about one robot, updated from validated VDA 5050 messages.

A :class:`RobotTracker` turns the robot's ``state`` and ``connection`` messages into the device
events the controller consumes: an action finished or failed (the first time its
``actionStatus`` is FINISHED / FAILED), an order finished (the state shows the order with no
``nodeStates``/``edgeStates`` left and every action terminal, or the order was rejected), and
availability changes. Horizon nodes are in ``nodeStates`` too, so an order waiting for its base
to be extended is not finished. It also keeps the last base node of the newest order or order
update sent (to stitch the next update on, spec 6.6.2), the robot's factsheet and what is wrong
with it. A rejected order (see :mod:`devices.vda5050.answers`) ends the order and counts
against the robot; instant actions, the guard of new orders and why the robot needs an
operator (then it is unavailable) are its :class:`~devices.vda5050.attention.RobotAttention`.
It holds no MQTT types and does no I/O, so it is tested without a broker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from devices.base import (
    ActionStatus,
    DeviceEvent,
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotAvailability,
    RobotLoad,
    RobotOrder,
    RobotOrderFinished,
    RobotPosition,
    RobotSnapshot,
    RouteNode,
)
from devices.outage import Outage
from devices.vda5050.answers import action_error, error_key, order_rejection
from devices.vda5050.attention import RobotAttention
from devices.vda5050.factsheet import FactsheetCheck, check_factsheet
from devices.vda5050.guard import OrderGuard
from devices.vda5050.placement import NodePlaces
from kernel.clock import Clock
from kernel.config.model import Robot, RobotModel
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
STALE_AFTER = 30.0  # line seconds without a state message before a robot counts as unavailable
# ... and never less than this many wall seconds: messages travel and wait for the event loop in
# wall time, so on a fast simulated clock (x80: 30 line s = 0.4 s) a busy moment of the
# controller's own process would otherwise read as silence from the robot
STALE_AFTER_WALL = 1.5
# an instant action may go unanswered this many wall seconds at least: a loaded machine running
# the simulators may take seconds to handle a message, while the states keep coming
ANSWER_WALL = 5.0
TERMINAL = frozenset({"FINISHED", "FAILED"})
Connection = Literal["ONLINE", "OFFLINE", "CONNECTIONBROKEN", "UNKNOWN"]


@dataclass
class _Tracked:
    """An order master control sent and still follows."""

    order_id: str
    actions: dict[str, tuple[str, str]]  # action id -> (action type, node id)
    reported: set[str] = field(default_factory=set)
    confirmed: bool = False  # the state has shown the order with the newest update_id
    update_id: int = 0  # the newest orderUpdateId sent
    update_actions: set[str] = field(default_factory=set)  # added by the unconfirmed update
    revived: bool = False  # followed again for an update after the order had finished
    header_ids: set[int] = field(default_factory=set)  # of every message of it sent
    errors_before: frozenset[str] = frozenset()  # the robot's errors when it was sent


@dataclass(frozen=True)
class Base:
    """The last base node of the newest order or update sent, exactly as it was sent."""

    order_id: str
    update_id: int
    node: JsonDict


class RobotTracker:
    def __init__(
        self,
        robot: Robot,
        model: RobotModel,
        clock: Clock,
        stale_after: float = STALE_AFTER,
        *,
        nodes: NodePlaces | None = None,
        guard: OrderGuard | None = None,
        action_deadline: float = 10.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.robot = robot
        self.serial = robot.serial
        self.version = robot.version
        self.manufacturer = model.manufacturer
        self.model = model
        self._clock = clock
        self._stale_after = stale_after
        self.link_up = False
        self.connection: Connection = "UNKNOWN"
        self._outage = Outage(clock, log, "robot", {"serial": robot.serial})
        self.state: JsonDict | None = None
        self.last_state_at: float | None = None
        # what a snapshot takes from the state message, made once per message
        self._reported: tuple[JsonDict | None, dict[str, Any]] = (None, _reported({}))
        self._position: tuple[JsonDict | None, RobotPosition] = (
            None,
            RobotPosition(None, None, None, False),
        )
        self.available = False
        self._unheard = False  # unavailable as the broker link went down (after a first state)
        self._linked = False  # the broker link was up once
        self._link_since: float | None = None  # line time the broker link came up
        self.online_since: float | None = None
        self.factsheet: JsonDict | None = None
        self.factsheet_check = FactsheetCheck()
        self.factsheet_requested = False
        self.state_requested = False  # stateRequest sent in this ONLINE period
        self.base: Base | None = None
        self._previous_base: Base | None = None
        self._tracked: dict[str, _Tracked] = {}
        # highest orderUpdateId sent per order: a rejected id is never sent again, since the
        # robot keeps showing its rejection warning until it accepts another order (6.6.4)
        self._highest_update: dict[str, int] = {}
        # the guard of new orders, instant actions followed, why it needs an operator
        self.attend = RobotAttention(
            robot.serial,
            clock,
            model.allowed_deviation_xy,
            nodes=nodes,
            guard=guard,
            action_deadline=action_deadline,
            metrics=metrics,
        )

    # --- what master control sent -----------------------------------------------------------

    @property
    def guard(self) -> OrderGuard:
        return self.attend.guard

    def track_order(self, order: RobotOrder, last_node: JsonDict, header_id: int = -1) -> None:
        actions = {a.action_id: (a.action_type, n.node_id) for n in order.nodes for a in n.actions}
        self._tracked[order.order_id] = _Tracked(
            order.order_id, actions, header_ids={header_id}, errors_before=self._errors_now()
        )
        self._highest_update = {order.order_id: 0}  # only the current order can be updated
        self._previous_base, self.base = self.base, Base(order.order_id, 0, last_node)

    def track_update(
        self,
        order_id: str,
        update_id: int,
        nodes: Sequence[RouteNode],
        last_node: JsonDict,
        header_id: int = -1,
    ) -> None:
        """Follow an order update: its new actions, and its last node as the new base end."""
        tracked = self._tracked.get(order_id)
        if tracked is None:
            tracked = self._tracked[order_id] = _Tracked(order_id, {}, revived=True)
        tracked.header_ids.add(header_id)
        tracked.errors_before = self._errors_now()
        added = {a.action_id: (a.action_type, n.node_id) for n in nodes for a in n.actions}
        # a re-planned horizon carries actions sent before; only new ones go with the update
        tracked.update_actions = set(added) - set(tracked.actions)
        tracked.actions.update(added)
        tracked.update_id = update_id
        tracked.confirmed = False
        self._highest_update[order_id] = max(self._highest_update.get(order_id, 0), update_id)
        self._previous_base, self.base = self.base, Base(order_id, update_id, last_node)

    def untrack_update(self, order_id: str) -> None:
        """The update could not be sent: back to the order as it was."""
        tracked = self._tracked.get(order_id)
        if tracked is not None:
            self._drop_update(tracked)
            if tracked.revived:
                del self._tracked[order_id]
        self.base = self._previous_base

    @staticmethod
    def _drop_update(tracked: _Tracked) -> None:
        for action_id in tracked.update_actions:
            tracked.actions.pop(action_id, None)
        tracked.update_actions = set()
        tracked.update_id -= 1
        tracked.confirmed = True

    def cancelled(self) -> None:
        """``cancelOrder`` was sent: the current order takes no more updates."""
        self.base = self._previous_base = None

    def next_update_id(self, order_id: str) -> int:
        """The orderUpdateId for the next update of ``order_id``."""
        base = self.base.update_id if self.base and self.base.order_id == order_id else 0
        return max(base, self._highest_update.get(order_id, 0)) + 1

    def pending_update(self, order_id: str) -> bool:
        """An order or update of ``order_id`` was sent and the state has not shown it yet."""
        return not self.confirmed(order_id)

    def resent(self, order_id: str, header_id: int) -> None:
        """An order or update of ``order_id`` went out again under a new headerId."""
        tracked = self._tracked.get(order_id)
        if tracked is not None:
            tracked.header_ids.add(header_id)

    def track_instant(self, actions: list[RobotAction], header_id: int = -1) -> None:
        self.attend.track_instant(actions, header_id, self.state)

    def untrack_instant(self, header_id: int) -> None:
        """The instant actions sent under ``header_id`` could not be published after all."""
        self.attend.instants.forget(header_id)

    def _errors_now(self) -> frozenset[str]:
        return frozenset(error_key(e) for e in (self.state or {}).get("errors", []))

    def untrack(self, order_id: str) -> None:
        self._tracked.pop(order_id, None)

    def confirmed(self, order_id: str) -> bool:
        """The robot's state has shown ``order_id`` (or the order was rejected or finished)."""
        tracked = self._tracked.get(order_id)
        return tracked is None or tracked.confirmed

    # --- what the robot reports -------------------------------------------------------------

    def on_connection(self, message: JsonDict) -> list[DeviceEvent]:
        connection = cast(Connection, message["connectionState"])
        if connection == "ONLINE" and self.connection != "ONLINE":
            self.online_since = self._clock.now()
            self.factsheet_requested = self.state_requested = False
            if self.connection != "UNKNOWN":
                self.reset("reconnected")
        if connection == "ONLINE":
            self._outage.up()
        elif connection != self.connection:
            self._outage.down(f"connection {connection}")
        self.connection = connection
        return self.refresh()

    def on_factsheet(self, message: JsonDict, check: FactsheetCheck | None = None) -> bool:
        """Keep the factsheet and the outcome of checking it; True if the problems changed."""
        self.factsheet = message
        before = self.factsheet_check
        self.factsheet_check = check or check_factsheet(message, self.model)
        return self.factsheet_check != before

    def wants_factsheet(self, wait: float) -> bool:
        """A 2.1 robot ONLINE for ``wait`` line seconds without a factsheet, not yet asked."""
        return (
            self.version != "2.0.0"
            and self.connection == "ONLINE"
            and self.link_up
            and self.factsheet is None
            and not self.factsheet_requested
            and self.online_since is not None
            and self._clock.now() - self.online_since >= wait
        )

    def wants_state(self) -> bool:
        """ONLINE without a state message since it came online (or since master control
        started), not yet asked in this ONLINE period: ``stateRequest`` brings the state now
        instead of at the robot's next periodic report."""
        return (
            self.connection == "ONLINE"
            and self.link_up
            and not self.state_requested
            and (
                self.last_state_at is None
                or (self.online_since is not None and self.last_state_at < self.online_since)
            )
        )

    def reset(self, why: str) -> bool:
        """The robot is back in use after needing an operator; True if it needed one."""
        return self.attend.reset(why)

    def on_state(self, message: JsonDict) -> list[DeviceEvent]:
        self.state = message
        self.last_state_at = self._clock.now()
        self.attend.operating_mode(message["operatingMode"])
        events: list[DeviceEvent] = []
        statuses: dict[str, JsonDict] = (
            {a["actionId"]: a for a in message["actionStates"]} if self._tracked else {}
        )
        for key, tracked in list(self._tracked.items()):
            if (
                message["orderId"] == tracked.order_id
                and message["orderUpdateId"] >= tracked.update_id
            ):
                if not tracked.confirmed and tracked.update_id == 0 and not tracked.revived:
                    self.attend.guard.accepted()
                tracked.confirmed = True
                tracked.update_actions = set()
            events += self._action_events(tracked, statuses)
            if not tracked.confirmed:
                reason = order_rejection(
                    message["errors"],
                    tracked.order_id,
                    tracked.update_id,
                    tracked.header_ids,
                    tracked.errors_before,
                )
                if reason is not None and tracked.update_id > 0 and not tracked.revived:
                    # a rejected update: the order goes on as it was before the update
                    self.attend.count_rejection("update")
                    events += self._fail_some(
                        tracked, tracked.update_actions, f"order update rejected: {reason}"
                    )
                    self._drop_update(tracked)
                    self.base = self._previous_base
                    continue
                if reason is not None:
                    # a rejected order ends here: nothing of it will be driven
                    self.attend.rejected(tracked.order_id, reason)
                    events += self._fail_all(tracked, f"order rejected: {reason}")
                    events.append(RobotOrderFinished(self.serial, tracked.order_id, self._now()))
                    tracked.confirmed = True
                    del self._tracked[key]
                    if self.base is not None and self.base.order_id == tracked.order_id:
                        self.base = self._previous_base
                    continue
            if tracked.confirmed and self._order_done(message, statuses):
                events += self._fail_all(tracked, "action not reported by the robot")
                events.append(RobotOrderFinished(self.serial, tracked.order_id, self._now()))
                del self._tracked[key]
        events += self.attend.on_state(message)
        refreshed = self.refresh()
        return events + refreshed if events else refreshed

    def _now(self) -> Any:
        return self._clock.utcnow()

    def _action_events(self, tracked: _Tracked, statuses: dict[str, JsonDict]) -> list[DeviceEvent]:
        events: list[DeviceEvent] = []
        for action_id, (action_type, node_id) in tracked.actions.items():
            status = statuses.get(action_id)
            if action_id in tracked.reported or status is None:
                continue
            if status["actionStatus"] == "FINISHED":
                tracked.reported.add(action_id)
                events.append(
                    RobotActionFinished(
                        self.serial, tracked.order_id, action_id, action_type, node_id, self._now()
                    )
                )
            elif status["actionStatus"] == "FAILED":
                errors = (self.state or {}).get("errors", [])
                reason = status.get("resultDescription") or action_error(errors, action_id)
                reason = reason or "FAILED"
                events.append(self._failed(tracked, action_id, reason))
        return events

    def _fail_all(self, tracked: _Tracked, reason: str) -> list[DeviceEvent]:
        return self._fail_some(tracked, set(tracked.actions), reason)

    def _fail_some(self, tracked: _Tracked, which: set[str], reason: str) -> list[DeviceEvent]:
        return [
            self._failed(tracked, action_id, reason)
            for action_id in tracked.actions
            if action_id in which and action_id not in tracked.reported
        ]

    def _failed(self, tracked: _Tracked, action_id: str, reason: str) -> RobotActionFailed:
        """Report ``action_id`` as failed (once)."""
        tracked.reported.add(action_id)
        action_type, node_id = tracked.actions[action_id]
        return RobotActionFailed(
            self.serial, tracked.order_id, action_id, action_type, node_id, reason, self._now()
        )

    @staticmethod
    def _order_done(message: JsonDict, statuses: dict[str, JsonDict]) -> bool:
        return (
            not message["nodeStates"]
            and not message["edgeStates"]
            and all(a["actionStatus"] in TERMINAL for a in statuses.values())
        )

    def overdue(self) -> list[DeviceEvent]:
        """Instant actions that got no answer within the deadline, as failed. The deadline is
        never shorter than :data:`ANSWER_WALL` wall seconds: on a fast simulated clock a busy
        moment of the controller's or the simulator's process is no refusal."""
        deadline = self.attend.instants.deadline
        return self.attend.overdue(max(deadline, ANSWER_WALL * self._clock.time_scale))

    # --- availability -----------------------------------------------------------------------

    def stale_after(self) -> float:
        """Line seconds without a state message after which the robot counts as silent."""
        return max(self._stale_after, STALE_AFTER_WALL * self._clock.time_scale)

    def state_age(self) -> float | None:
        if self.last_state_at is None:
            return None
        return self._clock.now() - self.last_state_at

    def availability(self) -> tuple[bool, str]:
        """Available = broker link up, ONLINE, AUTOMATIC/SEMIAUTOMATIC, no FATAL, state fresh."""
        return self._availability(self.state_age(), self.attention())

    def _availability(self, age: float | None, attention: str | None) -> tuple[bool, str]:
        if not self.link_up:
            return False, "broker connection down"
        if self.connection != "ONLINE":
            return False, f"connection {self.connection}"
        if self.state is None or age is None:
            return False, "no state received"
        if age > self.stale_after():
            return False, f"no state for {age:.0f} s"
        mode = self.state["operatingMode"]
        if mode not in ("AUTOMATIC", "SEMIAUTOMATIC"):
            return False, f"operating mode {mode}"
        if not self.factsheet_check.usable:
            return False, f"factsheet: {self.factsheet_check.problems[0]}"
        if attention is not None:
            return False, attention
        for error in self.state["errors"]:
            if error["errorLevel"] == "FATAL":
                return False, f"fatal error {error['errorType']}"
        return True, "ok"

    def _unheard_now(self) -> bool:
        """Nothing can be known of the robot: the broker link went down after the robot had
        reported, or came back and the robot has not reported since (for at most
        :meth:`stale_after`: a robot reconnects to the broker in its own time)."""
        now = self._clock.now()
        if not self.link_up:
            self._link_since = None
            return self._linked and self.state is not None
        if self._link_since is None:
            self._link_since = now
            if not self._linked:  # the first link: nothing was known before
                self._linked = True
                return False
        quiet = self.last_state_at is None or self.last_state_at < self._link_since
        return self.state is not None and quiet and now - self._link_since < self.stale_after()

    def attention(self) -> str | None:
        """Why the robot needs an operator before it works again, or None."""
        return self.attend.reason(self.state)

    def refresh(self) -> list[DeviceEvent]:
        """An availability event if availability changed since the last call (also when an
        unavailable robot is heard of again after a broker outage: it counts from then)."""
        misplaced = self.attend.misplacement(self.state)
        self.attend.log_misplacement(misplaced)
        available, reason = self._availability(
            self.state_age(), self.attend.reason_placed(misplaced)
        )
        unheard = not available and self._unheard_now()
        if available == self.available and unheard == self._unheard:
            return []
        self.available, self._unheard = available, unheard
        return [RobotAvailability(self.serial, available, reason, self._now(), unheard)]

    def position(self) -> RobotPosition:
        """Where the robot last reported standing (taken once per state message)."""
        seen, position = self._position
        if seen is not self.state:
            s = self.state or {}
            pos = s.get("agvPosition") or {}
            position = RobotPosition(
                s.get("lastNodeId") or None,
                pos.get("x"),
                pos.get("y"),
                bool(s.get("driving", False)),
            )
            self._position = (self.state, position)
        return position

    def snapshot(self) -> RobotSnapshot:
        seen, reported = self._reported
        if seen is not self.state:
            reported = _reported(self.state or {})
            self._reported = (self.state, reported)
        now = self._clock.now()
        age = None if self.last_state_at is None else now - self.last_state_at
        attention = self.attention()
        return RobotSnapshot(
            serial=self.serial,
            manufacturer=self.manufacturer,
            version=self.version,
            connection=self.connection,
            state_age=age,
            available=self._availability(age, attention)[0],
            factsheet_problems=self.factsheet_check.problems,
            attention=attention,
            order_hold=self.attend.guard.hold(now),
            **reported,
        )


def _reported(s: JsonDict) -> dict[str, Any]:
    """The fields of a :class:`RobotSnapshot` that come from state message ``s`` alone."""
    pos = s.get("agvPosition") or {}
    battery = s.get("batteryState")
    return {
        "operating_mode": s.get("operatingMode"),
        "last_node_id": s.get("lastNodeId") or None,
        "x": pos.get("x"),
        "y": pos.get("y"),
        "driving": bool(s.get("driving", False)),
        "order_id": s.get("orderId") or None,
        "battery": None if battery is None else battery["batteryCharge"],
        "errors": tuple(
            f"{e['errorType']} ({e['errorLevel']}): {e.get('errorDescription', '')}".strip()
            for e in s.get("errors", [])
        ),
        "charging": None if battery is None else battery["charging"],
        "paused": bool(s.get("paused", False)),
        "order_update_id": int(s.get("orderUpdateId", 0)),
        "nodes_left": tuple(str(n["nodeId"]) for n in s.get("nodeStates", [])),
        "edges_left": len(s.get("edgeStates", [])),
        "actions": tuple(
            ActionStatus(
                a["actionId"],
                a.get("actionType", ""),
                a["actionStatus"],
                a.get("resultDescription"),
            )
            for a in s.get("actionStates", [])
        ),
        "loads": tuple(
            RobotLoad(ld.get("loadId"), ld.get("loadType"), ld.get("loadPosition"))
            for ld in s.get("loads") or []
        ),
    }

"""What VDA 5050 master control takes in: the robots' ``state``, ``connection`` and
``factsheet`` messages.

Every message is validated against the schema of the robot's version at the boundary (a state
message that repeats the robot's last valid one but for its header, pose, velocity and battery
by those fields: :class:`devices.vda5050.schema.Repeats`), and its header must name the robot
of its topic; an invalid one is counted, logged once per robot (then at debug) and dropped.
Where a topic goes (the robot's tracker, the subtopic) is worked out once per topic of the
fleet's robots. A message that breaks the handling is logged with its topic and does not
stop the next one.

Messages are taken in as the broker client hands them over: all that arrived since the last
look, one after the other. The message counters are added up per look and then counted in the
metrics, once per (topic, result).
"""

from __future__ import annotations

import logging
from collections import Counter

from devices.vda5050 import schema
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.pending import PendingOrders
from devices.vda5050.master.state import MasterState
from devices.vda5050.mqtt_client import BrokerClient
from devices.vda5050.topics import split
from devices.vda5050.tracker import RobotTracker

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name

INCOMING = ("state", "connection", "factsheet")  # the subtopics master control subscribes to
_Route = tuple[RobotTracker, str, schema.Repeats | None]  # tracker, subtopic, state Repeats


class StateIntake:
    """Validates each incoming message and hands it to its robot's tracker."""

    def __init__(self, state: MasterState, output: MasterOutput, pending: PendingOrders) -> None:
        self._state = state
        self._output = output
        self._pending = pending
        self._warned_invalid: set[str] = set()  # robots whose invalid message was logged
        self._counts: Counter[tuple[str, str]] = Counter()  # (topic, result), not yet counted
        # each robot's state messages, validated by their changing fields when the rest repeats
        self._states = {
            serial: schema.Repeats(t.version, "state") for serial, t in state.trackers.items()
        }
        # by full topic: the robot's tracker, the subtopic and, for ``state``, its Repeats
        self._routes: dict[str, _Route] = {}

    async def receive(self, client: BrokerClient) -> None:
        """Handle every message ``client`` receives, until cancelled or the link breaks."""
        async for batch in client.batches():
            try:
                for full_topic, raw in batch:
                    try:
                        await self.handle(full_topic, raw)
                    except Exception:
                        # the per-message boundary: a bug in handling one message must not stop
                        # the fleet; it is logged with its topic and the next one is handled
                        log.exception("failed to handle a message", extra={"topic": full_topic})
            finally:
                self.flush_counts()

    def flush_counts(self) -> None:
        """Count the messages handled since the last call in the metrics."""
        if not self._counts:
            return
        counter = self._state.metrics.mqtt_messages
        for (subtopic, result), n in self._counts.items():
            counter.labels("in", subtopic, result).inc(n)
        self._counts.clear()

    async def handle(self, full_topic: str, raw: bytes) -> None:
        """One message as received on ``full_topic``; it is counted in the metrics at the next
        :meth:`flush_counts`."""
        route = self._routes.get(full_topic)
        if route is None:
            route = self._route(full_topic)
            if route is None:
                return
        tracker, subtopic, repeats = route
        parsed = (
            repeats.parse(raw)
            if repeats is not None
            else schema.parse(tracker.version, subtopic, raw)
        )
        doc = parsed.payload
        if (
            doc is None
            or doc["serialNumber"] != tracker.serial
            or doc["manufacturer"] != tracker.manufacturer
        ):
            errors = list(parsed.errors)
            if doc is not None:
                errors.append("$: header names another vehicle than the topic")
            self._count(subtopic, "invalid")
            self._log_invalid(tracker.serial, subtopic, errors)
            return
        self._counts[subtopic, "ok"] += 1
        if repeats is not None:  # a state message
            events = tracker.on_state(doc)
            if events:
                await self._output.emit(events)
            self._pending.settle(tracker)
        elif subtopic == "connection":
            await self._output.emit(tracker.on_connection(doc))
        elif subtopic == "factsheet":
            if tracker.on_factsheet(doc):
                _log_factsheet(tracker)
            await self._output.emit(tracker.refresh())

    def _route(self, full_topic: str) -> _Route | None:
        """Where a message on ``full_topic`` goes, kept for the next one; None (and counted)
        when it is not one master control takes in."""
        parts = split(full_topic)
        if parts is None or parts.subtopic not in INCOMING:
            self._count("other", "ignored")
            return None
        tracker = self._state.trackers.get(parts.serial)
        if tracker is None or tracker.manufacturer != parts.manufacturer:
            self._count(parts.subtopic, "unknown_robot")
            return None
        repeats = self._states[tracker.serial] if parts.subtopic == "state" else None
        # only the topics of the fleet's robots are kept: as many as robots times INCOMING
        route = self._routes[full_topic] = (tracker, parts.subtopic, repeats)
        return route

    def _count(self, subtopic: str, result: str) -> None:
        self._counts[subtopic if subtopic in INCOMING else "other", result] += 1

    def _log_invalid(self, serial: str, subtopic: str, errors: list[str]) -> None:
        level = logging.DEBUG if serial in self._warned_invalid else logging.WARNING
        self._warned_invalid.add(serial)
        log.log(
            level,
            "invalid VDA 5050 message dropped",
            extra={"serial": serial, "topic": subtopic, "errors": errors[:3]},
        )


def _log_factsheet(tracker: RobotTracker) -> None:
    """Whether the robot's factsheet fits what picking needs; logged when that changed."""
    check = tracker.factsheet_check
    if check.problems:
        log.warning(
            "factsheet does not fit the picking templates"
            + ("" if check.usable else "; robot not used"),
            extra={"serial": tracker.serial, "problems": list(check.problems)},
        )
    else:
        log.info("factsheet fits the picking templates", extra={"serial": tracker.serial})

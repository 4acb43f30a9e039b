"""What VDA 5050 master control takes in: the robots' ``state``, ``connection`` and
``factsheet`` messages.

Every message is validated against the schema of the robot's version at the boundary (a state
message that repeats the robot's last valid one but for its header, pose, velocity and battery
by those fields: :class:`devices.vda5050.schema.Repeats`), and its header must name the robot
of its topic; an invalid one is counted, logged once per robot (then
at debug) and dropped. A message that breaks the handling is logged with its topic and does not
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
        parts = split(full_topic)
        if parts is None or parts.subtopic not in INCOMING:
            self._count("other", "ignored")
            return
        tracker = self._state.trackers.get(parts.serial)
        if tracker is None or tracker.manufacturer != parts.manufacturer:
            self._count(parts.subtopic, "unknown_robot")
            return
        if parts.subtopic == "state":
            parsed = self._states[tracker.serial].parse(raw)
        else:
            parsed = schema.parse(tracker.version, parts.subtopic, raw)
        errors = list(parsed.errors)
        doc = parsed.payload
        if doc is not None and (
            doc["serialNumber"] != tracker.serial or doc["manufacturer"] != tracker.manufacturer
        ):
            errors.append("$: header names another vehicle than the topic")
        if doc is None or errors:
            self._count(parts.subtopic, "invalid")
            self._log_invalid(tracker.serial, parts.subtopic, errors)
            return
        self._count(parts.subtopic, "ok")
        if parts.subtopic == "state":
            await self._output.emit(tracker.on_state(doc))
            self._pending.settle(tracker)
        elif parts.subtopic == "connection":
            await self._output.emit(tracker.on_connection(doc))
        elif parts.subtopic == "factsheet":
            if tracker.on_factsheet(doc):
                _log_factsheet(tracker)
            await self._output.emit(tracker.refresh())

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

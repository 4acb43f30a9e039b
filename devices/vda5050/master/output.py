"""What leaves VDA 5050 master control: messages to the robots and events to the controller.

A message is validated against the schema of the robot's version before it is published, so
an invalid one never reaches the broker; it goes out with the QoS of its topic. Orders and
order updates (QoS 0, resent until the robot's state shows them) are *posted*: checked and
queued at once, without waiting for the broker client to write them, and published by the
session's send task, everything queued together; a caller that sends many (a traffic round)
never waits for the broker in between. Instant actions are published and awaited. Events go
on the controller's queue, and the robot gauges are brought up to date whenever there are any.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiomqtt
import orjson

from devices.base import DeviceEvent
from devices.errors import CommandRejected, DeviceUnavailable
from devices.vda5050 import schema
from devices.vda5050.link import keep_cancellation
from devices.vda5050.master.state import MasterState
from devices.vda5050.topics import topic

# MQTT QoS per topic master control publishes. Orders go at 0 as spec 6.2 says: an order is
# resent until the state shows it. Instant actions stay at 1: they are not resent, and a cancel
# published while the robot's session reconnects is lost at 0 (the broker queues only QoS 1
# for a persistent session); the robot left driving a trip given away blocked the others
QOS = {"order": 0, "instantActions": 1}
POSTED = frozenset({"order"})  # the topics posted (resent until shown), not awaited

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name


def encode(message: dict[str, Any]) -> bytes:
    """A message as it goes on the wire (compact JSON, UTF-8)."""
    return orjson.dumps(message)


@dataclass(frozen=True)
class Outgoing:
    """A checked message on its way to the broker, through the client it was checked with."""

    client: aiomqtt.Client
    serial: str
    subtopic: str
    topic: str
    payload: bytes


class MasterOutput:
    """Publishes to one robot through the connected broker client and emits fleet events."""

    def __init__(self, state: MasterState) -> None:
        self._state = state
        self._outbox: deque[Outgoing] = deque()
        self._posted = asyncio.Event()
        self._drained = asyncio.Event()  # nothing posted is waiting to be handed to the client
        self._drained.set()

    def _checked(self, serial: str, subtopic: str, message: dict[str, Any]) -> Outgoing:
        """``message`` validated and encoded for the connected client.

        Raises CommandRejected when it does not validate, DeviceUnavailable when the broker is
        not connected or the fence refuses (a lost lease)."""
        state = self._state
        refusal = state.fence.refusal()
        if refusal is not None:
            raise DeviceUnavailable(f"{subtopic} for {serial} not sent: {refusal}")
        tracker = state.trackers[serial]
        errors = schema.validate(tracker.version, subtopic, message)
        if errors:
            raise CommandRejected(f"{subtopic} for {serial} does not validate: {errors[0]}")
        client = state.client
        if client is None:
            raise DeviceUnavailable("MQTT broker not connected")
        full_topic = topic(state.interface_name, tracker.manufacturer, serial, subtopic)
        return Outgoing(client, serial, subtopic, full_topic, encode(message))

    async def publish(self, serial: str, subtopic: str, message: dict[str, Any]) -> None:
        """Validate and publish ``message`` on the robot's ``subtopic``, waiting for the broker
        client to write it.

        Raises CommandRejected when it does not validate, DeviceUnavailable when the broker is
        not connected, the publish fails or the fence refuses (a lost lease). What was posted
        before goes out first (a cancelOrder must not overtake the update it cancels)."""
        if self._state.client is not None:
            await self._drained.wait()
        out = self._checked(serial, subtopic, message)
        try:
            await keep_cancellation(
                out.client.publish(out.topic, out.payload, qos=QOS.get(subtopic, 1))
            )
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable(f"publishing {subtopic} to {serial} failed: {exc}") from exc
        self._state.metrics.mqtt_messages.labels("out", subtopic, "ok").inc()

    def post(self, serial: str, subtopic: str, message: dict[str, Any]) -> None:
        """Validate ``message`` and queue it for the session's send task (:meth:`send`);
        only for a topic in :data:`POSTED`, whose messages are resent until the robot shows
        them (one lost with the connection goes out again on the next).

        Raises as :meth:`publish` does before anything goes out."""
        if subtopic not in POSTED:
            raise ValueError(f"{subtopic} messages are published and awaited, not posted")
        self._outbox.append(self._checked(serial, subtopic, message))
        self._drained.clear()
        self._posted.set()

    async def send(self, client: aiomqtt.Client) -> None:
        """Publish the posted messages through ``client`` until cancelled: all those queued
        when it wakes at once, so the client writes them together. Messages checked with an
        earlier connection's client are dropped (their orders are resent on this one), and
        none goes out while the fence refuses. A broker error ends it (the connection is made
        again). When it ends, what it had queued is dropped (resent on the next connection):
        an instant action waiting for the queue goes ahead and meets the lost connection."""
        try:
            await self._send(client)
        finally:
            for out in [o for o in self._outbox if o.client is client]:
                self._outbox.remove(out)
            if not self._outbox:
                self._drained.set()

    async def _send(self, client: aiomqtt.Client) -> None:
        state = self._state
        while True:
            if not self._outbox:
                self._drained.set()
            await self._posted.wait()
            self._posted.clear()
            batch = [out for out in self._outbox if out.client is client]
            self._outbox.clear()
            refusal = state.fence.refusal()
            if refusal is not None:
                log.warning("posted orders not sent", extra={"count": len(batch), "why": refusal})
                continue
            sent = await keep_cancellation(
                asyncio.gather(
                    *(
                        client.publish(out.topic, out.payload, qos=QOS[out.subtopic])
                        for out in batch
                    ),
                    return_exceptions=True,
                )
            )
            for out, outcome in zip(batch, sent, strict=True):
                if isinstance(outcome, BaseException):
                    raise outcome
                state.metrics.mqtt_messages.labels("out", out.subtopic, "ok").inc()

    async def emit(self, events: list[DeviceEvent]) -> None:
        """Put ``events`` on the controller's queue (none before master control runs); when
        there are any, the available/unavailable/needing-an-operator gauges are recounted."""
        state = self._state
        if events:
            trackers = state.trackers.values()
            available = sum(1 for t in trackers if t.available)
            state.metrics.robots.labels("available").set(available)
            state.metrics.robots.labels("unavailable").set(len(state.trackers) - available)
            attention = sum(1 for t in trackers if t.attention() is not None)
            state.metrics.robots_needing_operator.set(attention)
        if state.events is None:
            return
        for event in events:
            await state.events.put(event)

    async def refresh(self) -> None:
        """An availability event for each robot whose availability changed since the last look."""
        for tracker in self._state.trackers.values():
            await self.emit(tracker.refresh())

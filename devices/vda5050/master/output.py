"""What leaves VDA 5050 master control: messages to the robots and events to the controller.

A message is validated against the schema of the robot's version before it is published, so
an invalid one never reaches the broker; it goes out with the QoS of its topic. Events go on
the controller's queue, and the robot gauges are brought up to date whenever there are any.
"""

from __future__ import annotations

import json
from typing import Any

import aiomqtt

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


class MasterOutput:
    """Publishes to one robot through the connected broker client and emits fleet events."""

    def __init__(self, state: MasterState) -> None:
        self._state = state

    async def publish(self, serial: str, subtopic: str, message: dict[str, Any]) -> None:
        """Validate and publish ``message`` on the robot's ``subtopic``.

        Raises CommandRejected when it does not validate, DeviceUnavailable when the broker is
        not connected, the publish fails or the fence refuses (a lost lease)."""
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
        payload = json.dumps(message)
        try:
            await keep_cancellation(client.publish(full_topic, payload, qos=QOS.get(subtopic, 1)))
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable(f"publishing {subtopic} to {serial} failed: {exc}") from exc
        state.metrics.mqtt_messages.labels("out", subtopic, "ok").inc()

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

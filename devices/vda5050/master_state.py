"""VDA 5050 master control's state: a tracker and a message builder per robot, the orders
awaiting confirmation, and publishing one message at the boundary.

The base of :class:`devices.vda5050.master.VdaMasterControl`, shared by the incoming side
(:mod:`devices.vda5050.master`) and the commands (:mod:`devices.vda5050.master_orders`). Every
part logs under ``devices.vda5050.master``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import aiomqtt

from devices.base import DeviceEvent
from devices.errors import CommandRejected, DeviceUnavailable
from devices.outage import Outage
from devices.supervisor import DeviceSupervisor
from devices.vda5050 import schema
from devices.vda5050.broker import broker_settings
from devices.vda5050.guard import GuardSettings, OrderGuard
from devices.vda5050.link import keep_cancellation
from devices.vda5050.messages import MessageBuilder
from devices.vda5050.topics import topic
from devices.vda5050.tracker import RobotTracker
from kernel.backoff import Backoff
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name

INCOMING = ("state", "connection", "factsheet")
RESEND_INTERVAL = 3.0  # line seconds between resends of an unconfirmed order ...
# ... and never less than this many wall seconds: on a fast simulated clock (x30: 3 line s is
# 0.1 s) resends would flood the broker and the robot while the state is merely on its way
RESEND_WALL = 0.5
WATCH_INTERVAL = 1.0  # line seconds between availability checks
FACTSHEET_WAIT = 5.0  # line seconds ONLINE without a factsheet before asking for one (2.1)
KEEPALIVE = 15
# MQTT QoS per topic master control publishes. Orders go at 0 as spec 6.2 says: an order is
# resent until the state shows it. Instant actions stay at 1: they are not resent, and a cancel
# published while the robot's session reconnects is lost at 0 (the broker queues only QoS 1
# for a persistent session); the robot left driving a trip given away blocked the others
QOS = {"order": 0, "instantActions": 1}


@dataclass
class _Pending:
    """The newest order or order update of a robot, until its state shows it."""

    order_id: str
    message: dict[str, Any]  # as last sent; a resend gets a new header
    sent_at: float


class MasterState:
    """What master control knows of the fleet and the broker link."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        mqtt_url: str,
        interface_name: str | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        # the line's login and TLS files, read now: a problem stops the start with its reason
        self._broker = broker_settings(config.mqtt, mqtt_url)
        self.interface_name = interface_name or config.mqtt.interface_name
        self._client_id = f"{config.mqtt.client_id}-{uuid.uuid4().hex[:6]}"
        self._trackers: dict[str, RobotTracker] = {}
        self._builders: dict[str, MessageBuilder] = {}
        area = config.robots
        nodes = {n.id: (n.x, n.y, config.node_map_id(n)) for n in area.nodes}
        settings = GuardSettings(
            area.max_orders_per_minute,
            area.rejection_backoff,
            area.rejection_backoff_max,
            area.max_rejections,
            area.cancel_attempts,
        )
        for robot in area.fleet:
            model = area.models[robot.model]
            self._trackers[robot.serial] = RobotTracker(
                robot,
                model,
                clock,
                nodes=nodes,
                guard=OrderGuard(settings),
                action_deadline=area.action_deadline,
                metrics=metrics,
            )
            self._builders[robot.serial] = MessageBuilder(
                robot.version, model.manufacturer, robot.serial, clock
            )
        self._pending: dict[str, _Pending] = {}
        self._warned_invalid: set[str] = set()
        self._client: aiomqtt.Client | None = None
        self._events: asyncio.Queue[DeviceEvent] | None = None
        outage = Outage(
            clock, log, "MQTT broker", {"url": self._broker.url, "username": self._broker.who}
        )
        self._broker_link = DeviceSupervisor(clock, Backoff(0.2, 10.0), outage)
        metrics.mqtt_connected.set(0)
        if self._broker.password_in_clear:
            log.warning(
                "the MQTT password is sent unencrypted: use an mqtts:// broker (mqtt.tls)",
                extra={"url": self._broker.url, "username": self._broker.who},
            )

    async def _refresh(self) -> None:
        for tracker in self._trackers.values():
            await self._emit(tracker.refresh())

    async def _emit(self, events: list[DeviceEvent]) -> None:
        if events:
            available = sum(1 for t in self._trackers.values() if t.available)
            self._metrics.robots.labels("available").set(available)
            self._metrics.robots.labels("unavailable").set(len(self._trackers) - available)
            attention = sum(1 for t in self._trackers.values() if t.attention() is not None)
            self._metrics.robots_needing_operator.set(attention)
        if self._events is None:
            return
        for event in events:
            await self._events.put(event)

    async def _publish(self, serial: str, subtopic: str, message: dict[str, Any]) -> None:
        tracker = self._trackers[serial]
        errors = schema.validate(tracker.version, subtopic, message)
        if errors:
            raise CommandRejected(f"{subtopic} for {serial} does not validate: {errors[0]}")
        client = self._client
        if client is None:
            raise DeviceUnavailable("MQTT broker not connected")
        full_topic = topic(self.interface_name, tracker.manufacturer, serial, subtopic)
        payload = json.dumps(message)
        try:
            await keep_cancellation(client.publish(full_topic, payload, qos=QOS.get(subtopic, 1)))
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable(f"publishing {subtopic} to {serial} failed: {exc}") from exc
        self._metrics.mqtt_messages.labels("out", subtopic, "ok").inc()

    def _tracker(self, serial: str) -> RobotTracker:
        tracker = self._trackers.get(serial)
        if tracker is None:
            raise DeviceUnavailable(f"robot {serial!r} is not configured")
        return tracker

"""VDA 5050 master control over MQTT: the :class:`devices.base.RobotFleet` for the controller.

One aiomqtt client for the whole fleet. Every incoming ``state``, ``connection`` and
``factsheet`` message is validated against the schema of the robot's version at the boundary;
an invalid one is counted, logged once per robot and dropped. Orders and order updates are
published with QoS 1 and the newest of them is resent unchanged (same ``orderId`` and
``orderUpdateId``) until a state message shows it. Factsheets (retained) are read at start; a 2.1
robot ONLINE for :data:`FACTSHEET_WAIT` without one is sent ``factsheetRequest``. A factsheet
that lacks what picking needs is logged once and shown in the robot's snapshot. aiomqtt and paho
types never leave this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from controller.clock import Clock
from controller.config.model import LineConfig
from controller.metrics import Metrics
from devices.base import DeviceEvent, RobotAction, RobotOrder, RobotSnapshot, RouteEdge, RouteNode
from devices.errors import CommandRejected, DeviceError, DeviceUnavailable
from devices.outage import Outage
from devices.vda5050 import schema
from devices.vda5050.link import Backoff, broker_address, keep_cancellation
from devices.vda5050.messages import MessageBuilder
from devices.vda5050.mqtt_client import BrokerClient
from devices.vda5050.topics import fleet_filter, split, topic
from devices.vda5050.tracker import RobotTracker

log = logging.getLogger(__name__)

INCOMING = ("state", "connection", "factsheet")
RESEND_INTERVAL = 3.0  # line seconds between resends of an unconfirmed order
WATCH_INTERVAL = 1.0  # line seconds between availability checks
FACTSHEET_WAIT = 5.0  # line seconds ONLINE without a factsheet before asking for one (2.1)
KEEPALIVE = 15


@dataclass
class _Pending:
    order_id: str
    topic: str
    payload: str
    sent_at: float


class VdaMasterControl:
    """Master control for every robot in ``config.robots.fleet``."""

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
        self._address = broker_address(mqtt_url)
        self.interface_name = interface_name or config.mqtt.interface_name
        self._client_id = f"{config.mqtt.client_id}-{uuid.uuid4().hex[:6]}"
        self._trackers: dict[str, RobotTracker] = {}
        self._builders: dict[str, MessageBuilder] = {}
        for robot in config.robots.fleet:
            model = config.robots.models[robot.model]
            self._trackers[robot.serial] = RobotTracker(robot, model, clock)
            self._builders[robot.serial] = MessageBuilder(
                robot.version, model.manufacturer, robot.serial, clock
            )
        self._pending: dict[str, _Pending] = {}
        self._warned_invalid: set[str] = set()
        self._client: aiomqtt.Client | None = None
        self._events: asyncio.Queue[DeviceEvent] | None = None
        self._outage = Outage(clock, log, "MQTT broker", {"url": mqtt_url})
        metrics.mqtt_connected.set(0)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Connect, subscribe and follow the fleet until cancelled."""
        self._events = events
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection_loop(), name="vda5050.master.connection")
            tg.create_task(self._watchdog(), name="vda5050.master.watchdog")

    async def _connection_loop(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with BrokerClient(
                    self._address.host,
                    self._address.port,
                    identifier=self._client_id,
                    keepalive=KEEPALIVE,
                    tls_params=aiomqtt.TLSParameters() if self._address.tls else None,
                ) as client:
                    for subtopic in INCOMING:
                        await keep_cancellation(
                            client.subscribe(fleet_filter(self.interface_name, subtopic), qos=1)
                        )
                    self._outage.up()
                    backoff.reset()
                    await self._link(client, up=True)
                    try:
                        async with asyncio.TaskGroup() as tg:
                            tg.create_task(self._receive(client), name="vda5050.master.receive")
                            tg.create_task(self._resend(client), name="vda5050.master.resend")
                    finally:
                        await self._link(None, up=False)
            except* aiomqtt.MqttError as group:
                self._outage.down(str(group.exceptions[0]))
            await backoff.wait(self._clock)

    async def _link(self, client: aiomqtt.Client | None, *, up: bool) -> None:
        self._client = client
        self._metrics.mqtt_connected.set(1 if up else 0)
        for tracker in self._trackers.values():
            tracker.link_up = up
        await self._refresh()

    async def _watchdog(self) -> None:
        while True:
            await self._clock.sleep(WATCH_INTERVAL)
            await self._refresh()
            for tracker in self._trackers.values():
                if tracker.wants_factsheet(FACTSHEET_WAIT):
                    await self._request_factsheet(tracker)

    async def _request_factsheet(self, tracker: RobotTracker) -> None:
        """``factsheetRequest`` (2.1 only); its outcome is not the controller's business, so it
        is not followed as an action."""
        action = RobotAction(f"factsheet-{uuid.uuid4().hex[:12]}", "factsheetRequest", "NONE")
        message = self._builders[tracker.serial].instant_actions([action])
        try:
            await self._publish(tracker.serial, "instantActions", message)
        except DeviceError as exc:
            log.debug(
                "factsheet request not sent", extra={"serial": tracker.serial, "error": str(exc)}
            )
            return
        tracker.factsheet_requested = True
        log.info("factsheet requested", extra={"serial": tracker.serial})

    async def _refresh(self) -> None:
        for tracker in self._trackers.values():
            await self._emit(tracker.refresh())

    async def _emit(self, events: list[DeviceEvent]) -> None:
        if events:
            available = sum(1 for t in self._trackers.values() if t.available)
            self._metrics.robots.labels("available").set(available)
            self._metrics.robots.labels("unavailable").set(len(self._trackers) - available)
        if self._events is None:
            return
        for event in events:
            await self._events.put(event)

    # --- incoming ---------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes | bytearray) else b""
            try:
                await self._handle(message.topic.value, bytes(raw))
            except Exception:
                # the per-message boundary: a bug in handling one message must not stop the
                # fleet; it is logged with its topic and the next message is handled
                log.exception("failed to handle a message", extra={"topic": message.topic.value})

    def _count(self, subtopic: str, result: str) -> None:
        label = subtopic if subtopic in INCOMING else "other"
        self._metrics.mqtt_messages.labels("in", label, result).inc()

    async def _handle(self, full_topic: str, raw: bytes) -> None:
        parts = split(full_topic)
        if parts is None or parts.subtopic not in INCOMING:
            self._count("other", "ignored")
            return
        tracker = self._trackers.get(parts.serial)
        if tracker is None or tracker.manufacturer != parts.manufacturer:
            self._count(parts.subtopic, "unknown_robot")
            return
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
            await self._emit(tracker.on_state(doc))
            pending = self._pending.get(tracker.serial)
            if pending is not None and tracker.confirmed(pending.order_id):
                del self._pending[tracker.serial]
        elif parts.subtopic == "connection":
            await self._emit(tracker.on_connection(doc))
        elif parts.subtopic == "factsheet":
            if tracker.on_factsheet(doc):
                self._log_factsheet(tracker)
            await self._emit(tracker.refresh())

    @staticmethod
    def _log_factsheet(tracker: RobotTracker) -> None:
        check = tracker.factsheet_check
        if check.problems:
            log.warning(
                "factsheet does not fit the picking templates"
                + ("" if check.usable else "; robot not used"),
                extra={"serial": tracker.serial, "problems": list(check.problems)},
            )
        else:
            log.info("factsheet fits the picking templates", extra={"serial": tracker.serial})

    def _log_invalid(self, serial: str, subtopic: str, errors: list[str]) -> None:
        level = logging.DEBUG if serial in self._warned_invalid else logging.WARNING
        self._warned_invalid.add(serial)
        log.log(
            level,
            "invalid VDA 5050 message dropped",
            extra={"serial": serial, "topic": subtopic, "errors": errors[:3]},
        )

    # --- outgoing ---------------------------------------------------------------------------

    async def _publish(self, serial: str, subtopic: str, message: dict[str, Any]) -> str:
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
            await keep_cancellation(client.publish(full_topic, payload, qos=1))
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable(f"publishing {subtopic} to {serial} failed: {exc}") from exc
        self._metrics.mqtt_messages.labels("out", subtopic, "ok").inc()
        return payload

    def _tracker(self, serial: str) -> RobotTracker:
        tracker = self._trackers.get(serial)
        if tracker is None:
            raise DeviceUnavailable(f"robot {serial!r} is not configured")
        return tracker

    async def send_order(self, serial: str, order: RobotOrder) -> None:
        """Publish ``order`` to ``serial``; it is resent until the robot's state shows it."""
        tracker = self._tracker(serial)
        available, reason = tracker.availability()
        if not available:
            raise DeviceUnavailable(f"robot {serial} is not available: {reason}")
        _check_base(order.nodes, order.edges, first_released=True)
        message = self._builders[serial].order(order)
        tracker.track_order(order, _last_released(message))
        try:
            payload = await self._publish(serial, "order", message)
        except BaseException:
            tracker.untrack(order.order_id)
            raise
        self._follow(serial, order.order_id, payload)
        log.info("order sent", extra={"serial": serial, "order_id": order.order_id})

    def _follow(self, serial: str, order_id: str, payload: str) -> None:
        """Resend ``payload`` until the state shows it; it replaces any earlier message."""
        manufacturer = self._trackers[serial].manufacturer
        self._pending[serial] = _Pending(
            order_id,
            topic(self.interface_name, manufacturer, serial, "order"),
            payload,
            self._clock.now(),
        )

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[RouteNode],
        edges: Sequence[RouteEdge],
    ) -> int:
        """Extend order ``order_id`` of ``serial`` (spec 6.6.2) and return its orderUpdateId.

        ``nodes`` are the new nodes, ``edges`` lead from the last base node sent so far (the
        stitching node, resent unchanged) through them. Released nodes come first; the rest
        replaces the horizon sent before (an update may carry only a new horizon). Allowed
        once the state has shown the previous order or update, also after the order finished;
        raises CommandRejected when the update does not stitch on, DeviceUnavailable when it
        cannot be sent.
        """
        tracker = self._tracker(serial)
        base = tracker.base
        if base is None or base.order_id != order_id:
            raise CommandRejected(f"robot {serial} has no order {order_id!r} to update")
        if tracker.pending_update(order_id):
            raise CommandRejected(
                f"order {order_id!r} update {base.update_id} is not yet confirmed by {serial}"
            )
        path = [base.node["nodeId"], *(n.node_id for n in nodes)]
        if (
            not nodes
            or len(edges) != len(nodes)
            or any((e.start, e.end) != (path[i], path[i + 1]) for i, e in enumerate(edges))
        ):
            raise CommandRejected(
                f"an update of {order_id!r} needs one edge from {path[0]!r} to each new node"
            )
        _check_base(nodes, edges, first_released=False)
        available, reason = tracker.availability()
        if not available:
            raise DeviceUnavailable(f"robot {serial} is not available: {reason}")
        update_id = tracker.next_update_id(order_id)
        message = self._builders[serial].order_update(order_id, update_id, base.node, nodes, edges)
        tracker.track_update(order_id, update_id, nodes, _last_released(message))
        try:
            payload = await self._publish(serial, "order", message)
        except BaseException:
            tracker.untrack_update(order_id)
            raise
        self._follow(serial, order_id, payload)
        log.info(
            "order update sent",
            extra={"serial": serial, "order_id": order_id, "order_update_id": update_id},
        )
        return update_id

    async def send_instant_actions(self, serial: str, actions: Sequence[RobotAction]) -> None:
        """Publish instant actions (``cancelOrder``, ``startPause``, ...) to ``serial``; their
        outcome arrives as RobotActionFinished / RobotActionFailed events."""
        tracker = self._tracker(serial)
        if tracker.connection != "ONLINE":
            raise DeviceUnavailable(f"robot {serial} is {tracker.connection}")
        message = self._builders[serial].instant_actions(actions)
        tracker.track_instant(list(actions))
        await self._publish(serial, "instantActions", message)

    async def cancel_order(self, serial: str) -> str:
        """Send ``cancelOrder``; returns the action id to follow in the events.

        The order is not resent or updated after this: the robot keeps a cancelled order's
        ids (spec 6.6.3), so a late update stitching on where it stopped would start it again.
        """
        action_id = f"cancel-{uuid.uuid4().hex[:12]}"
        await self.send_instant_actions(serial, [RobotAction(action_id, "cancelOrder", "NONE")])
        self._pending.pop(serial, None)
        self._trackers[serial].cancelled()
        return action_id

    async def _resend(self, client: aiomqtt.Client) -> None:
        while True:
            await self._clock.sleep(WATCH_INTERVAL)
            now = self._clock.now()
            for serial, pending in list(self._pending.items()):
                if self._trackers[serial].confirmed(pending.order_id):
                    self._pending.pop(serial, None)
                elif now - pending.sent_at >= RESEND_INTERVAL:
                    pending.sent_at = now
                    await keep_cancellation(client.publish(pending.topic, pending.payload, qos=1))
                    self._metrics.mqtt_messages.labels("out", "order", "resent").inc()
                    log.debug(
                        "order resent", extra={"serial": serial, "order_id": pending.order_id}
                    )

    def snapshot(self) -> dict[str, RobotSnapshot]:
        return {serial: t.snapshot() for serial, t in self._trackers.items()}


def _check_base(
    nodes: Sequence[RouteNode], edges: Sequence[RouteEdge], *, first_released: bool
) -> None:
    """Released nodes first, then the horizon (spec 6.6.1); an edge is released exactly when
    the node it leads to is."""
    if first_released and (not nodes or not nodes[0].released):
        raise CommandRejected("the first node of an order must be released")
    flags = [n.released for n in nodes]
    if flags != sorted(flags, reverse=True):
        raise CommandRejected("a released node follows the horizon")
    ends = nodes[1:] if first_released else nodes
    if any(e.released != n.released for e, n in zip(edges, ends, strict=False)):
        raise CommandRejected("an edge must be released exactly when its end node is")


def _last_released(message: dict[str, Any]) -> dict[str, Any]:
    """The order's decision point: its last released node, as sent."""
    released: list[dict[str, Any]] = [n for n in message["nodes"] if n["released"]]
    return released[-1]

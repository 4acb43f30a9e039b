"""VDA 5050 master control over MQTT: the :class:`devices.base.RobotFleet` for the controller.

One aiomqtt client for the whole fleet. Every incoming ``state``, ``connection`` and
``factsheet`` message is validated against the schema of the robot's version at the boundary;
an invalid one is counted, logged once per robot and dropped. Orders and order updates are
published with QoS 0 (spec 6.2), instant actions with QoS 1 (they are not resent); the newest
order or update is resent (a new ``headerId``, the same ``orderId`` and ``orderUpdateId``)
until a state message shows it, and instant actions are followed until each has an outcome or
its deadline passed.
Factsheets (retained) are read at start; a 2.1 robot ONLINE for :data:`FACTSHEET_WAIT` without
one is sent ``factsheetRequest``. A factsheet that lacks what picking needs is logged once and
shown in the robot's snapshot. aiomqtt and paho types never leave master control's modules.

A robot ONLINE without a state since it came online (at start: every robot) is sent
``stateRequest`` once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt

from devices.base import DeviceEvent, RobotAction, RobotSnapshot
from devices.errors import DeviceError, DeviceUnavailable
from devices.supervisor import SessionLost, until_first_failure
from devices.vda5050 import schema
from devices.vda5050.link import keep_cancellation
from devices.vda5050.master_orders import MasterOrders
from devices.vda5050.master_state import FACTSHEET_WAIT, INCOMING, KEEPALIVE, WATCH_INTERVAL, log
from devices.vda5050.topics import fleet_filter, split
from devices.vda5050.tracker import RobotTracker


class VdaMasterControl(MasterOrders):
    """Master control for every robot in ``config.robots.fleet``."""

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Connect, subscribe and follow the fleet until cancelled."""
        self._events = events
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection_loop(), name="vda5050.master.connection")
            tg.create_task(self._watchdog(), name="vda5050.master.watchdog")

    async def _connection_loop(self) -> None:
        await self._broker_link.run(self._broker_session)

    async def _broker_session(self) -> None:
        """One connection to the broker, until it breaks (DeviceUnavailable, with the MQTT
        error as the reason). Its tasks run under ``until_first_failure``, not a task group,
        which on Python 3.11 would leave a stray cancellation request on this task."""
        try:
            async with self._broker.client(self._client_id, keepalive=KEEPALIVE) as client:
                for subtopic in INCOMING:
                    await keep_cancellation(
                        client.subscribe(fleet_filter(self.interface_name, subtopic), qos=1)
                    )
                await self._broker_link.came_up()
                await self._link(client, up=True)
                try:
                    await until_first_failure(
                        SessionLost,
                        self._receive(client),
                        self._resend(client),
                        names=("vda5050.master.receive", "vda5050.master.resend"),
                    )
                finally:
                    await self._link(None, up=False)
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable(str(exc)) from exc

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
                if tracker.wants_state():
                    await self._request_state(tracker)
                await self._emit(tracker.overdue())
                if tracker.wants_factsheet(FACTSHEET_WAIT):
                    await self._request_factsheet(tracker)

    async def _request_state(self, tracker: RobotTracker) -> None:
        """``stateRequest`` (2.0 and 2.1) to a robot ONLINE without a state since it came
        online: a controller that just started learns its order, actions and loads now. Sent
        once per ONLINE period (the robot's periodic state follows anyway)."""
        action = RobotAction(f"state-{uuid.uuid4().hex[:12]}", "stateRequest", "NONE")
        message = self._builders[tracker.serial].instant_actions([action])
        try:
            await self._publish(tracker.serial, "instantActions", message)
        except DeviceError as exc:
            log.debug("state request not sent", extra={"serial": tracker.serial, "error": str(exc)})
            return
        tracker.state_requested = True
        log.info("state requested", extra={"serial": tracker.serial})

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

    def resume_robot(self, serial: str) -> bool:
        """An operator puts the robot back into use after it needed one (rejected orders or
        cancels in a row); True if it needed one. A robot off its node stays out of use
        until it reports a position on one."""
        return self._tracker(serial).reset("resumed by an operator")

    def snapshot(self) -> dict[str, RobotSnapshot]:
        return {serial: t.snapshot() for serial, t in self._trackers.items()}

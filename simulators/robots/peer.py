"""One simulated robot as a real MQTT peer: its own client, last will, retained connection
messages, factsheet, state and visualization, and the order/instantActions it receives.

Every incoming message is validated against the robot's protocol version; an invalid order is
rejected with a ``validationError`` warning in ``state.errors`` (spec 6.6.4.1). Every outgoing
message is validated before it is published.

Two faults live here because they are about the link: :meth:`RobotPeer.drop_connection` cuts the
connection uncleanly so that the broker publishes the last will (``CONNECTIONBROKEN``, spec 6.14)
and keeps the robot off the broker for a while; a frozen vehicle controller (see
:meth:`simulators.robots.state.RobotState.freeze`) stays connected but publishes nothing and
handles no message until it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any

import aiomqtt
import orjson

from devices.outage import Outage
from devices.vda5050 import schema
from devices.vda5050.broker import BrokerSettings
from devices.vda5050.link import keep_cancellation
from devices.vda5050.messages import ErrorEntry, MessageBuilder, Pose
from devices.vda5050.topics import topic
from kernel.backoff import Backoff
from simulators.robots.timed import TimedFault
from simulators.robots.vehicle import SimulatedRobot

log = logging.getLogger(__name__)

# A state goes out on every change the robot reports (spec 6.10: an order or update received,
# a node passed, an action's status, loads, errors, driving started or stopped, ...) and else at
# the latest this many line seconds after the last one (the spec's limit is 30 s; master control
# counts a robot silent after that).
STATE_INTERVAL = 10.0
# ... and while it drives, at the latest this many line seconds after the last one: master
# control sees where it is between two nodes (traffic control frees the node a robot has driven
# clear of, robots.traffic.clearance), as vehicles that report about once a second let it
DRIVING_STATE_INTERVAL = 1.0
# line seconds between visualization messages while the pose or velocity changes (spec 6.13: the
# integrator's choice); a robot standing still has nothing new to show and sends none
VISUALIZATION_INTERVAL = 1.0
OFFLINE_TIMEOUT = 2.0  # wall seconds to say OFFLINE on a clean stop
KEEPALIVE = 15  # seconds, as the spec suggests for the connection heartbeat


class RobotPeer:
    """Carries one :class:`SimulatedRobot`'s messages over its own MQTT connection."""

    def __init__(self, robot: SimulatedRobot, broker: BrokerSettings, interface_name: str) -> None:
        self.robot = robot
        self.clock = robot.clock
        self.broker = broker
        self.interface_name = interface_name
        self.version = robot.robot.version
        self.builder = MessageBuilder(
            self.version, robot.model.manufacturer, robot.serial, robot.clock
        )
        self._outage = Outage(
            robot.clock,
            log,
            "robot broker connection",
            {"serial": robot.serial, "url": broker.url, "username": broker.who},
        )
        self.link_cut = TimedFault(robot.clock)
        self._client: aiomqtt.Client | None = None
        self._state_at = robot.clock.now()  # line time the last state was published

    def drop_connection(self, for_seconds: float) -> None:
        """Lose the broker connection uncleanly and stay away for ``for_seconds`` line seconds;
        the broker publishes the last will, and the robot says ONLINE when it is back."""
        self.link_cut.start(for_seconds)
        log.warning(
            "dropping the broker connection",
            extra={"serial": self.robot.serial, "line_seconds": for_seconds},
        )
        if self._client is not None:
            sever(self._client)

    @property
    def connected(self) -> bool:
        """The robot has a connection to the broker right now."""
        return self._client is not None

    def topic(self, subtopic: str) -> str:
        return topic(
            self.interface_name, self.robot.model.manufacturer, self.robot.serial, subtopic
        )

    async def run(self) -> None:
        """Stay connected (reconnecting with backoff) until cancelled."""
        backoff = Backoff(0.2, 10.0)  # wall seconds
        will = aiomqtt.Will(
            self.topic("connection"),
            orjson.dumps(self.builder.connection("CONNECTIONBROKEN")),
            qos=1,
            retain=True,
        )
        while True:
            await self.link_cut.cleared()
            try:
                async with self.broker.client(
                    f"linectl-sim-{self.robot.serial}-{uuid.uuid4().hex[:6]}",
                    will=will,
                    keepalive=KEEPALIVE,
                ) as client:
                    self._outage.up()
                    backoff.reset()
                    self._client = client
                    try:
                        await self._session(client)
                    finally:
                        self._client = None
            except* aiomqtt.MqttError as group:
                self._outage.down(str(group.exceptions[0]))
            if not self.link_cut.active:
                await self.clock.sleep(backoff.next_delay() * self.clock.time_scale)

    async def _publish(
        self,
        client: aiomqtt.Client,
        subtopic: str,
        message: dict[str, Any],
        *,
        qos: int = 0,
        retain: bool = False,
    ) -> None:
        errors = schema.validate(self.version, subtopic, message)
        if errors:
            log.error(
                "refusing to publish an invalid message",
                extra={"serial": self.robot.serial, "topic": subtopic, "errors": errors},
            )
            return
        await keep_cancellation(
            client.publish(self.topic(subtopic), orjson.dumps(message), qos=qos, retain=retain)
        )

    async def _session(self, client: aiomqtt.Client) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._start(client, tg), name=f"robot[{self.robot.serial}].start")
                # The receive loop runs in the group's body, not as a child task. On Python 3.11
                # a TaskGroup whose body has already finished never withdraws the cancellation
                # it sends its parent when a child fails (fixed in 3.12): the reconnect loop
                # would carry a stale cancellation request into the next connection, where
                # keep_cancellation() raises it. Awaiting here keeps the body running, so the
                # group withdraws the request itself. It runs from the start: it is what notices
                # a lost connection at once (aiomqtt's subscribe and publish calls would wait
                # out their timeout for an answer that cannot come).
                await self._receive(client)
        except asyncio.CancelledError:
            await self._say_offline(client)
            raise

    async def _start(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        # subscribed before saying ONLINE: master control may send an order the moment it sees
        # ONLINE, and a message published before the subscription exists is lost
        await keep_cancellation(client.subscribe(self.topic("order"), qos=1))
        await keep_cancellation(client.subscribe(self.topic("instantActions"), qos=1))
        await self._publish(
            client, "connection", self.builder.connection("ONLINE"), qos=1, retain=True
        )
        await self._publish_factsheet(client)
        self.robot.changed.set()
        name = f"robot[{self.robot.serial}]"
        tg.create_task(self._publish_state(client), name=f"{name}.state")
        tg.create_task(self._state_interval(), name=f"{name}.state-interval")
        tg.create_task(self._visualization(client), name=f"{name}.visualization")
        tg.create_task(self._factsheets(client), name=f"{name}.factsheet")

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """Spec 6.14: a clean stop publishes OFFLINE before disconnecting."""
        try:
            async with asyncio.timeout(OFFLINE_TIMEOUT):
                await self._publish(
                    client, "connection", self.builder.connection("OFFLINE"), qos=1, retain=True
                )
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.warning(
                "could not publish OFFLINE", extra={"serial": self.robot.serial, "error": str(exc)}
            )

    async def _publish_factsheet(self, client: aiomqtt.Client) -> None:
        factsheet = self.builder.factsheet(
            self.robot.model,
            self.robot.robot.model,
            state_interval=STATE_INTERVAL,
            visualization_interval=VISUALIZATION_INTERVAL,
        )
        # what the robot declares is what its acceptance checks allow
        factsheet["protocolFeatures"]["agvActions"] = self.robot.capabilities.factsheet_actions()
        await self._publish(client, "factsheet", factsheet, retain=True)

    async def _factsheets(self, client: aiomqtt.Client) -> None:
        while True:
            await self.robot.factsheet_requested.wait()
            self.robot.factsheet_requested.clear()
            await self._publish_factsheet(client)

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        while True:
            await self.robot.changed.wait()
            await self.robot.frozen.cleared()
            self.robot.changed.clear()
            self._state_at = self.clock.now()
            await self._publish(client, "state", self.builder.state(self.robot.state_body()))

    async def _state_interval(self) -> None:
        """Ask for a state once :data:`STATE_INTERVAL` passed without one
        (:data:`DRIVING_STATE_INTERVAL` while the robot drives)."""
        while True:
            interval = DRIVING_STATE_INTERVAL if self.robot.driving else STATE_INTERVAL
            left = self._state_at + interval - self.clock.now()
            if left > 0:
                await self.clock.sleep(min(left, DRIVING_STATE_INTERVAL))
                continue
            self.robot.changed.set()
            await self.clock.sleep(DRIVING_STATE_INTERVAL)  # published by then, unless frozen

    async def _visualization(self, client: aiomqtt.Client) -> None:
        """The pose and velocity every :data:`VISUALIZATION_INTERVAL` while they change."""
        shown: tuple[Pose, tuple[float, float, float]] | None = None
        while True:
            await self.clock.sleep(VISUALIZATION_INTERVAL)
            await self.robot.frozen.cleared()
            now = (self.robot.pose(), self.robot.velocity_vector())
            if now == shown:
                continue
            shown = now
            await self._publish(client, "visualization", self.builder.visualization(*now))

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            await self.robot.frozen.cleared()
            subtopic = message.topic.value.rsplit("/", 1)[-1]
            if subtopic not in ("order", "instantActions") or not isinstance(
                message.payload, bytes | bytearray
            ):
                continue
            parsed = schema.parse(self.version, subtopic, message.payload)
            if parsed.payload is None:
                log.info(
                    "invalid message received",
                    extra={"serial": self.robot.serial, "topic": subtopic, "errors": parsed.errors},
                )
                self.robot.reject(
                    ErrorEntry(
                        "validationError",
                        "WARNING",
                        f"invalid {subtopic}: {parsed.errors[0]}"[:500],
                        (("topic", subtopic),),
                    )
                )
                continue
            if subtopic == "order":
                self.robot.handle_order(parsed.payload)
            else:
                self.robot.handle_instant_actions(parsed.payload)


def sever(client: aiomqtt.Client) -> None:
    """Cut ``client``'s connection the way a crash or a pulled cable does: without an MQTT
    DISCONNECT, so the broker treats it as unexpected and publishes the client's last will.

    aiomqtt offers only a clean disconnect (leaving ``async with`` sends DISCONNECT, and the
    broker then discards the will), so this reaches into its paho client for the TCP socket
    (``paho.mqtt.client.Client.socket()``, a public paho method) and shuts it down in both
    directions. The broker sees the stream end and publishes the will; paho reads end-of-stream
    on its next read, reports the connection lost, and aiomqtt raises ``MqttError`` from the
    message iterator and from pending calls, as it would for a real network failure. The socket
    is shut down, not closed, so that paho and the event loop still own a valid descriptor and
    close it themselves.
    """
    paho_client = client._client  # private: see the docstring
    sock = paho_client.socket()
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError as exc:  # already gone: the connection is lost either way
            log.debug("socket already closed", extra={"error": str(exc)})

"""VDA 5050 master control over MQTT: the :class:`devices.base.RobotFleet` for the controller.

One aiomqtt client for the whole fleet. Every incoming ``state``, ``connection`` and
``factsheet`` message is validated against the schema of the robot's version at the boundary;
an invalid one is counted, logged once per robot and dropped. Orders and order updates are
published with QoS 0 (spec 6.2), queued for the session's send task rather than awaited one by
one, instant actions with QoS 1 (they are not resent, and awaited); the newest
order or update is resent (a new ``headerId``, the same ``orderId`` and ``orderUpdateId``)
until a state message shows it, and instant actions are followed until each has an outcome or
its deadline passed.
Factsheets (retained) are read at start; a 2.1 robot ONLINE for a few line seconds without
one is sent ``factsheetRequest``. A factsheet that lacks what picking needs is logged once and
shown in the robot's snapshot. aiomqtt and paho types never leave master control's modules.

A robot ONLINE without a state since it came online (at start: every robot) is sent
``stateRequest`` once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Sequence

import aiomqtt

from devices.base import (
    DeviceEvent,
    RobotAction,
    RobotOrder,
    RobotPosition,
    RobotSnapshot,
    RouteEdge,
    RouteNode,
)
from devices.errors import DeviceUnavailable
from devices.outage import Outage
from devices.supervisor import DeviceSupervisor, SessionLost, until_first_failure
from devices.vda5050.broker import broker_settings
from devices.vda5050.link import keep_cancellation
from devices.vda5050.master.commands import RobotCommands
from devices.vda5050.master.intake import INCOMING, StateIntake
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.pending import PendingOrders
from devices.vda5050.master.state import MasterState
from devices.vda5050.master.watch import FleetWatch
from devices.vda5050.topics import fleet_filter
from kernel.backoff import Backoff
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

log = logging.getLogger("devices.vda5050.master")  # master control logs under one name

KEEPALIVE = 15  # seconds, the MQTT keepalive of master control's broker client


class VdaMasterControl:
    """Master control for every robot in ``config.robots.fleet``.

    It keeps the broker connection and hands the work to parts that share one
    :class:`MasterState`: the commands the controller gives, the intake of what robots send,
    the resending of unconfirmed orders and a periodic look at the fleet."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        mqtt_url: str,
        interface_name: str | None = None,
        fence: Fence | None = None,
    ) -> None:
        self._clock = clock
        self._metrics = metrics
        self.interface_name = interface_name or config.mqtt.interface_name
        # the broker link, made and kept only here (run): the line's login and TLS files are
        # read now, so a problem stops the start with its reason
        self._broker = broker_settings(config.mqtt, mqtt_url)
        self._client_id = f"{config.mqtt.client_id}-{uuid.uuid4().hex[:6]}"
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
        # the parts that do the work, sharing one state
        self._state = MasterState.for_fleet(config, clock, metrics, self.interface_name)
        if fence is not None:
            self._state.fence = fence
        self._output = MasterOutput(self._state)
        self._pending = PendingOrders(self._state)
        self._commands = RobotCommands(self._state, self._output, self._pending)
        self._intake = StateIntake(self._state, self._output, self._pending)
        self._watch = FleetWatch(self._state, self._output)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Connect, subscribe and follow the fleet until cancelled."""
        self._state.events = events
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._connection_loop(), name="vda5050.master.connection")
            tg.create_task(self._watch.run(), name="vda5050.master.watchdog")

    async def _connection_loop(self) -> None:
        await self._broker_link.run(self._broker_session)

    async def _broker_session(self) -> None:
        """One connection to the broker, until it breaks (DeviceUnavailable, with the MQTT
        error as the reason). Its tasks run under ``until_first_failure``, not a task group,
        which on Python 3.11 would leave a stray cancellation request on this task."""
        try:
            async with self._broker.client(self._client_id, keepalive=KEEPALIVE) as client:
                # the send task publishes every order posted at once, up to one per robot
                # (and resends and instant actions besides): warn only beyond that
                client.pending_calls_threshold = max(
                    client.pending_calls_threshold, 2 * len(self._state.trackers)
                )
                for subtopic in INCOMING:
                    await keep_cancellation(
                        client.subscribe(fleet_filter(self.interface_name, subtopic), qos=1)
                    )
                await self._broker_link.came_up()
                await self._link(client, up=True)
                try:
                    await until_first_failure(
                        SessionLost,
                        self._intake.receive(client),
                        self._pending.resend(client),
                        self._output.send(client),
                        names=(
                            "vda5050.master.receive",
                            "vda5050.master.resend",
                            "vda5050.master.send",
                        ),
                    )
                finally:
                    await self._link(None, up=False)
        except aiomqtt.MqttError as exc:
            raise DeviceUnavailable(str(exc)) from exc

    async def _link(self, client: aiomqtt.Client | None, *, up: bool) -> None:
        self._state.client = client
        self._metrics.mqtt_connected.set(1 if up else 0)
        for tracker in self._state.trackers.values():
            tracker.link_up = up
        await self._output.refresh()

    # --- what the controller asks -------------------------------------------------------------

    async def send_order(self, serial: str, order: RobotOrder) -> None:
        """Publish ``order`` to ``serial``; it is resent until the robot's state shows it.

        Raises OrderRefused when it may not go out now (operator needed, backing off, order
        rate cap, not starting where the robot stands), DeviceUnavailable when the robot or
        the broker cannot be reached."""
        await self._commands.send_order(serial, order)

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[RouteNode],
        edges: Sequence[RouteEdge],
    ) -> int:
        """Extend order ``order_id`` of ``serial`` (spec 6.6.2) and return its orderUpdateId;
        CommandRejected while the previous update is unconfirmed or when it does not stitch
        on."""
        return await self._commands.send_order_update(serial, order_id, nodes, edges)

    async def send_instant_actions(self, serial: str, actions: Sequence[RobotAction]) -> None:
        """Publish instant actions to ``serial``; outcomes arrive as events."""
        await self._commands.send_instant_actions(serial, actions)

    async def cancel_order(self, serial: str) -> str:
        """Send ``cancelOrder``; returns the action id to follow in the events."""
        return await self._commands.cancel_order(serial)

    def resume_robot(self, serial: str) -> bool:
        """An operator puts the robot back into use after it needed one (rejected orders or
        cancels in a row); True if it needed one. A robot off its node stays out of use
        until it reports a position on one."""
        return self._state.tracker(serial).reset("resumed by an operator")

    def snapshot(self) -> dict[str, RobotSnapshot]:
        return {serial: t.snapshot() for serial, t in self._state.trackers.items()}

    def robot_positions(self) -> dict[str, RobotPosition]:
        return {serial: t.position() for serial, t in self._state.trackers.items()}

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, RobotSnapshot]:
        trackers = self._state.trackers
        return {s: t.snapshot() for s in serials if (t := trackers.get(s)) is not None}

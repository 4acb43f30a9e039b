"""The sorter adapter: a conveyor loop with scanner and sorter, driven over OPC UA.

:class:`OpcUaSorter` implements :class:`devices.base.Sorter`. ``run`` owns the connection: it
connects, finds the model by browse paths, subscribes to scan and divert-completion events (large
queues, nothing sampled away) and to the PackML state, zone jams and chute levels, and puts
``ItemScanned``/``ItemDiverted``/``ConveyorAvailability`` values on the controller's queue. When
the connection drops it reconnects with jittered backoff, logging the outage once when it starts
and once when it ends (:class:`~devices.supervisor.DeviceSupervisor`). Once connected again it
reads the divert journal for what it missed and the conveyor's tracking table
(``ConveyorTracking``), so the controller can reconcile its items. asyncua types and exceptions
never leave this package.

The adapter is a facade over collaborators sharing one
:class:`~devices.opcua.sorter.state.SorterState`: it runs the sessions and the commands,
:class:`~devices.opcua.sorter.events.SorterEvents` takes the subscription's events and values,
:class:`~devices.opcua.sorter.recovery.SorterRecovery` recovers after a reconnect or a watchdog
hold and writes the life sign.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from asyncua import Client, ua

from devices.base import ConveyorAvailability, ConveyorSnapshot, DeviceEvent
from devices.errors import CommandRejected, DeviceUnavailable
from devices.opcua.browse import ModelMismatch, resolve
from devices.opcua.connection import close_client, connect_client, watch_connection
from devices.opcua.security import secure_client
from devices.opcua.sorter.events import SorterEvents
from devices.opcua.sorter.recovery import SorterRecovery
from devices.opcua.sorter.state import LiveSession, SorterState
from devices.opcua.translate import TRANSPORT_ERRORS, translate_error
from devices.outage import Outage
from devices.supervisor import DeviceSupervisor, SessionLost, until_first_failure
from kernel.backoff import Backoff
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics, SafeStateReason

log = logging.getLogger("devices.opcua.sorter")  # the sorter adapter logs under one name


class OpcUaSorter:
    """The conveyor and sorter of one line over OPC UA (security as ``conveyor.opcua`` says).

    ``endpoint`` defaults to ``conveyor.opcua.endpoint``; ``backoff`` spaces the reconnects
    (wall seconds; by default from 0.5 s doubling up to 15 s).
    """

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        endpoint: str | None = None,
        *,
        publishing_interval_ms: float = 5.0,
        request_timeout: float = 4.0,
        watchdog_seconds: float = 1.0,
        backoff: Backoff | None = None,
        fence: Fence | None = None,
    ) -> None:
        endpoint = endpoint or config.conveyor.opcua.endpoint
        self._state = SorterState(config, clock, metrics, endpoint)
        if fence is not None:
            self._state.fence = fence
        self._incoming = SorterEvents(self._state, publishing_interval_ms)
        self._recovery = SorterRecovery(self._state)
        outage = Outage(
            clock, log, "conveyor", {"conveyor": config.conveyor.id, "endpoint": endpoint}
        )
        self._supervisor = DeviceSupervisor(clock, backoff or Backoff(0.5, 15.0), outage)
        self._request_timeout = request_timeout
        self._watchdog = watchdog_seconds
        self._connected = metrics.opcua_connected.labels(conveyor=config.conveyor.id)
        self._connected.set(0)
        self._was_up = False  # the link was announced up (its loss is a comms-loss entry)

    @property
    def endpoint(self) -> str:
        return self._state.endpoint

    @property
    def connected(self) -> bool:
        return self._state.connected

    # --- devices.base.Sorter --------------------------------------------------------------------

    def snapshot(self) -> ConveyorSnapshot:
        state = self._state
        return ConveyorSnapshot(
            conveyor_id=state.conveyor_id,
            connected=state.connected,
            state=state.packml_state if state.connected else "Unknown",
            chutes=tuple(state.chutes.values()),
            jammed_zones=tuple(sorted(state.jammed)),
            zones=tuple(state.zones.values()),
        )

    async def divert(self, item_id: str, chute_id: str) -> None:
        live = self._state.require_live()
        try:
            await live.model.sorter.call_method(
                live.model.divert_method.nodeid,
                ua.Variant(item_id, ua.VariantType.String),
                ua.Variant(chute_id, ua.VariantType.String),
            )
        except TRANSPORT_ERRORS as exc:
            raise translate_error(exc, f"Divert({item_id}, {chute_id})") from exc

    async def command(self, name: str) -> None:
        """Send a PackML command (``Hold``, ``Unhold``, ``Stop``, ``Reset``, ``Start``, ...):
        the standard method of the OPC 30050 state machine that carries it.

        Raises CommandRejected when the state machine refuses it or the server does not offer
        it, DeviceUnavailable when offline.
        """
        live = self._state.require_live()
        packml = live.model.packml
        target = packml.method_for(name, self._state.packml_state)
        if target is None:
            raise CommandRejected(f"conveyor {self._state.conveyor_id} offers no PackML {name}")
        machine, method = target
        try:
            await machine.call_method(method.nodeid)
            self._state.packml_state = await packml.read_state()
        except TRANSPORT_ERRORS as exc:
            raise translate_error(exc, f"PackML {name}") from exc

    async def jog(self, zone: str, speed: float, seconds: float) -> None:
        """Run one zone at ``speed`` m/s for ``seconds`` (commissioning; the zone's ``Jog``).

        Returns once the conveyor accepted the jog, not when it ends. Raises CommandRejected
        for an unknown zone, a unit in ``Execute``, a jammed zone or values out of range,
        DeviceUnavailable when offline.
        """
        live = self._state.require_live()
        node = live.model.zones.get(zone)
        if node is None:
            raise CommandRejected(f"conveyor {self._state.conveyor_id} has no zone {zone}")
        try:
            await node.call_method(
                live.model.qn("Jog"),
                ua.Variant(float(speed), ua.VariantType.Double),
                ua.Variant(float(seconds), ua.VariantType.Double),
            )
        except TRANSPORT_ERRORS as exc:
            raise translate_error(exc, f"Jog of zone {zone}") from exc

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Keep a session to the conveyor until cancelled, reconnecting with backoff."""
        await self._supervisor.run(partial(self._session, events), partial(self._announce, events))

    # --- one session ----------------------------------------------------------------------------

    async def _session(self, events: asyncio.Queue[DeviceEvent]) -> None:
        endpoint = self._state.endpoint
        client = Client(endpoint, timeout=self._request_timeout, watchdog_intervall=self._watchdog)
        client.session_timeout = 30_000  # ms; the server drops an abandoned session soon
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        opened = False
        try:
            try:
                await secure_client(client, self._state.config.conveyor.opcua)
                await connect_client(client)
                opened = True
                model = await resolve(client, self._state.config)
                subscription = await self._incoming.subscribe(client, model)
                await self._incoming.read_levels(client, model)
                await self._recovery.recover(model)
            except ModelMismatch as exc:
                raise DeviceUnavailable(f"model mismatch: {exc}") from exc
            except TRANSPORT_ERRORS as exc:
                # a refusal here (credentials, certificate) leaves the conveyor out of reach
                # just as a dead network does: retried with backoff, not fatal to run()
                error = translate_error(exc, f"connect {endpoint}")
                raise DeviceUnavailable(str(error)) from exc
            self._state.live = LiveSession(client, model)
            self._connected.set(1)
            await self._supervisor.came_up()
            await self._recovery.reconcile(model, events)
            name = f"conveyor[{self._state.conveyor_id}]"
            await until_first_failure(
                SessionLost,
                self._incoming.consume(subscription, model, events),
                watch_connection(lost),
                self._recovery.life_sign(model),
                names=(f"{name}.events", f"{name}.watchdog", f"{name}.life-sign"),
            )
        finally:
            self._state.live = None
            self._connected.set(0)
            if opened:
                await close_client(client, lost.is_set(), self._request_timeout, log)

    # --- availability -----------------------------------------------------------------------

    async def _announce(
        self, events: asyncio.Queue[DeviceEvent], available: bool, reason: str
    ) -> None:
        """The supervisor's word that availability changed, as a ConveyorAvailability."""
        if available:
            self._was_up = True
        elif self._was_up:
            # the controller lost sight of running belts: the PLC's watchdog holds them,
            # and the controller releases no work to the conveyor until it is back
            self._was_up = False
            self._state.metrics.conveyor_safe_state.labels(
                self._state.conveyor_id, SafeStateReason.COMMS_LOST
            ).inc()
        await events.put(
            ConveyorAvailability(
                self._state.conveyor_id, available, reason, self._state.clock.utcnow()
            )
        )

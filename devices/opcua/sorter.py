"""The sorter adapter: a conveyor loop with scanner and sorter, driven over OPC UA.

:class:`OpcUaSorter` implements :class:`devices.base.Sorter`. ``run`` owns the connection: it
connects, finds the model by browse paths, subscribes to scan and divert-completion events (large
queues, nothing sampled away) and to the PackML state, zone jams and chute levels, and puts
``ItemScanned``/``ItemDiverted``/``ConveyorAvailability`` values on the controller's queue. When
the connection drops it reconnects with jittered backoff, logging the outage once when it starts
and once when it ends. Once connected again it reads the divert journal for what it missed and
the conveyor's tracking table (``ConveyorTracking``), so the controller can reconcile its items.
asyncua types and exceptions never leave this package.

The adapter is put together from one module per concept: this module has the commands, the
sessions and the availability; :mod:`devices.opcua.sorter_events` takes the subscription's
events and values; :mod:`devices.opcua.sorter_recovery` recovers after a reconnect or a
watchdog hold and writes the life sign; :mod:`devices.opcua.sorter_state` holds the state they
share.
"""

from __future__ import annotations

import asyncio
import logging

from asyncua import Client, ua

from devices.base import ConveyorAvailability, ConveyorSnapshot, DeviceEvent
from devices.errors import CommandRejected, DeviceUnavailable
from devices.opcua.browse import ModelMismatch, resolve
from devices.opcua.security import secure_client
from devices.opcua.sorter_events import SorterEvents
from devices.opcua.sorter_recovery import SorterRecovery
from devices.opcua.sorter_state import _Live, _SessionLost
from devices.opcua.supervise import (
    close_client,
    connect_client,
    stop_if_cancelled,
    until_first_failure,
)
from devices.opcua.translate import TRANSPORT_ERRORS, translate_error

log = logging.getLogger(__name__)


class OpcUaSorter(SorterEvents, SorterRecovery):
    """The conveyor and sorter of one line over OPC UA (security as ``conveyor.opcua`` says);
    the constructor is :class:`~devices.opcua.sorter_state.SorterState`'s."""

    # --- devices.base.Sorter --------------------------------------------------------------------

    def snapshot(self) -> ConveyorSnapshot:
        return ConveyorSnapshot(
            conveyor_id=self._conveyor_id,
            connected=self.connected,
            state=self._state if self.connected else "Unknown",
            chutes=tuple(self._chutes.values()),
            jammed_zones=tuple(sorted(self._jammed)),
        )

    async def divert(self, item_id: str, chute_id: str) -> None:
        live = self._require_live()
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
        live = self._require_live()
        packml = live.model.packml
        target = packml.method_for(name, self._state)
        if target is None:
            raise CommandRejected(f"conveyor {self._conveyor_id} offers no PackML {name}")
        machine, method = target
        try:
            await machine.call_method(method.nodeid)
            self._state = await packml.read_state()
        except TRANSPORT_ERRORS as exc:
            raise translate_error(exc, f"PackML {name}") from exc

    async def jog(self, zone: str, speed: float, seconds: float) -> None:
        """Run one zone at ``speed`` m/s for ``seconds`` (commissioning; the zone's ``Jog``).

        Returns once the conveyor accepted the jog, not when it ends. Raises CommandRejected
        for an unknown zone, a unit in ``Execute``, a jammed zone or values out of range,
        DeviceUnavailable when offline.
        """
        live = self._require_live()
        node = live.model.zones.get(zone)
        if node is None:
            raise CommandRejected(f"conveyor {self._conveyor_id} has no zone {zone}")
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
        while True:
            stop_if_cancelled()
            try:
                await self._session(events)
                reason = "connection lost"
            except DeviceUnavailable as exc:
                reason = str(exc)
            if self._up:
                # the controller lost sight of running belts: the PLC's watchdog holds them,
                # and the controller releases no work to the conveyor until it is back
                self._up = False
                self._metrics.conveyor_safe_state.labels(self._conveyor_id, "comms_lost").inc()
            await self._went_down(events, reason)
            delay = self._backoff.next_delay()
            await self._clock.sleep(delay * self._clock.time_scale)

    # --- one session ----------------------------------------------------------------------------

    async def _session(self, events: asyncio.Queue[DeviceEvent]) -> None:
        client = Client(
            self._endpoint, timeout=self._request_timeout, watchdog_intervall=self._watchdog
        )
        client.session_timeout = 30_000  # ms; the server drops an abandoned session soon
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        opened = False
        try:
            try:
                await secure_client(client, self._config.conveyor.opcua)
                await connect_client(client)
                opened = True
                model = await resolve(client, self._config)
                subscription = await self._subscribe(client, model)
                await self._read_levels(client, model)
                await self._recover(model)
            except ModelMismatch as exc:
                raise DeviceUnavailable(f"model mismatch: {exc}") from exc
            except TRANSPORT_ERRORS as exc:
                # a refusal here (credentials, certificate) leaves the conveyor out of reach
                # just as a dead network does: retried with backoff, not fatal to run()
                error = translate_error(exc, f"connect {self._endpoint}")
                raise DeviceUnavailable(str(error)) from exc
            self._live = _Live(client, model)
            self._up = True
            await self._came_up(events)
            await self._reconcile(model, events)
            name = f"conveyor[{self._conveyor_id}]"
            await until_first_failure(
                _SessionLost,
                self._consume(subscription, model, events),
                self._watch(lost),
                self._life_sign(model),
                names=(f"{name}.events", f"{name}.watchdog", f"{name}.life-sign"),
            )
        finally:
            self._live = None
            self._connected.set(0)
            if opened:
                await close_client(client, lost.is_set(), self._request_timeout, log)

    async def _watch(self, lost: asyncio.Event) -> None:
        await lost.wait()
        raise _SessionLost("connection lost")

    # --- availability -----------------------------------------------------------------------

    async def _came_up(self, events: asyncio.Queue[DeviceEvent]) -> None:
        self._backoff.reset()
        self._connected.set(1)
        self._outage.up()
        await self._announce(events, True, "connected")

    async def _went_down(self, events: asyncio.Queue[DeviceEvent], reason: str) -> None:
        self._outage.down(reason)
        await self._announce(events, False, reason)

    async def _announce(
        self, events: asyncio.Queue[DeviceEvent], available: bool, reason: str
    ) -> None:
        if self._announced is available:
            return
        self._announced = available
        await events.put(
            ConveyorAvailability(self._conveyor_id, available, reason, self._clock.utcnow())
        )

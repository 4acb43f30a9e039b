"""The sorter adapter: a conveyor loop with scanner and sorter, driven over OPC UA.

:class:`OpcUaSorter` implements :class:`devices.base.Sorter`. ``run`` owns the connection: it
connects, finds the model by browse paths, subscribes to scan and divert-completion events (large
queues, nothing sampled away) and to the PackML state, zone jams and chute levels, and puts
``ItemScanned``/``ItemDiverted``/``ConveyorAvailability`` values on the controller's queue. When
the connection drops it reconnects with jittered backoff, logging the outage once when it starts
and once when it ends. Once connected again it reads the divert journal for what it missed and
the conveyor's tracking table (``ConveyorTracking``), so the controller can reconcile its items.
asyncua types and exceptions never leave this package.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from asyncua import Client, ua
from asyncua.common.events import get_filter_from_event_type
from asyncua.common.subscription import (
    DataChangeEvent,
    OpcEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)

from controller.clock import Clock
from controller.config.model import LineConfig
from controller.metrics import Metrics
from devices.base import (
    ChuteSnapshot,
    ConveyorAvailability,
    ConveyorSnapshot,
    ConveyorTracking,
    DeviceEvent,
    ItemDiverted,
)
from devices.errors import CommandRejected, DeviceUnavailable, InvalidMessage
from devices.opcua.backoff import Backoff
from devices.opcua.browse import ModelMismatch, RemoteModel, resolve
from devices.opcua.security import secure_client
from devices.opcua.supervise import (
    close_client,
    connect_client,
    stop_if_cancelled,
    until_first_failure,
)
from devices.opcua.translate import (
    TRANSPORT_ERRORS,
    divert_from_event,
    journal_from_outputs,
    scan_from_event,
    tracking_from_outputs,
    translate_error,
)
from devices.outage import Outage

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 10_000  # per monitored item on the server
CLIENT_QUEUE_SIZE = 100_000  # notifications buffered in the client


class _SessionLost(Exception):
    """The current session ended (transport loss, server shutdown)."""


@dataclass(frozen=True)
class _Live:
    client: Client
    model: RemoteModel


class OpcUaSorter:
    """The conveyor and sorter of one line over OPC UA (security as ``conveyor.opcua`` says)."""

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
    ) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._conveyor_id = config.conveyor.id
        self._endpoint = endpoint or config.conveyor.opcua.endpoint
        self._publishing_ms = publishing_interval_ms
        self._request_timeout = request_timeout
        self._watchdog = watchdog_seconds
        self._backoff = backoff or Backoff()
        self._connected = metrics.opcua_connected.labels(conveyor=self._conveyor_id)
        self._live: _Live | None = None
        self._state = "Unknown"
        self._chutes = {
            c.id: ChuteSnapshot(c.id, full=False, enabled=False, count=0)
            for c in config.conveyor.sorter.chutes
        }
        self._outage = Outage(
            clock, log, "conveyor", {"conveyor": self._conveyor_id, "endpoint": self._endpoint}
        )
        self._announced: bool | None = None  # last availability put on the queue
        self._invalid_logged = False
        self._trip_seen = False  # the current watchdog hold is already counted
        self._jammed: set[str] = set()  # zones reporting a jam; each jam counted once
        self._last_sequence: int | None = None  # highest divert journal number handled
        self._up = False  # the current session came up (its loss is a comms-loss entry)
        self._no_tracking_logged = False
        self._divert_of_chute = {d.chute: d.id for d in config.conveyor.sorter.diverts}
        self._connected.set(0)

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def connected(self) -> bool:
        return self._live is not None

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
        """Send a PackML command (``Hold``, ``Unhold``, ``Stop``, ``Reset``, ``Start``, ...).

        Raises CommandRejected when the state machine refuses it, DeviceUnavailable when offline.
        """
        live = self._require_live()
        try:
            await live.model.conveyor.call_method(live.model.qn(name))
            state = await live.model.state.read_value()
        except TRANSPORT_ERRORS as exc:
            raise translate_error(exc, f"PackML {name}") from exc
        if isinstance(state, str):
            self._state = state

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

    def _require_live(self) -> _Live:
        live = self._live
        if live is None:
            raise DeviceUnavailable(f"conveyor {self._conveyor_id} is not connected")
        return live

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

    async def _recover(self, model: RemoteModel) -> None:
        """After (re)connecting, with the state just read: a unit the PLC held because this
        controller went silent (``WatchdogTripped``) is counted as a safe-state entry and,
        when ``conveyor.resume_after_comms_loss`` allows, resumed: the counter moves first
        (clearing the trip), then ``Unhold``. A unit held or stopped for any other reason is
        left for an operator."""
        tripped = bool(await model.watchdog_tripped.read_value())
        if not tripped:
            self._trip_seen = False
            return
        count = int(await model.watchdog.read_value() or 0)
        await model.watchdog.write_value(ua.Variant((count + 1) % 2**32, ua.VariantType.UInt32))
        self._state = str(await model.state.read_value())
        resume = self._config.conveyor.resume_after_comms_loss and self._state == "Held"
        if not self._trip_seen:
            self._trip_seen = True
            self._metrics.conveyor_safe_state.labels(self._conveyor_id, "controller_silent").inc()
            if not resume:
                log.warning(
                    "conveyor held by its watchdog; left for an operator",
                    extra={"conveyor": self._conveyor_id, "state": self._state},
                )
        if not resume:
            return
        await model.conveyor.call_method(model.qn("Unhold"))
        self._trip_seen = False
        self._state = str(await model.state.read_value())
        log.warning(
            "conveyor resumed after its watchdog held it (state read again)",
            extra={"conveyor": self._conveyor_id, "state": self._state},
        )

    async def _reconcile(self, model: RemoteModel, events: asyncio.Queue[DeviceEvent]) -> None:
        """Read back what happened while the controller was not listening: the divert journal
        after the last number handled (each entry becomes an ``ItemDiverted``, ``replayed``),
        then the conveyor's tracking table as one ``ConveyorTracking``. Divert events the
        subscription delivers for numbers already handled are dropped in :meth:`_on_event`."""
        if model.journal_method is None or model.tracking_method is None:
            if not self._no_tracking_logged:
                self._no_tracking_logged = True
                log.warning(
                    "conveyor offers no Tracking/Journal methods: items are not reconciled "
                    "after a reconnect",
                    extra={"conveyor": self._conveyor_id},
                )
            return
        since = self._last_sequence or 0
        try:
            journal = await model.sorter.call_method(
                model.journal_method.nodeid, ua.Variant(since, ua.VariantType.UInt32)
            )
            tracking = await model.sorter.call_method(model.tracking_method.nodeid)
            last, entries = journal_from_outputs(journal)
            items = tracking_from_outputs(tracking)
        except InvalidMessage as exc:
            log.warning(
                "conveyor tracking unreadable; items not reconciled",
                extra={"conveyor": self._conveyor_id, "why": str(exc)},
            )
            return
        except TRANSPORT_ERRORS as exc:
            raise DeviceUnavailable(str(translate_error(exc, "reconcile"))) from exc
        now = self._clock.utcnow()
        first_contact = self._last_sequence is None
        reset = self._last_sequence is not None and last < self._last_sequence
        if first_contact or reset:
            # first contact: nothing was missed; or the journal started again (the PLC lost
            # its retained data): what it held is gone, the tracking table tells what is left
            if reset:
                log.warning(
                    "conveyor divert journal started again; diverts in the gap are unknown",
                    extra={"conveyor": self._conveyor_id, "last": last},
                )
            self._last_sequence = last
        else:
            missed = [e for e in entries if e.sequence > since]
            if missed and missed[0].sequence > since + 1:
                log.warning(
                    "conveyor divert journal no longer holds every missed divert",
                    extra={"conveyor": self._conveyor_id, "from": since + 1},
                )
            for e in missed:
                await events.put(
                    ItemDiverted(
                        divert_id=self._divert_of_chute.get(e.chute_id, ""),
                        item_id=e.item_id,
                        chute_id=e.chute_id,
                        ok=e.ok,
                        at=now,
                        tote_id=e.tote_id or None,
                        sequence=e.sequence,
                        replayed=True,
                    )
                )
            self._last_sequence = max(last, since)
            if missed:
                self._metrics.conveyor_reconciled.labels(self._conveyor_id, "divert_replayed").inc(
                    len(missed)
                )
                log.info(
                    "conveyor diverts read back from the journal",
                    extra={"conveyor": self._conveyor_id, "count": len(missed)},
                )
        await events.put(
            ConveyorTracking(
                self._conveyor_id,
                items,
                now,
                journal_reset=reset,
                journal=tuple(entries) if first_contact else (),
            )
        )

    async def _life_sign(self, model: RemoteModel) -> None:
        """Write the watchdog counter every ``conveyor.watchdog.period`` wall seconds. The PLC
        holds the belts when it stops changing, so a stalled controller loop (or a lost
        session) never leaves them running blind. A hold that happened while the session
        stayed up (the loop stalled) is seen here once the loop runs again, and handled as
        after a reconnect (:meth:`_recover`)."""
        period = self._config.conveyor.watchdog.period
        count = int(await model.watchdog.read_value() or 0)
        while True:
            stop_if_cancelled()  # a write may have swallowed the request to stop (3.11)
            count = (count + 1) % 2**32
            try:
                if self._state != "Execute" and await model.watchdog_tripped.read_value():
                    await self._recover(model)
                    count = int(await model.watchdog.read_value() or 0)
                else:
                    await model.watchdog.write_value(ua.Variant(count, ua.VariantType.UInt32))
            except TRANSPORT_ERRORS as exc:
                raise _SessionLost(f"watchdog write failed: {exc}") from exc
            await asyncio.sleep(period)

    async def _subscribe(self, client: Client, model: RemoteModel) -> Subscription:
        sub = await client.create_subscription(
            self._publishing_ms,
            None,
            queue_maxsize=CLIENT_QUEUE_SIZE,
            overflow=OverflowPolicy.DISCONNECT,  # never drop a read or a divert silently
        )
        scan_filter = await get_filter_from_event_type([model.scan_event_type])
        divert_filter = await get_filter_from_event_type([model.divert_event_type])
        for node in model.scanners.values():
            await sub.subscribe_events(node, evfilter=scan_filter, queuesize=EVENT_QUEUE_SIZE)
        for node in model.diverts.values():
            await sub.subscribe_events(node, evfilter=divert_filter, queuesize=EVENT_QUEUE_SIZE)
        levels = [model.state, *model.jammed.values()]
        for chute in model.chutes.values():
            levels += [chute.full, chute.enabled, chute.count]
        await sub.subscribe_data_change(levels, queuesize=100, sampling_interval=0.0)
        return sub

    async def _read_levels(self, client: Client, model: RemoteModel) -> None:
        nodes = [model.state, *model.jammed.values()]
        for chute in model.chutes.values():
            nodes += [chute.full, chute.enabled, chute.count]
        values = await client.read_values(nodes)
        for node, value in zip(nodes, values, strict=True):
            self._on_level(model, node.nodeid, value)

    async def _watch(self, lost: asyncio.Event) -> None:
        await lost.wait()
        raise _SessionLost("connection lost")

    async def _consume(
        self, sub: Subscription, model: RemoteModel, events: asyncio.Queue[DeviceEvent]
    ) -> None:
        async for item in sub:
            if isinstance(item, OpcEvent):
                await self._on_event(model, item.event, events)
            elif isinstance(item, DataChangeEvent):
                self._on_level(model, item.node.nodeid, item.value)
            elif isinstance(item, StatusChangeEvent) and item.notification.Status.is_bad():
                raise _SessionLost(f"subscription status {item.notification.Status.name}")
        raise _SessionLost("subscription closed")

    async def _on_event(
        self, model: RemoteModel, event: object, events: asyncio.Queue[DeviceEvent]
    ) -> None:
        etype = getattr(event, "EventType", None)
        now = self._clock.utcnow()
        value: DeviceEvent
        try:
            if etype == model.scan_event_type.nodeid:
                kind = "scan"
                value = scan_from_event(event, self._config.conveyor.scanner.id, now)
            elif etype == model.divert_event_type.nodeid:
                kind = "divert"
                value = divert_from_event(event, now)
                if value.sequence is not None:
                    if self._last_sequence is not None and value.sequence <= self._last_sequence:
                        return  # already read back from the journal after a reconnect
                    self._last_sequence = value.sequence
            else:
                return
        except InvalidMessage as exc:
            self._metrics.opcua_events.labels(kind="invalid").inc()
            level = logging.DEBUG if self._invalid_logged else logging.WARNING
            self._invalid_logged = True
            log.log(level, "invalid OPC UA event dropped", extra={"why": str(exc)})
            return
        self._metrics.opcua_events.labels(kind=kind).inc()
        await events.put(value)

    def _on_level(self, model: RemoteModel, nodeid: ua.NodeId, value: object) -> None:
        if nodeid == model.state.nodeid:
            if isinstance(value, str):
                self._state = value
            return
        for zone_id, node in model.jammed.items():
            if nodeid == node.nodeid and isinstance(value, bool):
                self._on_jam(zone_id, value)
                return
        for chute in model.chutes.values():
            snap = self._chutes[chute.chute_id]
            if nodeid == chute.full.nodeid and isinstance(value, bool):
                self._chutes[chute.chute_id] = replace(snap, full=value)
            elif nodeid == chute.enabled.nodeid and isinstance(value, bool):
                self._chutes[chute.chute_id] = replace(snap, enabled=value)
            elif nodeid == chute.count.nodeid and isinstance(value, int):
                self._chutes[chute.chute_id] = replace(snap, count=value)

    def _on_jam(self, zone_id: str, jammed: bool) -> None:
        """A jam holds the zones upstream of it (the PLC does that); counted once per jam."""
        if jammed == (zone_id in self._jammed):
            return
        if jammed:
            self._jammed.add(zone_id)
            self._metrics.conveyor_safe_state.labels(self._conveyor_id, "jam").inc()
            log.warning(
                "conveyor zone jammed; the zones upstream of it are held",
                extra={"conveyor": self._conveyor_id, "zone": zone_id},
            )
        else:
            self._jammed.discard(zone_id)
            log.info("conveyor jam cleared", extra={"conveyor": self._conveyor_id, "zone": zone_id})
        self._metrics.conveyor_jammed.labels(self._conveyor_id, zone_id).set(1 if jammed else 0)

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

"""What the OPC UA sorter adapter hears from the conveyor: events and values, checked.

:class:`SorterEvents` subscribes to the scan and divert-completion events (large queues, nothing
sampled away: an overflow ends the session rather than dropping a read or a divert) and to the
PackML state (each OPC 30050 state machine's ``CurrentState/Id``), the zones' jams, belts and
photo-eyes and the chutes' levels, reads those values once on connecting,
and turns what arrives into ``ItemScanned``/``ItemDiverted`` values on the controller's queue
and into the adapter's view of the conveyor. A malformed event is counted and dropped (warned
about once); a divert already read back from the journal is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from asyncua import Client, Node, ua
from asyncua.common.events import get_filter_from_event_type
from asyncua.common.subscription import (
    DataChangeEvent,
    OpcEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)

from devices.base import DeviceEvent
from devices.errors import InvalidMessage
from devices.opcua.browse import RemoteModel
from devices.opcua.packml import Level
from devices.opcua.sorter.state import CLIENT_QUEUE_SIZE, EVENT_QUEUE_SIZE, SorterState
from devices.opcua.translate import divert_from_event, scan_from_event
from devices.supervisor import SessionLost
from kernel.metrics import SafeStateReason

log = logging.getLogger("devices.opcua.sorter")  # the sorter adapter logs under one name


class SorterEvents:
    """Takes the conveyor's events and values into the shared :class:`SorterState`; the
    subscription publishes every ``publishing_ms`` milliseconds."""

    def __init__(self, state: SorterState, publishing_ms: float) -> None:
        self._state = state
        self._publishing_ms = publishing_ms
        self._state_ids: dict[Level, ua.NodeId | None] = {}  # CurrentState/Id of each machine
        self._invalid_logged = False  # a malformed event was warned about already
        # each zone variable's node -> (zone id, field of ZoneSnapshot), for the model in use
        self._zone_fields: dict[ua.NodeId, tuple[str, str]] = {}
        self._zone_model: RemoteModel | None = None

    async def subscribe(self, client: Client, model: RemoteModel) -> Subscription:
        """Subscribe to the scans, the divert completions and the levels (one subscription)."""
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
        await sub.subscribe_data_change(_levels(model), queuesize=100, sampling_interval=0.0)
        return sub

    async def read_levels(self, client: Client, model: RemoteModel) -> None:
        """Read the PackML state, the jams and the chute levels once, on connecting."""
        nodes = _levels(model)
        values = await client.read_values(nodes)
        for node, value in zip(nodes, values, strict=True):
            self._on_level(model, node.nodeid, value)

    async def consume(
        self, sub: Subscription, model: RemoteModel, events: asyncio.Queue[DeviceEvent]
    ) -> None:
        """Take what the subscription delivers until it fails (SessionLost)."""
        async for item in sub:
            if isinstance(item, OpcEvent):
                await self._on_event(model, item.event, events)
            elif isinstance(item, DataChangeEvent):
                self._on_level(model, item.node.nodeid, item.value)
            elif isinstance(item, StatusChangeEvent) and item.notification.Status.is_bad():
                raise SessionLost(f"subscription status {item.notification.Status.name}")
        raise SessionLost("subscription closed")

    async def _on_event(
        self, model: RemoteModel, event: object, events: asyncio.Queue[DeviceEvent]
    ) -> None:
        etype = getattr(event, "EventType", None)
        now = self._state.clock.utcnow()
        value: DeviceEvent
        try:
            if etype == model.scan_event_type.nodeid:
                kind = "scan"
                value = scan_from_event(event, self._state.config.conveyor.scanner.id, now)
            elif etype == model.divert_event_type.nodeid:
                kind = "divert"
                value = divert_from_event(event, now)
                if value.sequence is not None:
                    if self._state.diverts.seen(value.sequence):
                        return  # already read back from the journal after a reconnect
                    self._state.diverts.mark(value.sequence)
            else:
                return
        except InvalidMessage as exc:
            self._state.metrics.opcua_events.labels(kind="invalid").inc()
            level = logging.DEBUG if self._invalid_logged else logging.WARNING
            self._invalid_logged = True
            log.log(level, "invalid OPC UA event dropped", extra={"why": str(exc)})
            return
        self._state.metrics.opcua_events.labels(kind=kind).inc()
        await events.put(value)

    def _on_level(self, model: RemoteModel, nodeid: ua.NodeId, value: object) -> None:
        zone_field = self._zone_field(model, nodeid)
        if zone_field is not None:
            self._on_zone(*zone_field, value)
            return
        for level, node in model.packml.state_ids.items():
            if nodeid == node.nodeid:  # None while that state machine is not active
                self._state_ids[level] = value if isinstance(value, ua.NodeId) else None
                self._state.packml_state = model.packml.state_name(self._state_ids)
                return
        for zone_id, node in model.jammed.items():
            if nodeid == node.nodeid and isinstance(value, bool):
                self._on_jam(zone_id, value)
                return
        for chute in model.chutes.values():
            snap = self._state.chutes[chute.chute_id]
            if nodeid == chute.full.nodeid and isinstance(value, bool):
                self._state.chutes[chute.chute_id] = replace(snap, full=value)
            elif nodeid == chute.enabled.nodeid and isinstance(value, bool):
                self._state.chutes[chute.chute_id] = replace(snap, enabled=value)
            elif nodeid == chute.count.nodeid and isinstance(value, int):
                self._state.chutes[chute.chute_id] = replace(snap, count=value)

    def _zone_field(self, model: RemoteModel, nodeid: ua.NodeId) -> tuple[str, str] | None:
        if self._zone_model is not model:  # a new session: its nodes
            self._zone_model = model
            self._zone_fields = {}
            for zone_id, zone in model.zone_view.items():
                for name, node in (
                    ("running", zone.running),
                    ("occupied", zone.occupied),
                    ("item_id", zone.item_id),
                ):
                    if node is not None:
                        self._zone_fields[node.nodeid] = (zone_id, name)
        return self._zone_fields.get(nodeid)

    def _on_zone(self, zone_id: str, name: str, value: object) -> None:
        """A zone's belt or photo-eye changed: kept for the line view (values of the wrong
        type are ignored, as for every level)."""
        snap = self._state.zones[zone_id]
        if name == "item_id" and (value is None or isinstance(value, str)):  # null: empty
            self._state.zones[zone_id] = replace(snap, item_id=value or None)
        elif name == "running" and isinstance(value, bool):
            self._state.zones[zone_id] = replace(snap, running=value)
        elif name == "occupied" and isinstance(value, bool):
            self._state.zones[zone_id] = replace(snap, occupied=value)

    def _on_jam(self, zone_id: str, jammed: bool) -> None:
        """A jam holds the zones upstream of it (the PLC does that); counted once per jam."""
        conveyor_id, metrics = self._state.conveyor_id, self._state.metrics
        if jammed == (zone_id in self._state.jammed):
            return
        if jammed:
            self._state.jammed.add(zone_id)
            metrics.conveyor_safe_state.labels(conveyor_id, SafeStateReason.JAM).inc()
            log.warning(
                "conveyor zone jammed; the zones upstream of it are held",
                extra={"conveyor": conveyor_id, "zone": zone_id},
            )
        else:
            self._state.jammed.discard(zone_id)
            log.info("conveyor jam cleared", extra={"conveyor": conveyor_id, "zone": zone_id})
        metrics.conveyor_jammed.labels(conveyor_id, zone_id).set(1 if jammed else 0)


def _levels(model: RemoteModel) -> list[Node]:
    """The values read on connecting and subscribed to: the PackML states, the zones' jams,
    belts and photo-eyes, the chutes' levels."""
    nodes = [*model.packml.state_ids.values(), *model.jammed.values()]
    for zone in model.zone_view.values():
        nodes += zone.nodes()
    for chute in model.chutes.values():
        nodes += [chute.full, chute.enabled, chute.count]
    return nodes

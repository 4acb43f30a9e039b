"""What the OPC UA cranes adapter hears from the cranes, live or read back from their journals.

:class:`CranesEvents` subscribes to every crane's completion events (large queues, nothing
sampled away: an overflow ends the session rather than dropping a completion) and to its state,
position, command, queue, fault and P&D input, reads those values once on connecting, and after
every (re)connect reads back each crane's journal after the last number handled (``replayed``
completions) and every rack's contents. Each completion reaches the controller's queue once as a
``CraneCommandFinished`` (an event for a number already read back is dropped); a P&D input that
changed becomes a ``TotesAtPdInput``. A malformed event or value is counted and dropped (each
kind warned about once).
"""

from __future__ import annotations

import asyncio
import logging

from asyncua import Client, ua
from asyncua.common.events import get_filter_from_event_type
from asyncua.common.subscription import (
    DataChangeEvent,
    OpcEvent,
    OverflowPolicy,
    StatusChangeEvent,
    Subscription,
)

from devices.base import CraneCommandFinished, CraneContents, DeviceEvent, TotesAtPdInput
from devices.errors import DeviceUnavailable, InvalidMessage
from devices.opcua.cranes.model import (
    Completion,
    RemoteCrane,
    RemoteCranes,
    completion_from_event,
    contents_from_outputs,
    journal_from_outputs,
    pd_input_from_value,
)
from devices.opcua.cranes.state import CLIENT_QUEUE_SIZE, EVENT_QUEUE_SIZE, CranesState
from devices.supervisor import SessionLost

log = logging.getLogger("devices.opcua.cranes")  # the cranes adapter logs under one name


class CranesEvents:
    """Takes the cranes' events and values into the shared :class:`CranesState` and reads back
    their journals; the subscription publishes every ``publishing_ms`` milliseconds."""

    def __init__(self, state: CranesState, publishing_ms: float) -> None:
        self._state = state
        self._publishing_ms = publishing_ms
        self._invalid_logged: set[str] = set()  # what was dropped already (warned once)
        # the last TotesAtPdInput list put on the queue per aisle (None: none yet, or unknown)
        self._pd_sent: dict[str, tuple[str, ...] | None] = {aisle: None for aisle in state.aisles}

    async def reconcile(self, model: RemoteCranes, events: asyncio.Queue[DeviceEvent]) -> None:
        """Read back what happened while not listening: each crane's journal after the last
        number handled (``replayed`` completions), then every rack's contents. Events the
        subscription delivers for numbers already handled are dropped as they arrive."""
        contents: dict[str, dict[str, str]] = {}
        for aisle, crane in model.cranes.items():
            since = self._state.last[aisle] or 0
            try:
                journal = await crane.node.call_method(
                    crane.methods["Journal"].nodeid, ua.Variant(since, ua.VariantType.UInt32)
                )
                last, entries = journal_from_outputs(journal)
                contents[aisle] = contents_from_outputs(
                    await crane.node.call_method(crane.methods["Contents"].nodeid)
                )
            except InvalidMessage as exc:
                raise DeviceUnavailable(f"{crane.crane_id}: unreadable journal: {exc}") from exc
            known = self._state.last[aisle]
            if known is None or last < known:
                if known is not None:
                    log.warning(
                        "crane journal started again; completions in the gap are unknown",
                        extra={"crane": crane.crane_id, "last": last},
                    )
                self._state.last[aisle] = last
                continue
            missed = [e for e in entries if e.sequence > since]
            if missed and missed[0].sequence > since + 1:
                log.warning(
                    "crane journal no longer holds every missed completion",
                    extra={"crane": crane.crane_id, "from": since + 1},
                )
            for e in missed:
                await self._finished(crane, e, events, replayed=True)
            self._state.last[aisle] = max(last, since)
            if missed:
                log.info(
                    "crane completions read back from the journal",
                    extra={"crane": crane.crane_id, "count": len(missed)},
                )
        await events.put(CraneContents(contents, self._state.clock.utcnow()))

    async def subscribe(self, client: Client, model: RemoteCranes) -> Subscription:
        """Subscribe to every crane's completions and variables (one subscription)."""
        sub = await client.create_subscription(
            self._publishing_ms,
            None,
            queue_maxsize=CLIENT_QUEUE_SIZE,
            overflow=OverflowPolicy.DISCONNECT,  # never drop a completion silently
        )
        evfilter = await get_filter_from_event_type([model.completed_event_type])
        levels = []
        for crane in model.cranes.values():
            await sub.subscribe_events(crane.node, evfilter=evfilter, queuesize=EVENT_QUEUE_SIZE)
            levels += list(crane.variables.values())
        await sub.subscribe_data_change(levels, queuesize=100, sampling_interval=0.0)
        return sub

    async def read_levels(self, client: Client, model: RemoteCranes) -> dict[str, tuple[str, ...]]:
        """Read every crane's variables into its view; returns each aisle's P&D input as read
        (aisles whose value is malformed are left out: dropped with a warning)."""
        pd_inputs: dict[str, tuple[str, ...]] = {}
        for crane in model.cranes.values():
            names = list(crane.variables)
            values = await client.read_values([crane.variables[n] for n in names])
            for name, value in zip(names, values, strict=True):
                if name != "PdInput":
                    self._on_level(crane.aisle, name, value)
                    continue
                self._pd_sent[crane.aisle] = None  # reported again after every (re)connect
                totes = self.pd_input(crane.aisle, value)
                if totes is not None:
                    pd_inputs[crane.aisle] = self._state.views[crane.aisle].pd_input = totes
        return pd_inputs

    async def consume(
        self, sub: Subscription, model: RemoteCranes, events: asyncio.Queue[DeviceEvent]
    ) -> None:
        """Take what the subscription delivers until it fails (SessionLost)."""
        by_node = {
            node.nodeid: (crane.aisle, name)
            for crane in model.cranes.values()
            for name, node in crane.variables.items()
        }
        by_crane = {crane.node.nodeid: crane for crane in model.cranes.values()}
        async for item in sub:
            if isinstance(item, OpcEvent):
                await self._on_event(model, by_crane, item.event, events)
            elif isinstance(item, DataChangeEvent):
                where = by_node.get(item.node.nodeid)
                if where is None:
                    continue
                aisle, name = where
                if name != "PdInput":
                    self._on_level(aisle, name, item.value)
                    continue
                totes = self.pd_input(aisle, item.value)
                if totes is not None:
                    await self.emit_pd_input(aisle, totes, events)
            elif isinstance(item, StatusChangeEvent) and item.notification.Status.is_bad():
                raise SessionLost(f"subscription status {item.notification.Status.name}")
        raise SessionLost("subscription closed")

    async def _on_event(
        self,
        model: RemoteCranes,
        by_crane: dict[ua.NodeId, RemoteCrane],
        event: object,
        events: asyncio.Queue[DeviceEvent],
    ) -> None:
        if getattr(event, "EventType", None) != model.completed_event_type.nodeid:
            return
        crane = by_crane.get(getattr(event, "SourceNode", None))
        try:
            if crane is None:
                raise InvalidMessage("completion from an unknown source node")
            completion = completion_from_event(event, self._state.clock.utcnow())
        except InvalidMessage as exc:
            self._drop_invalid("invalid OPC UA event dropped", exc, {})
            return
        last = self._state.last[crane.aisle]
        if last is not None and completion.sequence <= last:
            return  # already read back from the journal after a reconnect
        self._state.last[crane.aisle] = completion.sequence
        self._state.metrics.opcua_events.labels(kind="crane_completed").inc()
        await self._finished(crane, completion, events, replayed=False)

    async def _finished(
        self,
        crane: RemoteCrane,
        c: Completion,
        events: asyncio.Queue[DeviceEvent],
        *,
        replayed: bool,
    ) -> None:
        if c.ok:
            kind = "dual" if c.dual else f"single_{c.kind.lower()}"
            # a dual cycle is one cycle: counted once, with its retrieve half
            if not c.dual or c.kind == "Retrieve":
                self._state.metrics.asrs_cycles.labels(crane.aisle, kind).inc()
                if c.cycle_seconds > 0:
                    self._state.metrics.asrs_cycle_seconds.labels(crane.aisle, kind).observe(
                        c.cycle_seconds
                    )
        await events.put(
            CraneCommandFinished(
                crane=crane.crane_id,
                aisle=crane.aisle,
                command_id=c.command_id,
                kind="Store" if c.kind == "Store" else "Retrieve",
                tote=c.tote,
                location=c.location,
                ok=c.ok,
                reason=c.reason,
                sequence=c.sequence,
                replayed=replayed,
                at=c.at or self._state.clock.utcnow(),
                dual=c.dual,
                cycle_seconds=c.cycle_seconds,
            )
        )

    def pd_input(self, aisle: str, value: object) -> tuple[str, ...] | None:
        """``PdInput`` checked at the boundary; None (dropped, warned once) when malformed."""
        try:
            return pd_input_from_value(value)
        except InvalidMessage as exc:
            self._drop_invalid(
                "invalid P&D input dropped", exc, {"crane": self._state.aisles[aisle]}
            )
            return None

    async def emit_pd_input(
        self, aisle: str, totes: tuple[str, ...], events: asyncio.Queue[DeviceEvent]
    ) -> None:
        """One TotesAtPdInput, unless it repeats the last list reported for the aisle."""
        self._state.views[aisle].pd_input = totes
        if self._pd_sent[aisle] == totes:
            return
        self._pd_sent[aisle] = totes
        await events.put(
            TotesAtPdInput(aisle, self._state.aisles[aisle], totes, self._state.clock.utcnow())
        )

    def _drop_invalid(self, message: str, exc: InvalidMessage, extra: dict[str, str]) -> None:
        """Count a malformed event or value and drop it; each kind is warned about once."""
        self._state.metrics.opcua_events.labels(kind="invalid").inc()
        level = logging.DEBUG if message in self._invalid_logged else logging.WARNING
        self._invalid_logged.add(message)
        log.log(level, message, extra={**extra, "why": str(exc)})

    def _on_level(self, aisle: str, name: str, value: object) -> None:
        view = self._state.views[aisle]
        if name == "State" and isinstance(value, str):
            self._state.set_state(aisle, value)
            view.state = value
        elif name in ("PositionX", "PositionY") and isinstance(value, int | float):
            if name == "PositionX":
                view.x = float(value)
            else:
                view.y = float(value)
        elif name == "CurrentCommand" and isinstance(value, str):
            view.current_command = value
        elif name == "QueueLength" and isinstance(value, int):
            view.queue_length = value
        elif name == "Fault" and isinstance(value, str):
            if value and not view.fault:
                log.warning(
                    "crane fault", extra={"crane": self._state.aisles[aisle], "fault": value}
                )
            elif view.fault and not value:
                log.info("crane fault cleared", extra={"crane": self._state.aisles[aisle]})
            view.fault = value

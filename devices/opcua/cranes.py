"""The AS/RS adapter: every aisle's stacker crane, driven over OPC UA.

:class:`OpcUaCranes` implements :class:`devices.base.Cranes`. ``run`` owns the connection: it
connects to ``asrs.opcua``, finds each crane by browse paths, subscribes to the cranes'
completion events (large queues, nothing sampled away) and to their state, position, queue,
fault and P&D input variables, and puts ``CraneCommandFinished``/``CraneContents``/
``TotesAtPdInput``/``CranesAvailability`` values on the controller's queue. When the connection
drops it reconnects with jittered backoff, logging the outage once when it starts and once when
it ends. Once connected again it reads each crane's journal for the completions it missed
(``replayed``) and the racks' contents, then reports every aisle's P&D input as read on
connecting. asyncua types and exceptions never leave this package.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

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
    CraneCommandFinished,
    CraneContents,
    CranesAvailability,
    CraneSnapshot,
    DeviceEvent,
    TotesAtPdInput,
)
from devices.errors import DeviceUnavailable, InvalidMessage
from devices.opcua.backoff import Backoff
from devices.opcua.browse import ModelMismatch
from devices.opcua.crane_model import (
    Completion,
    RemoteCrane,
    RemoteCranes,
    completion_from_event,
    contents_from_outputs,
    journal_from_outputs,
    pd_input_from_value,
    resolve_cranes,
)
from devices.opcua.security import secure_client
from devices.opcua.supervise import (
    close_client,
    connect_client,
    stop_if_cancelled,
    until_first_failure,
)
from devices.opcua.translate import TRANSPORT_ERRORS, translate_error
from devices.outage import Outage

log = logging.getLogger(__name__)

EVENT_QUEUE_SIZE = 10_000
CLIENT_QUEUE_SIZE = 100_000
STATES = ("Idle", "Moving", "PickingUp", "Depositing", "Fault", "Unknown")


class _SessionLost(Exception):
    """The current session ended (transport loss, server shutdown)."""


@dataclass
class _CraneView:
    state: str = "Unknown"
    x: float | None = None
    y: float | None = None
    current_command: str = ""
    queue_length: int = 0
    fault: str = ""
    pd_input: tuple[str, ...] = ()


class OpcUaCranes:
    """The cranes of one line's AS/RS over OPC UA (``asrs.opcua``).

    ``last_sequences`` (aisle -> journal number) are the highest completions the controller has
    already handled, e.g. kept in its store across a restart: the first connection then replays
    what came after. Without them the first connection replays nothing.
    """

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        endpoint: str | None = None,
        *,
        last_sequences: Mapping[str, int] | None = None,
        publishing_interval_ms: float = 20.0,
        request_timeout: float = 4.0,
        watchdog_seconds: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._endpoint = endpoint or config.asrs.opcua.endpoint
        self._publishing_ms = publishing_interval_ms
        self._request_timeout = request_timeout
        self._watchdog = watchdog_seconds
        self._backoff = backoff or Backoff()
        self._aisles = {a.id: a.crane.id for a in config.asrs.aisles}
        self._views = {aisle: _CraneView() for aisle in self._aisles}
        self._last: dict[str, int | None] = {aisle: None for aisle in self._aisles}
        for aisle, seq in (last_sequences or {}).items():
            if aisle in self._last:
                self._last[aisle] = seq
        self._live: RemoteCranes | None = None
        self._client: Client | None = None
        self._outage = Outage(clock, log, "AS/RS", {"endpoint": self._endpoint})
        self._announced: bool | None = None
        self._invalid_logged: set[str] = set()  # what was dropped already (warned once)
        # the last TotesAtPdInput list put on the queue per aisle (None: none yet, or unknown)
        self._pd_sent: dict[str, tuple[str, ...] | None] = {aisle: None for aisle in self._aisles}
        self._connected = metrics.asrs_opcua_connected
        self._connected.set(0)
        for aisle in self._aisles:
            self._set_state(aisle, "Unknown")

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def connected(self) -> bool:
        return self._live is not None

    def resume_from(self, last_sequences: Mapping[str, int]) -> None:
        """Before :meth:`run`: the highest journal numbers the controller has handled, kept in
        its database, so completions missed while it was down are read back on connecting."""
        for aisle, seq in last_sequences.items():
            if aisle in self._last:
                self._last[aisle] = seq

    def last_sequence(self, aisle: str) -> int | None:
        """Highest journal number handled for the aisle's crane (to keep across restarts)."""
        return self._last.get(aisle)

    # --- devices.base.Cranes ------------------------------------------------------------------

    def snapshot(self) -> dict[str, CraneSnapshot]:
        up = self.connected
        return {
            aisle: CraneSnapshot(
                crane=self._aisles[aisle],
                aisle=aisle,
                connected=up,
                state=v.state if up else "Unknown",
                x=v.x if up else None,
                y=v.y if up else None,
                current_command=v.current_command if up else "",
                queue_length=v.queue_length if up else 0,
                fault=v.fault if up else "",
                pd_input=v.pd_input if up else (),
            )
            for aisle, v in self._views.items()
        }

    async def store(self, aisle: str, command_id: str, tote: str, location: str) -> None:
        await self._call(aisle, "Store", command_id, tote, location)

    async def retrieve(self, aisle: str, command_id: str, tote: str, location: str) -> None:
        await self._call(aisle, "Retrieve", command_id, tote, location)

    async def dual(
        self,
        aisle: str,
        command_id: str,
        store_tote: str,
        store_location: str,
        retrieve_tote: str,
        retrieve_location: str,
    ) -> None:
        await self._call(
            aisle,
            "DualCommand",
            command_id,
            store_tote,
            store_location,
            retrieve_tote,
            retrieve_location,
        )

    async def clear_fault(self, aisle: str) -> None:
        await self._call(aisle, "ClearFault")

    async def _call(self, aisle: str, method: str, *args: str) -> None:
        """Call a crane method; CommandRejected names the status code the crane answered."""
        live = self._live
        if live is None:
            raise DeviceUnavailable("AS/RS cranes are not connected")
        crane = live.cranes.get(aisle)
        if crane is None:
            raise DeviceUnavailable(f"no crane for aisle {aisle!r}")
        variants = [ua.Variant(a, ua.VariantType.String) for a in args]
        try:
            await crane.node.call_method(crane.methods[method].nodeid, *variants)
        except TRANSPORT_ERRORS as exc:
            raise translate_error(exc, f"{crane.crane_id}.{method}({', '.join(args)})") from exc

    async def run(self, events: asyncio.Queue[DeviceEvent]) -> None:
        """Keep a session to the AS/RS until cancelled, reconnecting with backoff."""
        while True:
            stop_if_cancelled()
            try:
                await self._session(events)
                reason = "connection lost"
            except DeviceUnavailable as exc:
                reason = str(exc)
            await self._went_down(events, reason)
            delay = self._backoff.next_delay()
            await self._clock.sleep(delay * self._clock.time_scale)

    # --- one session --------------------------------------------------------------------------

    async def _session(self, events: asyncio.Queue[DeviceEvent]) -> None:
        client = Client(
            self._endpoint, timeout=self._request_timeout, watchdog_intervall=self._watchdog
        )
        client.session_timeout = 30_000
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        opened = False
        try:
            try:
                await secure_client(client, self._config.asrs.opcua)
                await connect_client(client)
                opened = True
                model = await resolve_cranes(client, self._config)
                subscription = await self._subscribe(client, model)
                pd_inputs = await self._read_levels(client, model)
                self._live = model
                await self._came_up(events)
                await self._reconcile(model, events)
                for aisle, totes in pd_inputs.items():
                    await self._emit_pd_input(aisle, totes, events)
            except ModelMismatch as exc:
                raise DeviceUnavailable(f"model mismatch: {exc}") from exc
            except TRANSPORT_ERRORS as exc:
                error = translate_error(exc, f"connect {self._endpoint}")
                raise DeviceUnavailable(str(error)) from exc
            await until_first_failure(
                _SessionLost,
                self._consume(subscription, model, events),
                self._watch(lost),
                names=("asrs.events", "asrs.watch"),
            )
        finally:
            self._live = None
            self._connected.set(0)
            for aisle in self._aisles:
                self._set_state(aisle, "Unknown")
            if opened:
                await close_client(client, lost.is_set(), self._request_timeout, log)

    async def _reconcile(self, model: RemoteCranes, events: asyncio.Queue[DeviceEvent]) -> None:
        """Read back what happened while not listening: each crane's journal after the last
        number handled (``replayed`` completions), then every rack's contents. Events the
        subscription delivers for numbers already handled are dropped in :meth:`_on_event`."""
        contents: dict[str, dict[str, str]] = {}
        for aisle, crane in model.cranes.items():
            since = self._last[aisle] or 0
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
            known = self._last[aisle]
            if known is None or last < known:
                if known is not None:
                    log.warning(
                        "crane journal started again; completions in the gap are unknown",
                        extra={"crane": crane.crane_id, "last": last},
                    )
                self._last[aisle] = last
                continue
            missed = [e for e in entries if e.sequence > since]
            if missed and missed[0].sequence > since + 1:
                log.warning(
                    "crane journal no longer holds every missed completion",
                    extra={"crane": crane.crane_id, "from": since + 1},
                )
            for e in missed:
                await self._finished(crane, e, events, replayed=True)
            self._last[aisle] = max(last, since)
            if missed:
                log.info(
                    "crane completions read back from the journal",
                    extra={"crane": crane.crane_id, "count": len(missed)},
                )
        await events.put(CraneContents(contents, self._clock.utcnow()))

    async def _subscribe(self, client: Client, model: RemoteCranes) -> Subscription:
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

    async def _read_levels(self, client: Client, model: RemoteCranes) -> dict[str, tuple[str, ...]]:
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
                totes = self._pd_input(crane.aisle, value)
                if totes is not None:
                    pd_inputs[crane.aisle] = self._views[crane.aisle].pd_input = totes
        return pd_inputs

    async def _watch(self, lost: asyncio.Event) -> None:
        await lost.wait()
        raise _SessionLost("connection lost")

    async def _consume(
        self, sub: Subscription, model: RemoteCranes, events: asyncio.Queue[DeviceEvent]
    ) -> None:
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
                totes = self._pd_input(aisle, item.value)
                if totes is not None:
                    await self._emit_pd_input(aisle, totes, events)
            elif isinstance(item, StatusChangeEvent) and item.notification.Status.is_bad():
                raise _SessionLost(f"subscription status {item.notification.Status.name}")
        raise _SessionLost("subscription closed")

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
            completion = completion_from_event(event, self._clock.utcnow())
        except InvalidMessage as exc:
            self._drop_invalid("invalid OPC UA event dropped", exc, {})
            return
        last = self._last[crane.aisle]
        if last is not None and completion.sequence <= last:
            return  # already read back from the journal after a reconnect
        self._last[crane.aisle] = completion.sequence
        self._metrics.opcua_events.labels(kind="crane_completed").inc()
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
                self._metrics.asrs_cycles.labels(crane.aisle, kind).inc()
                if c.cycle_seconds > 0:
                    self._metrics.asrs_cycle_seconds.labels(crane.aisle, kind).observe(
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
                at=c.at or self._clock.utcnow(),
                dual=c.dual,
                cycle_seconds=c.cycle_seconds,
            )
        )

    def _pd_input(self, aisle: str, value: object) -> tuple[str, ...] | None:
        """``PdInput`` checked at the boundary; None (dropped, warned once) when malformed."""
        try:
            return pd_input_from_value(value)
        except InvalidMessage as exc:
            self._drop_invalid("invalid P&D input dropped", exc, {"crane": self._aisles[aisle]})
            return None

    async def _emit_pd_input(
        self, aisle: str, totes: tuple[str, ...], events: asyncio.Queue[DeviceEvent]
    ) -> None:
        """One TotesAtPdInput, unless it repeats the last list reported for the aisle."""
        self._views[aisle].pd_input = totes
        if self._pd_sent[aisle] == totes:
            return
        self._pd_sent[aisle] = totes
        await events.put(TotesAtPdInput(aisle, self._aisles[aisle], totes, self._clock.utcnow()))

    def _drop_invalid(self, message: str, exc: InvalidMessage, extra: dict[str, str]) -> None:
        """Count a malformed event or value and drop it; each kind is warned about once."""
        self._metrics.opcua_events.labels(kind="invalid").inc()
        level = logging.DEBUG if message in self._invalid_logged else logging.WARNING
        self._invalid_logged.add(message)
        log.log(level, message, extra={**extra, "why": str(exc)})

    def _on_level(self, aisle: str, name: str, value: object) -> None:
        view = self._views[aisle]
        if name == "State" and isinstance(value, str):
            self._set_state(aisle, value)
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
                log.warning("crane fault", extra={"crane": self._aisles[aisle], "fault": value})
            elif view.fault and not value:
                log.info("crane fault cleared", extra={"crane": self._aisles[aisle]})
            view.fault = value

    def _set_state(self, aisle: str, state: str) -> None:
        gauge = self._metrics.asrs_crane_state
        for s in STATES:
            gauge.labels(aisle, s).set(1 if s == state else 0)

    # --- availability -------------------------------------------------------------------------

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
        await events.put(CranesAvailability(available, reason, self._clock.utcnow()))

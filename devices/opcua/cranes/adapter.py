"""The AS/RS adapter: every aisle's stacker crane, driven over OPC UA.

:class:`OpcUaCranes` implements :class:`devices.base.Cranes`. ``run`` owns the connection: it
connects to ``asrs.opcua``, finds each crane by browse paths, subscribes to the cranes'
completion events (large queues, nothing sampled away) and to their state, position, queue,
fault and P&D input variables, and puts ``CraneCommandFinished``/``CraneContents``/
``TotesAtPdInput``/``CranesAvailability`` values on the controller's queue. When the connection
drops it reconnects with jittered backoff, logging the outage once when it starts and once when
it ends (:class:`~devices.supervisor.DeviceSupervisor`). Once connected again it reads each
crane's journal for the completions it missed (``replayed``) and the racks' contents, then
reports every aisle's P&D input as read on connecting. asyncua types and exceptions never leave
this package.

The adapter is a facade over collaborators sharing one
:class:`~devices.opcua.cranes.state.CranesState`: it runs the sessions and the commands,
:class:`~devices.opcua.cranes.events.CranesEvents` takes the cranes' events and values and
reads back their journals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial

from asyncua import Client, ua

from devices.base import CranesAvailability, CraneSnapshot, DeviceEvent
from devices.errors import DeviceUnavailable
from devices.opcua.browse import ModelMismatch
from devices.opcua.connection import close_client, connect_client, watch_connection
from devices.opcua.cranes.events import CranesEvents
from devices.opcua.cranes.model import resolve_cranes
from devices.opcua.cranes.state import CranesState
from devices.opcua.security import secure_client
from devices.opcua.translate import TRANSPORT_ERRORS, translate_error
from devices.outage import Outage
from devices.supervisor import DeviceSupervisor, SessionLost, until_first_failure
from kernel.backoff import Backoff
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

log = logging.getLogger("devices.opcua.cranes")  # the cranes adapter logs under one name


class OpcUaCranes:
    """The cranes of one line's AS/RS over OPC UA (``asrs.opcua``).

    ``last_sequences`` (aisle -> journal number) are the highest completions the controller has
    already handled, e.g. kept in its store across a restart: the first connection then replays
    what came after. Without them the first connection replays nothing. ``endpoint`` defaults
    to ``asrs.opcua.endpoint``; ``backoff`` spaces the reconnects (wall seconds; by default from
    0.5 s doubling up to 15 s).
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
        fence: Fence | None = None,
    ) -> None:
        endpoint = endpoint or config.asrs.opcua.endpoint
        self._state = CranesState(config, clock, metrics, endpoint)
        if fence is not None:
            self._state.fence = fence
        self.resume_from(last_sequences or {})
        self._incoming = CranesEvents(self._state, publishing_interval_ms)
        outage = Outage(clock, log, "AS/RS", {"endpoint": endpoint})
        self._supervisor = DeviceSupervisor(clock, backoff or Backoff(0.5, 15.0), outage)
        self._request_timeout = request_timeout
        self._watchdog = watchdog_seconds
        self._connected = metrics.asrs_opcua_connected
        self._connected.set(0)

    @property
    def endpoint(self) -> str:
        return self._state.endpoint

    @property
    def connected(self) -> bool:
        return self._state.connected

    def resume_from(self, last_sequences: Mapping[str, int]) -> None:
        """Before :meth:`run`: the highest journal numbers the controller has handled, kept in
        its database, so completions missed while it was down are read back on connecting."""
        last = self._state.last
        for aisle, seq in last_sequences.items():
            if aisle in last:
                last[aisle] = seq

    def last_sequence(self, aisle: str) -> int | None:
        """Highest journal number handled for the aisle's crane (to keep across restarts)."""
        return self._state.last.get(aisle)

    # --- devices.base.Cranes ------------------------------------------------------------------

    def snapshot(self) -> dict[str, CraneSnapshot]:
        up = self.connected
        return {
            aisle: CraneSnapshot(
                crane=self._state.aisles[aisle],
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
            for aisle, v in self._state.views.items()
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
        """Call a crane method; CommandRejected names the status code the crane answered,
        DeviceUnavailable a missing session or a fence that refuses commands (a lost lease)."""
        refusal = self._state.fence.refusal()
        if refusal is not None:
            raise DeviceUnavailable(f"crane {aisle}.{method} not called: {refusal}")
        live = self._state.live
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
        await self._supervisor.run(partial(self._session, events), partial(self._announce, events))

    # --- one session --------------------------------------------------------------------------

    async def _session(self, events: asyncio.Queue[DeviceEvent]) -> None:
        state, incoming = self._state, self._incoming
        client = Client(
            state.endpoint, timeout=self._request_timeout, watchdog_intervall=self._watchdog
        )
        client.session_timeout = 30_000
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = on_lost
        opened = False
        try:
            try:
                await secure_client(client, state.config.asrs.opcua)
                await connect_client(client)
                opened = True
                model = await resolve_cranes(client, state.config)
                subscription = await incoming.subscribe(client, model)
                pd_inputs = await incoming.read_levels(client, model)
                state.live = model
                self._connected.set(1)
                await self._supervisor.came_up()
                await incoming.reconcile(model, events)
                for aisle, totes in pd_inputs.items():
                    await incoming.emit_pd_input(aisle, totes, events)
            except ModelMismatch as exc:
                raise DeviceUnavailable(f"model mismatch: {exc}") from exc
            except TRANSPORT_ERRORS as exc:
                error = translate_error(exc, f"connect {state.endpoint}")
                raise DeviceUnavailable(str(error)) from exc
            await until_first_failure(
                SessionLost,
                incoming.consume(subscription, model, events),
                watch_connection(lost),
                names=("asrs.events", "asrs.watch"),
            )
        finally:
            state.live = None
            self._connected.set(0)
            for aisle in state.aisles:
                state.set_state(aisle, "Unknown")
            if opened:
                await close_client(client, lost.is_set(), self._request_timeout, log)

    # --- availability -------------------------------------------------------------------------

    async def _announce(
        self, events: asyncio.Queue[DeviceEvent], available: bool, reason: str
    ) -> None:
        """The supervisor's word that availability changed, as a CranesAvailability."""
        await events.put(CranesAvailability(available, reason, self._state.clock.utcnow()))

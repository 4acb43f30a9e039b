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

The adapter is put together from one module per concept: this module has the commands, the
sessions and the availability; :mod:`devices.opcua.cranes_events` takes the cranes' events and
values and reads back their journals; :mod:`devices.opcua.cranes_state` holds the state they
share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from asyncua import Client, ua

from devices.base import CranesAvailability, CraneSnapshot, DeviceEvent
from devices.errors import DeviceUnavailable
from devices.opcua.browse import ModelMismatch
from devices.opcua.crane_model import resolve_cranes
from devices.opcua.cranes_events import CranesEvents
from devices.opcua.cranes_state import _SessionLost
from devices.opcua.security import secure_client
from devices.opcua.supervise import (
    close_client,
    connect_client,
    stop_if_cancelled,
    until_first_failure,
)
from devices.opcua.translate import TRANSPORT_ERRORS, translate_error

log = logging.getLogger(__name__)


class OpcUaCranes(CranesEvents):
    """The cranes of one line's AS/RS over OPC UA (``asrs.opcua``).

    ``last_sequences`` (aisle -> journal number) are the highest completions the controller has
    already handled, e.g. kept in its store across a restart: the first connection then replays
    what came after. Without them the first connection replays nothing.

    The constructor is :class:`~devices.opcua.cranes_state.CranesState`'s.
    """

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

    async def _watch(self, lost: asyncio.Event) -> None:
        await lost.wait()
        raise _SessionLost("connection lost")

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

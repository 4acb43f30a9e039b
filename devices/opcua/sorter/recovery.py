"""How the OPC UA sorter adapter catches up with the conveyor and keeps its belts safe.

After every (re)connect :class:`SorterRecovery` resumes a unit its PLC held because the
controller went silent (when ``conveyor.resume_after_comms_loss`` allows) and reads back what
happened while nobody listened: the divert journal after the last number handled and the
conveyor's tracking table (``ConveyorTracking``), so the controller can reconcile its items.
While a session lasts it writes the watchdog counter the PLC watches (the life sign).
"""

from __future__ import annotations

import asyncio
import logging

from asyncua import ua

from devices.base import ConveyorTracking, DeviceEvent, ItemDiverted
from devices.errors import DeviceUnavailable, InvalidMessage
from devices.opcua.browse import RemoteModel
from devices.opcua.sorter.state import SorterState
from devices.opcua.translate import (
    TRANSPORT_ERRORS,
    journal_from_outputs,
    tracking_from_outputs,
    translate_error,
)
from devices.supervisor import SessionLost, stop_if_cancelled
from kernel.metrics import SafeStateReason

log = logging.getLogger("devices.opcua.sorter")  # the sorter adapter logs under one name


class SorterRecovery:
    """Recovers after a reconnect or a watchdog hold and writes the life sign, on the shared
    :class:`SorterState`."""

    def __init__(self, state: SorterState) -> None:
        self._state = state
        self._trip_seen = False  # the current watchdog hold is already counted
        self._no_tracking_logged = False
        self._divert_of_chute = {d.chute: d.id for d in state.config.conveyor.sorter.diverts}

    async def recover(self, model: RemoteModel) -> None:
        """After (re)connecting, with the state just read: a unit the PLC held because this
        controller went silent (``WatchdogTripped``) is counted as a safe-state entry and,
        when ``conveyor.resume_after_comms_loss`` allows, resumed: the counter moves first
        (clearing the trip), then ``Unhold``. A unit held or stopped for any other reason is
        left for an operator."""
        state = self._state
        tripped = bool(await model.watchdog_tripped.read_value())
        if not tripped:
            self._trip_seen = False
            return
        count = int(await model.watchdog.read_value() or 0)
        await model.watchdog.write_value(ua.Variant((count + 1) % 2**32, ua.VariantType.UInt32))
        state.packml_state = await model.packml.read_state()
        resume = state.config.conveyor.resume_after_comms_loss and state.packml_state == "Held"
        if not self._trip_seen:
            self._trip_seen = True
            state.metrics.conveyor_safe_state.labels(
                state.conveyor_id, SafeStateReason.CONTROLLER_SILENT
            ).inc()
            if not resume:
                log.warning(
                    "conveyor held by its watchdog; left for an operator",
                    extra={"conveyor": state.conveyor_id, "state": state.packml_state},
                )
        if not resume:
            return
        target = model.packml.method_for("Unhold", state.packml_state)
        if target is None:
            log.warning(
                "conveyor offers no PackML Unhold: left held for an operator",
                extra={"conveyor": state.conveyor_id},
            )
            return
        machine, method = target
        refusal = state.fence.refusal()
        if refusal is not None:
            log.warning(
                "conveyor left held by its watchdog: the Unhold is not sent",
                extra={"conveyor": state.conveyor_id, "reason": refusal},
            )
            return
        await machine.call_method(method.nodeid)
        self._trip_seen = False
        state.packml_state = await model.packml.read_state()
        log.warning(
            "conveyor resumed after its watchdog held it (state read again)",
            extra={"conveyor": state.conveyor_id, "state": state.packml_state},
        )

    async def reconcile(self, model: RemoteModel, events: asyncio.Queue[DeviceEvent]) -> None:
        """Read back what happened while the controller was not listening: the divert journal
        after the last number handled (each entry becomes an ``ItemDiverted``, ``replayed``),
        then the conveyor's tracking table as one ``ConveyorTracking``. Divert events the
        subscription delivers for numbers already handled are dropped as they arrive
        (:class:`~devices.opcua.sorter.events.SorterEvents`)."""
        if model.journal_method is None or model.tracking_method is None:
            if not self._no_tracking_logged:
                self._no_tracking_logged = True
                log.warning(
                    "conveyor offers no Tracking/Journal methods: items are not reconciled "
                    "after a reconnect",
                    extra={"conveyor": self._state.conveyor_id},
                )
            return
        handled = self._state.diverts
        since = handled.through or 0
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
                extra={"conveyor": self._state.conveyor_id, "why": str(exc)},
            )
            return
        except TRANSPORT_ERRORS as exc:
            raise DeviceUnavailable(str(translate_error(exc, "reconcile"))) from exc
        now = self._state.clock.utcnow()
        first_contact = handled.through is None
        highest = handled.highest
        reset = not first_contact and highest is not None and last < highest
        if first_contact:
            # nothing was missed: what the journal holds was handled by an earlier run
            handled.handled_through(last)
        elif reset:
            # the journal started again (the PLC lost its retained data): what it held is
            # gone, the tracking table tells what is left
            log.warning(
                "conveyor divert journal started again; diverts in the gap are unknown",
                extra={"conveyor": self._state.conveyor_id, "last": last},
            )
            handled.restart(last)
        else:
            after = [e for e in entries if e.sequence > since]
            if after and after[0].sequence > since + 1:
                log.warning(
                    "conveyor divert journal no longer holds every missed divert",
                    extra={"conveyor": self._state.conveyor_id, "from": since + 1},
                )
            missed = [e for e in after if not handled.seen(e.sequence)]
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
            handled.handled_through(max(last, since))
            if missed:
                self._state.metrics.conveyor_reconciled.labels(
                    self._state.conveyor_id, "divert_replayed"
                ).inc(len(missed))
                log.info(
                    "conveyor diverts read back from the journal",
                    extra={"conveyor": self._state.conveyor_id, "count": len(missed)},
                )
        await events.put(
            ConveyorTracking(
                self._state.conveyor_id,
                items,
                now,
                journal_reset=reset,
                journal=tuple(entries) if first_contact else (),
            )
        )

    async def life_sign(self, model: RemoteModel) -> None:
        """Write the watchdog counter every ``conveyor.watchdog.period`` wall seconds. The PLC
        holds the belts when it stops changing, so a stalled controller loop (or a lost
        session) never leaves them running blind. A hold that happened while the session
        stayed up (the loop stalled) is seen here once the loop runs again, and handled as
        after a reconnect (:meth:`recover`)."""
        period = self._state.config.conveyor.watchdog.period
        count = int(await model.watchdog.read_value() or 0)
        while True:
            stop_if_cancelled()  # a write may have swallowed the request to stop (3.11)
            count = (count + 1) % 2**32
            try:
                executing = self._state.packml_state == "Execute"
                if not executing and await model.watchdog_tripped.read_value():
                    await self.recover(model)
                    count = int(await model.watchdog.read_value() or 0)
                else:
                    await model.watchdog.write_value(ua.Variant(count, ua.VariantType.UInt32))
            except TRANSPORT_ERRORS as exc:
                raise SessionLost(f"watchdog write failed: {exc}") from exc
            await asyncio.sleep(period)

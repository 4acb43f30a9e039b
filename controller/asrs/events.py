"""The cranes' and the infeed's events, as they change the AS/RS transports and the inventory.

A finished transport moves the tote in the inventory with the command id as its reference (a
completion replayed from the crane's journal changes nothing the second time) and a retrieved
tote is announced to ``on_retrieved``; a failed one is tried again or given up. The racks'
contents, read after every reconnect, are reconciled with the inventory and recover the
transports lost to a power loss: a retrieve whose tote is still at its location is sent again
under a new id, a tote that was on the crane is back at the P&D input and is stored at its
location first, a store whose tote reached its location is confirmed there. Totes reported at a
P&D input without a store on its way are stored; the cranes' availability holds or resumes the
planning.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from controller.asrs.commands import (
    MAX_ATTEMPTS,
    POWER_LOSS,
    RELOCATE_REASONS,
    AsrsRequestError,
    call_hook,
)
from controller.asrs.locations import RackLocations
from controller.asrs.requests import TransportRequests
from controller.asrs.state import AsrsState
from controller.store.asrs import AsrsRequest, CommandState, RequestKind, RequestState
from controller.store.inventory import InventoryError
from devices.base import (
    CraneCommandFinished,
    CraneContents,
    CranesAvailability,
    DeviceEvent,
    TotesAtPdInput,
)

log = logging.getLogger("controller.asrs.flows")  # the AS/RS flows log under one name


class CraneEvents:
    """Takes the cranes' and the infeed's events."""

    def __init__(
        self, state: AsrsState, requests: TransportRequests, locations: RackLocations
    ) -> None:
        self.state = state
        self.requests = requests
        self.locations = locations

    # --- events ---------------------------------------------------------------------------

    async def handle(self, event: DeviceEvent) -> None:
        """Take one of the cranes' events (others are ignored)."""
        state = self.state
        state.require_open()
        if isinstance(event, CraneCommandFinished):
            await self._finished(event)
        elif isinstance(event, CraneContents):
            await self._contents(event)
        elif isinstance(event, TotesAtPdInput):
            await self._at_pd_input(event)
        elif isinstance(event, CranesAvailability):
            if event.available and not state.available:
                log.info("AS/RS commands resume: cranes reachable")
            state.available = event.available
            if event.available:
                state.fault_hold.clear()
            state.changed()

    async def _at_pd_input(self, e: TotesAtPdInput) -> None:
        """The infeed reports the totes at an aisle's P&D input: each one without a store on
        its way (a tote sent back from a station, one put there by hand) is stored."""
        state = self.state
        if e.aisle not in state.aisles:
            return
        refused = state.refused_infeed.setdefault(e.aisle, set())
        refused &= set(e.totes)
        for tote in e.totes:
            if any(r.tote == tote and r.kind is RequestKind.STORE for r in state.requests.values()):
                continue
            try:
                await self.requests.tote_at_pd(tote, e.aisle)
            except AsrsRequestError as exc:
                if tote not in refused:
                    log.warning(
                        "tote at the P&D input not stored",
                        extra={"tote": tote, "aisle": e.aisle, "why": str(exc)},
                    )
                refused.add(tote)

    async def _finished(self, e: CraneCommandFinished) -> None:
        state = self.state
        retrieved: AsrsRequest | None = None
        changed: list[AsrsRequest] = []
        async with state.lock:
            found = state.commands.get(e.command_id)
            store_half = e.kind == "Store"
            rid = None
            if found is not None:
                rid = found.store_request if store_half else found.retrieve_request
                done = found.store_result if store_half else found.retrieve_result
                if done:
                    rid = None  # this half was handled already
            if found is None or rid is None:
                await state.save(sequences={e.aisle: e.sequence})
                log.debug(
                    "crane completion of no open command",
                    extra={"command": e.command_id, "sequence": e.sequence},
                )
                return
            cmd = found
            req = state.requests[rid]
            if e.ok:
                await self._confirm(req, cmd.command_id, e.aisle)
                req = state.touch(req, state=RequestState.DONE, reason="")
                if not store_half:
                    retrieved = req
                    if req.sku:
                        state.turnover[req.sku] = state.turnover.get(req.sku, 0.0) + 1
            else:
                req = await self._after_failure(req, e.reason)
            changed.append(req)
            result = "ok" if e.ok else "failed"
            cmd = state.touch(cmd, **{"store_result" if store_half else "retrieve_result": result})
            if cmd.halves_open == 0:
                ok = cmd.store_result != "failed" and cmd.retrieve_result != "failed"
                reason = "" if ok else e.reason or cmd.reason
                cmd = state.touch(
                    cmd, state=CommandState.DONE if ok else CommandState.FAILED, reason=reason
                )
                state.metrics.asrs_commands.labels(cmd.kind.value, "done" if ok else "failed").inc()
            await state.save(changed, [cmd], {e.aisle: e.sequence})
            if not e.ok:
                log.warning(
                    "AS/RS transport failed",
                    extra={"command": e.command_id, "kind": e.kind, "why": e.reason},
                )
        state.gauges()
        state.changed()
        if retrieved is not None:
            await call_hook(
                state.on_retrieved, retrieved.tote, e.aisle, retrieved.purpose, retrieved.order_id
            )
        await self.requests.announce_failures(changed)

    async def _confirm(self, req: AsrsRequest, ref: str, aisle: str) -> None:
        try:
            if req.kind is RequestKind.STORE:
                await self.state.inventory.tote_stored(req.tote, req.location, ref)
            else:
                await self.state.inventory.tote_retrieved(req.tote, f"PD:{aisle}", ref)
        except InventoryError as exc:
            log.error(
                "AS/RS transport not applied to the inventory",
                extra={"command": ref, "tote": req.tote, "why": str(exc)},
            )

    async def _after_failure(self, req: AsrsRequest, reason: str) -> AsrsRequest:
        if reason == POWER_LOSS:
            return self.state.touch(req, state=RequestState.CHECK, reason=reason)
        relocate = req.kind is RequestKind.STORE and reason in RELOCATE_REASONS
        if relocate and req.attempts < MAX_ATTEMPTS:
            return await self.requests.retry(req, reason, relocate=True)
        return self.state.touch(req, state=RequestState.FAILED, reason=reason)

    async def _contents(self, e: CraneContents) -> None:
        state = self.state
        reported: dict[str, str] = {}
        for racks in e.contents.values():
            reported.update(racks)
        changed: list[AsrsRequest] = []
        async with state.lock:
            ours = await state.store.asrs_tote_locations()
            report: dict[str, str | None] = dict(reported)
            for location in ours.values():
                if self.locations.aisle_of(location) is not None:
                    report.setdefault(location, None)
            await state.inventory.reconcile_asrs(report)
            where = {tote: loc for loc, tote in reported.items()}
            for req in [r for r in state.requests.values() if r.state is RequestState.CHECK]:
                changed += await self._recover(req, where.get(req.tote))
            if changed:
                await state.save(changed)
        state.gauges()
        state.changed()
        await self.requests.announce_failures(changed)

    async def _recover(self, req: AsrsRequest, at: str | None) -> list[AsrsRequest]:
        """A transport lost to a power loss, against where the racks say its tote is."""
        state = self.state
        ref = req.command_id or f"{state.namespace}-check-{req.id}"
        state.metrics.asrs_commands.labels(req.kind.value, "redone").inc()
        if req.kind is RequestKind.STORE:
            if at is not None:  # deposited before the power went
                moved = replace(req, location=at)
                await self._confirm(moved, ref, req.aisle)
                log.info("AS/RS store found done", extra={"tote": req.tote, "location": at})
                return [state.touch(moved, state=RequestState.DONE, reason="")]
            return [state.touch(req, state=RequestState.WAITING, reason=POWER_LOSS)]
        if at is not None:
            log.info(
                "AS/RS retrieve to be sent again",
                extra={"request": req.id, "tote": req.tote, "location": at},
            )
            return [state.touch(req, state=RequestState.WAITING, location=at, reason=POWER_LOSS)]
        # the tote was on the crane: it is back at the P&D input; store it where it was first
        back = self.requests.new_store(
            req.tote, req.sku, req.aisle, req.location, "power loss return"
        )
        log.warning(
            "AS/RS tote back at the P&D input after a power loss; stored again first",
            extra={"tote": req.tote, "aisle": req.aisle, "location": req.location},
        )
        return [back, state.touch(req, state=RequestState.WAITING, reason=POWER_LOSS)]

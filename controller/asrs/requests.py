"""AS/RS transport requests: a stored tote asked for at its aisle's P&D output, a tote at a P&D
input to be stored, and what becomes of a request that cannot go on as planned.

A request is written before anything is done for it and waits until the planning gives it a
crane command. One tote has at most one open request. A request that can be tried again goes
back to waiting (a store at another open location when its own was occupied or blocked); one
given up is announced to the ``on_failed`` hook. Waiting requests no command was planned for can
be withdrawn (their order ended).
"""

from __future__ import annotations

import logging
from datetime import datetime

from controller.asrs.commands import AsrsRequestError, call_hook
from controller.asrs.locations import RackLocations
from controller.asrs.state import AsrsState
from controller.store.asrs import AsrsRequest, RequestKind, RequestState
from routing import asrs as decide

log = logging.getLogger("controller.asrs.flows")  # the AS/RS flows log under one name


class TransportRequests:
    """Tote transports asked for, put back to waiting, withdrawn or given up."""

    def __init__(self, state: AsrsState, locations: RackLocations) -> None:
        self.state = state
        self.locations = locations

    # --- asking -------------------------------------------------------------------------------

    async def request_retrieve(
        self,
        tote: str,
        purpose: str,
        order_id: str | None = None,
        due: datetime | None = None,
        deliver_from: datetime | None = None,
        deliver_until: datetime | None = None,
        priority: int = 5,
    ) -> AsrsRequest:
        """Ask for ``tote`` at its aisle's P&D output. The command id is chosen when the
        request is planned (it may share a dual cycle); AsrsRequestError when the tote is not
        in the rack or already asked for."""
        state = self.state
        state.require_open()
        if not tote or not purpose:
            raise AsrsRequestError("a retrieve needs a tote id and a purpose")
        if not 0 <= priority <= 9:
            raise AsrsRequestError(f"priority must be 0..9, got {priority}")
        async with state.lock:
            self._refuse_if_open(tote)
            where = (await state.store.asrs_tote_locations()).get(tote)
            aisle = self.locations.aisle_of(where)
            if where is None or aisle is None:
                at = "unknown to the inventory" if where is None else f"at {where}"
                raise AsrsRequestError(f"tote {tote} is not in the AS/RS rack ({at})")
            now = state.clock.utcnow()
            request = AsrsRequest(
                id=state.next_id,
                kind=RequestKind.RETRIEVE,
                tote=tote,
                sku=await self._sku(tote),
                aisle=aisle,
                location=where,
                purpose=purpose,
                order_id=order_id,
                due=due,
                deliver_from=deliver_from,
                deliver_until=deliver_until,
                priority=priority,
                state=RequestState.WAITING,
                command_id=None,
                attempts=0,
                reason="",
                created_at=now,
                updated_at=now,
            )
            await state.save([request])
            state.next_id += 1
        log.info(
            "AS/RS retrieve requested",
            extra={"request": request.id, "tote": tote, "aisle": aisle, "purpose": purpose},
        )
        state.changed()
        return request

    async def tote_at_pd(self, tote: str, aisle: str, purpose: str = "return") -> AsrsRequest:
        """A tote was set down at ``aisle``'s P&D input: store it where the storage policy
        says (among rack locations without a tote and without a store on its way). Telling the
        same tote twice returns the first request."""
        state = self.state
        state.require_open()
        if aisle not in state.aisles:
            raise AsrsRequestError(f"unknown aisle {aisle!r} (one of {', '.join(state.aisles)})")
        if not tote:
            raise AsrsRequestError("a store needs a tote id")
        async with state.lock:
            for r in state.requests.values():
                if r.tote == tote and r.kind is RequestKind.STORE:
                    return r
            self._refuse_if_open(tote)
            sku = await self._sku(tote)
            location = await self.locations.choose(aisle, sku)
            if location is None:
                raise AsrsRequestError(f"aisle {aisle} has no open location for tote {tote}")
            request = self.new_store(tote, sku, aisle, location, purpose)
            await state.save([request])
        log.info(
            "AS/RS store requested",
            extra={"request": request.id, "tote": tote, "aisle": aisle, "location": location},
        )
        state.changed()
        return request

    def new_store(
        self, tote: str, sku: str, aisle: str, location: str, purpose: str
    ) -> AsrsRequest:
        """A waiting store of ``tote`` to ``location`` under the next request id (not saved)."""
        now = self.state.clock.utcnow()
        request = AsrsRequest(
            id=self.state.next_id,
            kind=RequestKind.STORE,
            tote=tote,
            sku=sku,
            aisle=aisle,
            location=location,
            purpose=purpose,
            order_id=None,
            due=None,
            deliver_from=None,
            deliver_until=None,
            priority=5,
            state=RequestState.WAITING,
            command_id=None,
            attempts=0,
            reason="",
            created_at=now,
            updated_at=now,
        )
        self.state.next_id += 1
        return request

    # --- taking back --------------------------------------------------------------------------

    async def withdraw(self, request_ids: list[int]) -> list[AsrsRequest]:
        """Take back waiting requests no command was planned for (their order ended, or
        released only in part); requests already under way go on. Returns those withdrawn."""
        state = self.state
        state.require_open()
        async with state.lock:
            gone = [
                state.touch(r, state=RequestState.FAILED, reason="withdrawn")
                for rid in request_ids
                if (r := state.requests.get(rid)) is not None
                and r.state is RequestState.WAITING
                and r.command_id is None
            ]
            if gone:
                await state.save(gone)
        for r in gone:
            log.info("AS/RS request withdrawn", extra={"request": r.id, "tote": r.tote})
        state.changed()
        return gone

    async def withdraw_order(self, order_id: str) -> list[str]:
        """Withdraw the order's waiting retrieves; returns their totes."""
        ids = [r.id for r in self.state.requests.values() if r.order_id == order_id]
        return [r.tote for r in await self.withdraw(ids)]

    # --- another attempt, or given up ---------------------------------------------------------

    async def retry(self, req: AsrsRequest, why: str, *, relocate: bool) -> AsrsRequest:
        """The request back to waiting (a store at another open location when ``relocate``;
        failed when its aisle has none). Not saved."""
        location = req.location
        if relocate:
            chosen = await self.locations.choose(
                req.aisle, req.sku, avoid=req.location, ignoring=req.id
            )
            if chosen is None:
                return self.state.touch(req, state=RequestState.FAILED, reason=f"{why}; aisle full")
            location = chosen
        return self.state.touch(req, state=RequestState.WAITING, location=location, reason=why)

    async def announce_failures(self, changed: list[AsrsRequest]) -> None:
        """Tell the ``on_failed`` hook of each request given up among ``changed``."""
        for req in changed:
            if req.state is RequestState.FAILED:
                log.warning(
                    "AS/RS transport given up",
                    extra={"request": req.id, "kind": req.kind.value, "why": req.reason},
                )
                await call_hook(self.state.on_failed, req)

    # --- reading ------------------------------------------------------------------------------

    def busy_totes(self) -> set[str]:
        """Totes with an open transport (asked for, planned or under way)."""
        return {r.tote for r in self.state.requests.values()}

    async def aisle_for_return(self) -> str | None:
        """The aisle a tote coming back should be sent to: reachable, with room, fewest
        transports waiting (:func:`routing.asrs.aisle_for_store`)."""
        state = self.state
        snapshot = state.cranes.snapshot()
        occupied = await self.locations.occupied()
        loads = []
        for aisle, locations in self.locations.ids.items():
            crane = snapshot.get(aisle)
            stores = sum(
                1
                for r in state.requests.values()
                if r.aisle == aisle and r.kind is RequestKind.STORE
            )
            loads.append(
                decide.AisleLoad(
                    aisle,
                    queued=sum(1 for r in state.requests.values() if r.aisle == aisle),
                    open_locations=len(locations) - occupied.get(aisle, 0) - stores,
                    available=state.available and not (crane is not None and crane.fault),
                )
            )
        return decide.aisle_for_store(loads)

    def _refuse_if_open(self, tote: str) -> None:
        for r in self.state.requests.values():
            if r.tote == tote:
                raise AsrsRequestError(
                    f"tote {tote} already has an open {r.kind.value} (request {r.id}, {r.state})"
                )

    async def _sku(self, tote: str) -> str:
        """The SKU the tote holds most of ('' when empty)."""
        rows = await self.state.inventory.store.inventory_stock(tote=tote)
        return max(rows, key=lambda r: r.on_hand).sku if rows else ""

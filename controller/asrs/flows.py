"""The controller's AS/RS flows: tote transports asked for, crane commands planned, persisted,
sent and finished, and the inventory moved once per confirmed transport.

:class:`AsrsFlows` sits over the :class:`devices.base.Cranes`, the :class:`Inventory` and the
store's :class:`~controller.store.asrs.AsrsStore`:

- :meth:`AsrsFlows.request_retrieve` asks for a stored tote at its aisle's P&D output (for an
  order, a replenishment, ...); :meth:`AsrsFlows.tote_at_pd` records a tote set down at an
  aisle's P&D input, to be stored where the configured storage policy puts it.
- :meth:`AsrsFlows.run` plans each aisle whenever its crane has room (at most ``max_in_flight``
  commands written and not finished): :func:`routing.asrs.next_command` picks the cycle (a dual
  command when ``asrs.dual_command`` and both kinds wait), the command is written to the store,
  then sent under its id. Ids are deterministic and never reused:
  ``<namespace>-<aisle>-R<request>.<attempt>`` (``S`` for a store,
  ``D<retrieve>.<attempt>-<store>.<attempt>`` for a dual command).
- :meth:`AsrsFlows.handle` takes the cranes' events. A finished transport moves the tote in the
  inventory with the command id as its reference, so a completion replayed from the crane's
  journal changes nothing the second time; a retrieved tote is announced to ``on_retrieved``.

Failures: a crane fault refusing a command keeps it written and unsent until the fault clears
(then the same id); no connection keeps it until the cranes are back (the same id); any other
refusal fails the command with the crane's reason, and its requests are tried again only when
another attempt can help (a store to an occupied or blocked location gets a new location, at
most :data:`MAX_ATTEMPTS` times). A transport lost to a power loss waits for the racks'
contents (read after every reconnect): a retrieve whose tote is still at its location is sent
again under a new id; a tote that was on the crane is back at the P&D input and is stored at
its location first; a store whose tote reached its location is confirmed there.

A restart loads every open request and command: a command written but never accepted is sent
again with the same id (the crane runs it once), one accepted is finished by its completion,
replayed from the crane's journal after the last number handled
(:func:`~controller.asrs.commands.journal_positions`, passed to the cranes adapter).

The class is put together from one module per concept: this module has the start-up, the
requests and the read-only views; :mod:`controller.asrs.planning` plans and sends the commands;
:mod:`controller.asrs.events` takes the cranes' events (completions, the racks' contents and the
recovery after a power loss, the P&D inputs, availability); :mod:`controller.asrs.state` holds
the state they share and its helpers; :mod:`controller.asrs.commands` the commands as data.
"""

from __future__ import annotations

import logging
from datetime import datetime

from controller.asrs.commands import AisleCommands, AsrsRequestError, aisle_commands
from controller.asrs.events import AsrsEvents
from controller.asrs.planning import AsrsPlanning
from controller.asrs.state import FailedHook, RetrievedHook
from controller.store.asrs import AsrsCommand, AsrsRequest, RequestKind, RequestState
from routing import asrs as decide

__all__ = ["AsrsFlows", "AsrsRequestError", "FailedHook", "RetrievedHook"]

log = logging.getLogger(__name__)


class AsrsFlows(AsrsPlanning, AsrsEvents):
    """The AS/RS flows (see the module docstring); its constructor is
    :class:`~controller.asrs.state.AsrsState`'s."""

    # --- start-up -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the open requests and commands of the last run."""
        state = await self.store.asrs_load()
        self._namespace = state.namespace
        self._next_id = state.next_request_id
        self._requests = {r.id: r for r in state.requests}
        self._commands = {c.command_id: c for c in state.commands}
        self._last = dict(state.last_sequences)
        self._turnover = {k: float(v) for k, v in state.retrieves_by_sku.items()}
        self._opened = True
        self._gauges()
        if self._requests or self._commands:
            log.info(
                "AS/RS transports of the last run taken over",
                extra={"requests": len(self._requests), "commands": len(self._commands)},
            )

    def last_sequences(self) -> dict[str, int]:
        """aisle -> highest crane journal number handled (``OpcUaCranes(last_sequences=...)``)."""
        return dict(self._last)

    # --- what the flows ask for ---------------------------------------------------------------

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
        self._require_open()
        if not tote or not purpose:
            raise AsrsRequestError("a retrieve needs a tote id and a purpose")
        if not 0 <= priority <= 9:
            raise AsrsRequestError(f"priority must be 0..9, got {priority}")
        async with self._lock:
            self._refuse_if_open(tote)
            where = (await self.store.asrs_tote_locations()).get(tote)
            aisle = self._aisle_of(where)
            if where is None or aisle is None:
                at = "unknown to the inventory" if where is None else f"at {where}"
                raise AsrsRequestError(f"tote {tote} is not in the AS/RS rack ({at})")
            now = self.clock.utcnow()
            request = AsrsRequest(
                id=self._next_id,
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
            await self._save([request])
            self._next_id += 1
        log.info(
            "AS/RS retrieve requested",
            extra={"request": request.id, "tote": tote, "aisle": aisle, "purpose": purpose},
        )
        self._changed()
        return request

    async def tote_at_pd(self, tote: str, aisle: str, purpose: str = "return") -> AsrsRequest:
        """A tote was set down at ``aisle``'s P&D input: store it where the storage policy
        says (among rack locations without a tote and without a store on its way). Telling the
        same tote twice returns the first request."""
        self._require_open()
        if aisle not in self.aisles:
            raise AsrsRequestError(f"unknown aisle {aisle!r} (one of {', '.join(self.aisles)})")
        if not tote:
            raise AsrsRequestError("a store needs a tote id")
        async with self._lock:
            for r in self._requests.values():
                if r.tote == tote and r.kind is RequestKind.STORE:
                    return r
            self._refuse_if_open(tote)
            sku = await self._sku(tote)
            location = await self._choose(aisle, sku)
            if location is None:
                raise AsrsRequestError(f"aisle {aisle} has no open location for tote {tote}")
            request = self._new_store(tote, sku, aisle, location, purpose)
            await self._save([request])
        log.info(
            "AS/RS store requested",
            extra={"request": request.id, "tote": tote, "aisle": aisle, "location": location},
        )
        self._changed()
        return request

    async def withdraw(self, request_ids: list[int]) -> list[AsrsRequest]:
        """Take back waiting requests no command was planned for (their order ended, or
        released only in part); requests already under way go on. Returns those withdrawn."""
        self._require_open()
        async with self._lock:
            gone = [
                self._touch(r, state=RequestState.FAILED, reason="withdrawn")
                for rid in request_ids
                if (r := self._requests.get(rid)) is not None
                and r.state is RequestState.WAITING
                and r.command_id is None
            ]
            if gone:
                await self._save(gone)
        for r in gone:
            log.info("AS/RS request withdrawn", extra={"request": r.id, "tote": r.tote})
        self._changed()
        return gone

    async def withdraw_order(self, order_id: str) -> list[str]:
        """Withdraw the order's waiting retrieves; returns their totes."""
        ids = [r.id for r in self._requests.values() if r.order_id == order_id]
        return [r.tote for r in await self.withdraw(ids)]

    def busy_totes(self) -> set[str]:
        """Totes with an open transport (asked for, planned or under way)."""
        return {r.tote for r in self._requests.values()}

    async def rack_totes(self) -> set[str]:
        """Totes the inventory has at a rack location."""
        return {
            tote
            for tote, where in (await self.store.asrs_tote_locations()).items()
            if self._aisle_of(where) is not None
        }

    async def aisle_for_return(self) -> str | None:
        """The aisle a tote coming back should be sent to: reachable, with room, fewest
        transports waiting (:func:`routing.asrs.aisle_for_store`)."""
        snapshot = self.cranes.snapshot()
        occupied: dict[str, int] = {}
        for where in (await self.store.asrs_tote_locations()).values():
            aisle_of = self._aisle_of(where)
            if aisle_of is not None:
                occupied[aisle_of] = occupied.get(aisle_of, 0) + 1
        loads = []
        for aisle, locations in self._locations.items():
            crane = snapshot.get(aisle)
            stores = sum(
                1
                for r in self._requests.values()
                if r.aisle == aisle and r.kind is RequestKind.STORE
            )
            loads.append(
                decide.AisleLoad(
                    aisle,
                    queued=sum(1 for r in self._requests.values() if r.aisle == aisle),
                    open_locations=len(locations) - occupied.get(aisle, 0) - stores,
                    available=self._available and not (crane is not None and crane.fault),
                )
            )
        return decide.aisle_for_store(loads)

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, AisleCommands]:
        return {
            aisle: aisle_commands(
                aisle,
                [r for r in self._requests.values() if r.aisle == aisle],
                [c for c in self._commands.values() if c.aisle == aisle],
                aisle in self._fault_hold,
            )
            for aisle in self.aisles
        }

    def open_requests(self) -> list[AsrsRequest]:
        return sorted(self._requests.values(), key=lambda r: r.id)

    def open_commands(self) -> list[AsrsCommand]:
        return sorted(self._commands.values(), key=lambda c: c.created_at)

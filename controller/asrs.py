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
replayed from the crane's journal after the last number handled (:func:`journal_positions`,
passed to the cranes adapter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from controller.asrs_commands import (
    FAULT_STATUS,
    MAX_ATTEMPTS,
    NO_DEADLINE,
    POWER_LOSS,
    RELOCATE_REASONS,
    RELOCATE_STATUSES,
    AisleCommands,
    AsrsRequestError,
    aisle_commands,
    build_command,
    call_hook,
    geometry,
)
from controller.clock import Clock
from controller.config.model import LineConfig
from controller.inventory import Inventory
from controller.metrics import Metrics
from controller.store.asrs import (
    AsrsCommand,
    AsrsRequest,
    AsrsStore,
    CommandKind,
    CommandState,
    RequestKind,
    RequestState,
)
from controller.store.inventory import InventoryError
from devices.base import (
    CraneCommandFinished,
    CraneContents,
    Cranes,
    CranesAvailability,
    DeviceEvent,
    TotesAtPdInput,
)
from devices.errors import CommandRejected, DeviceUnavailable
from routing import asrs as decide
from routing.asrs import RetrieveRequest, StoragePolicy, StoreRequest
from routing.rack import BadLocation, parse_location

log = logging.getLogger(__name__)

_Item = TypeVar("_Item", AsrsRequest, AsrsCommand)

RetrievedHook = Callable[[str, str, str, str | None], Awaitable[None] | None]
FailedHook = Callable[[AsrsRequest], Awaitable[None] | None]


class AsrsFlows:
    def __init__(
        self,
        config: LineConfig,
        cranes: Cranes,
        inventory: Inventory,
        store: AsrsStore,
        clock: Clock,
        metrics: Metrics,
        *,
        on_retrieved: RetrievedHook | None = None,
        on_failed: FailedHook | None = None,
        max_in_flight: int = 2,
        infeed_capacity: int = 3,
        poll_seconds: float = 1.0,
        seed: int = 0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.config = config
        self.cranes = cranes
        self.inventory = inventory
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.on_retrieved = on_retrieved
        self.on_failed = on_failed
        self.max_in_flight = max_in_flight
        self.infeed_capacity = infeed_capacity
        self.poll_seconds = poll_seconds
        self.dual_command = config.asrs.dual_command
        self.aisles = geometry(config)
        self._locations = {
            a: {loc.id for loc in g.rack.locations()} for a, g in self.aisles.items()
        }
        asrs = config.asrs
        self._policies: dict[str, StoragePolicy] = {
            a: decide.storage_policy(
                asrs.storage_policy, [g], asrs.class_location_shares, asrs.class_turnover_shares
            )
            for a, g in self.aisles.items()
        }
        self._rng = random.Random(seed)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._requests: dict[int, AsrsRequest] = {}
        self._commands: dict[str, AsrsCommand] = {}
        self._turnover: dict[str, float] = {}
        self._namespace = ""
        self._next_id = 1
        self._last: dict[str, int] = {}
        self._available = True
        self._fault_hold: set[str] = set()
        # aisle -> totes at its P&D input that could not be stored (logged once while there)
        self._refused_infeed: dict[str, set[str]] = {}
        self._opened = False

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

    # --- planning -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Plan and send commands until cancelled; wakes on every change and every
        ``poll_seconds`` of line time (delivery windows opening, faults clearing)."""
        self._require_open()
        while True:
            self._wake.clear()
            await self.plan_once()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.clock.wall_seconds(self.poll_seconds)):
                    await self._wake.wait()

    async def plan_once(self) -> int:
        """One pass over the aisles: send what is written and unsent, then plan new cycles
        while a crane has room. Returns the number of commands the cranes accepted."""
        self._require_open()
        accepted = 0
        async with self._lock:
            snapshot = self.cranes.snapshot()
            for aisle in self.aisles:
                if not self._available:
                    break
                crane = snapshot.get(aisle)
                if crane is not None and crane.fault:
                    continue
                if aisle in self._fault_hold:
                    self._fault_hold.discard(aisle)
                    log.info("AS/RS commands resume after the crane fault", extra={"aisle": aisle})
                for held in [c for c in self._commands.values() if c.aisle == aisle]:
                    if held.state is CommandState.PENDING and self._available:
                        accepted += await self._send(held)
                while self._available and aisle not in self._fault_hold:
                    in_flight = sum(1 for c in self._commands.values() if c.aisle == aisle)
                    if in_flight >= self.max_in_flight:
                        break
                    cmd = await self._plan(aisle)
                    if cmd is None:
                        break
                    accepted += await self._send(cmd)
        self._gauges()
        return accepted

    async def _plan(self, aisle: str) -> AsrsCommand | None:
        stores = [
            r
            for r in self._requests.values()
            if r.aisle == aisle and r.kind is RequestKind.STORE and r.state is RequestState.WAITING
        ]
        storing = {r.tote for r in self._requests.values() if r.kind is RequestKind.STORE}
        retrieves = [
            r
            for r in self._requests.values()
            if r.aisle == aisle
            and r.kind is RequestKind.RETRIEVE
            and r.state is RequestState.WAITING
            and r.tote not in storing  # back at the P&D input after a power loss: store first
        ]
        if not stores and not retrieves:
            return None
        choice = decide.next_command(
            self.aisles[aisle],
            [StoreRequest(r.tote, r.location, r.id) for r in stores],
            [
                RetrieveRequest(
                    r.tote,
                    r.location,
                    r.order_id or "",
                    r.due or NO_DEADLINE,
                    r.deliver_from,
                    r.deliver_until,
                    r.priority,
                    r.id,
                )
                for r in retrieves
            ],
            self.clock.utcnow(),
            dual_command=self.dual_command,
            infeed_full=len(stores) >= self.infeed_capacity,
        )
        if choice is None:
            return None
        s = None if choice.store is None else self._requests[choice.store.seq]
        r = None if choice.retrieve is None else self._requests[choice.retrieve.seq]
        cmd, changed = build_command(
            choice.kind.value, aisle, s, r, self._namespace, self.clock.utcnow()
        )
        await self._save(changed, [cmd])  # written before it is sent
        return cmd

    async def _send(self, cmd: AsrsCommand) -> int:
        try:
            if cmd.kind is CommandKind.DUAL:
                assert cmd.store_tote and cmd.store_location
                assert cmd.retrieve_tote and cmd.retrieve_location
                await self.cranes.dual(
                    cmd.aisle,
                    cmd.command_id,
                    cmd.store_tote,
                    cmd.store_location,
                    cmd.retrieve_tote,
                    cmd.retrieve_location,
                )
            elif cmd.kind is CommandKind.STORE:
                assert cmd.store_tote and cmd.store_location
                await self.cranes.store(
                    cmd.aisle, cmd.command_id, cmd.store_tote, cmd.store_location
                )
            else:
                assert cmd.retrieve_tote and cmd.retrieve_location
                await self.cranes.retrieve(
                    cmd.aisle, cmd.command_id, cmd.retrieve_tote, cmd.retrieve_location
                )
        except DeviceUnavailable as exc:
            if self._available:
                log.warning(
                    "AS/RS commands held: cranes not reachable",
                    extra={"command": cmd.command_id, "why": str(exc)},
                )
            self._available = False
            return 0
        except CommandRejected as exc:
            await self._rejected(cmd, str(exc))
            return 0
        current = self._commands.get(cmd.command_id)
        if current is not None and current.state is CommandState.PENDING:
            await self._save(commands=[self._touch(current, state=CommandState.SENT)])
        self.metrics.asrs_commands.labels(cmd.kind.value, "sent").inc()
        log.info(
            "AS/RS command sent",
            extra={"command": cmd.command_id, "aisle": cmd.aisle, "kind": cmd.kind.value},
        )
        return 1

    async def _rejected(self, cmd: AsrsCommand, why: str) -> None:
        if FAULT_STATUS in why:
            if cmd.aisle not in self._fault_hold:
                log.warning(
                    "AS/RS commands held: crane in fault",
                    extra={"aisle": cmd.aisle, "command": cmd.command_id},
                )
            self._fault_hold.add(cmd.aisle)
            return  # stays pending: the same id once the fault is cleared
        self.metrics.asrs_commands.labels(cmd.kind.value, "rejected").inc()
        log.warning(
            "AS/RS command refused",
            extra={"command": cmd.command_id, "aisle": cmd.aisle, "why": why},
        )
        dual = cmd.kind is CommandKind.DUAL
        changed = []
        for rid in (cmd.store_request, cmd.retrieve_request):
            if rid is None:
                continue
            req = self._requests[rid]
            relocate = req.kind is RequestKind.STORE and (
                dual or any(code in why for code in RELOCATE_STATUSES)
            )
            if req.attempts < MAX_ATTEMPTS and (dual or relocate):
                changed.append(await self._again(req, why, relocate=relocate))
            else:
                changed.append(self._touch(req, state=RequestState.FAILED, reason=why))
        failed = self._touch(
            cmd,
            state=CommandState.FAILED,
            reason=f"refused: {why}",
            store_result="failed" if cmd.store_request is not None else "",
            retrieve_result="failed" if cmd.retrieve_request is not None else "",
        )
        await self._save(changed, [failed])
        await self._announce_failures(changed)

    # --- events ---------------------------------------------------------------------------

    async def handle(self, event: DeviceEvent) -> None:
        """Take one of the cranes' events (others are ignored)."""
        self._require_open()
        if isinstance(event, CraneCommandFinished):
            await self._finished(event)
        elif isinstance(event, CraneContents):
            await self._contents(event)
        elif isinstance(event, TotesAtPdInput):
            await self._at_pd_input(event)
        elif isinstance(event, CranesAvailability):
            if event.available and not self._available:
                log.info("AS/RS commands resume: cranes reachable")
            self._available = event.available
            if event.available:
                self._fault_hold.clear()
            self._changed()

    async def _at_pd_input(self, e: TotesAtPdInput) -> None:
        """The infeed reports the totes at an aisle's P&D input: each one without a store on
        its way (a tote sent back from a station, one put there by hand) is stored."""
        if e.aisle not in self.aisles:
            return
        refused = self._refused_infeed.setdefault(e.aisle, set())
        refused &= set(e.totes)
        for tote in e.totes:
            if any(r.tote == tote and r.kind is RequestKind.STORE for r in self._requests.values()):
                continue
            try:
                await self.tote_at_pd(tote, e.aisle)
            except AsrsRequestError as exc:
                if tote not in refused:
                    log.warning(
                        "tote at the P&D input not stored",
                        extra={"tote": tote, "aisle": e.aisle, "why": str(exc)},
                    )
                refused.add(tote)

    async def _finished(self, e: CraneCommandFinished) -> None:
        retrieved: AsrsRequest | None = None
        changed: list[AsrsRequest] = []
        async with self._lock:
            found = self._commands.get(e.command_id)
            store_half = e.kind == "Store"
            rid = None
            if found is not None:
                rid = found.store_request if store_half else found.retrieve_request
                done = found.store_result if store_half else found.retrieve_result
                if done:
                    rid = None  # this half was handled already
            if found is None or rid is None:
                await self._save(sequences={e.aisle: e.sequence})
                log.debug(
                    "crane completion of no open command",
                    extra={"command": e.command_id, "sequence": e.sequence},
                )
                return
            cmd = found
            req = self._requests[rid]
            if e.ok:
                await self._confirm(req, cmd.command_id, e.aisle)
                req = self._touch(req, state=RequestState.DONE, reason="")
                if not store_half:
                    retrieved = req
                    if req.sku:
                        self._turnover[req.sku] = self._turnover.get(req.sku, 0.0) + 1
            else:
                req = await self._after_failure(req, e.reason)
            changed.append(req)
            result = "ok" if e.ok else "failed"
            cmd = self._touch(cmd, **{"store_result" if store_half else "retrieve_result": result})
            if cmd.halves_open == 0:
                ok = cmd.store_result != "failed" and cmd.retrieve_result != "failed"
                reason = "" if ok else e.reason or cmd.reason
                cmd = self._touch(
                    cmd, state=CommandState.DONE if ok else CommandState.FAILED, reason=reason
                )
                self.metrics.asrs_commands.labels(cmd.kind.value, "done" if ok else "failed").inc()
            await self._save(changed, [cmd], {e.aisle: e.sequence})
            if not e.ok:
                log.warning(
                    "AS/RS transport failed",
                    extra={"command": e.command_id, "kind": e.kind, "why": e.reason},
                )
        self._gauges()
        self._changed()
        if retrieved is not None:
            await call_hook(
                self.on_retrieved, retrieved.tote, e.aisle, retrieved.purpose, retrieved.order_id
            )
        await self._announce_failures(changed)

    async def _confirm(self, req: AsrsRequest, ref: str, aisle: str) -> None:
        try:
            if req.kind is RequestKind.STORE:
                await self.inventory.tote_stored(req.tote, req.location, ref)
            else:
                await self.inventory.tote_retrieved(req.tote, f"PD:{aisle}", ref)
        except InventoryError as exc:
            log.error(
                "AS/RS transport not applied to the inventory",
                extra={"command": ref, "tote": req.tote, "why": str(exc)},
            )

    async def _after_failure(self, req: AsrsRequest, reason: str) -> AsrsRequest:
        if reason == POWER_LOSS:
            return self._touch(req, state=RequestState.CHECK, reason=reason)
        relocate = req.kind is RequestKind.STORE and reason in RELOCATE_REASONS
        if relocate and req.attempts < MAX_ATTEMPTS:
            return await self._again(req, reason, relocate=True)
        return self._touch(req, state=RequestState.FAILED, reason=reason)

    async def _contents(self, e: CraneContents) -> None:
        reported: dict[str, str] = {}
        for racks in e.contents.values():
            reported.update(racks)
        changed: list[AsrsRequest] = []
        async with self._lock:
            ours = await self.store.asrs_tote_locations()
            report: dict[str, str | None] = dict(reported)
            for location in ours.values():
                if self._aisle_of(location) is not None:
                    report.setdefault(location, None)
            await self.inventory.reconcile_asrs(report)
            where = {tote: loc for loc, tote in reported.items()}
            for req in [r for r in self._requests.values() if r.state is RequestState.CHECK]:
                changed += await self._recover(req, where.get(req.tote))
            if changed:
                await self._save(changed)
        self._gauges()
        self._changed()
        await self._announce_failures(changed)

    async def _recover(self, req: AsrsRequest, at: str | None) -> list[AsrsRequest]:
        """A transport lost to a power loss, against where the racks say its tote is."""
        ref = req.command_id or f"{self._namespace}-check-{req.id}"
        self.metrics.asrs_commands.labels(req.kind.value, "redone").inc()
        if req.kind is RequestKind.STORE:
            if at is not None:  # deposited before the power went
                moved = replace(req, location=at)
                await self._confirm(moved, ref, req.aisle)
                log.info("AS/RS store found done", extra={"tote": req.tote, "location": at})
                return [self._touch(moved, state=RequestState.DONE, reason="")]
            return [self._touch(req, state=RequestState.WAITING, reason=POWER_LOSS)]
        if at is not None:
            log.info(
                "AS/RS retrieve to be sent again",
                extra={"request": req.id, "tote": req.tote, "location": at},
            )
            return [self._touch(req, state=RequestState.WAITING, location=at, reason=POWER_LOSS)]
        # the tote was on the crane: it is back at the P&D input; store it where it was first
        back = self._new_store(req.tote, req.sku, req.aisle, req.location, "power loss return")
        log.warning(
            "AS/RS tote back at the P&D input after a power loss; stored again first",
            extra={"tote": req.tote, "aisle": req.aisle, "location": req.location},
        )
        return [back, self._touch(req, state=RequestState.WAITING, reason=POWER_LOSS)]

    async def _announce_failures(self, changed: list[AsrsRequest]) -> None:
        for req in changed:
            if req.state is RequestState.FAILED:
                log.warning(
                    "AS/RS transport given up",
                    extra={"request": req.id, "kind": req.kind.value, "why": req.reason},
                )
                await call_hook(self.on_failed, req)

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

    # --- helpers ----------------------------------------------------------------------------

    def _require_open(self) -> None:
        if not self._opened:
            raise RuntimeError("AsrsFlows.open() first")

    def _refuse_if_open(self, tote: str) -> None:
        for r in self._requests.values():
            if r.tote == tote:
                raise AsrsRequestError(
                    f"tote {tote} already has an open {r.kind.value} (request {r.id}, {r.state})"
                )

    def _aisle_of(self, location: str | None) -> str | None:
        if location is None:
            return None
        try:
            aisle = parse_location(location).aisle
        except BadLocation:
            return None
        return aisle if location in self._locations.get(aisle, ()) else None

    async def _sku(self, tote: str) -> str:
        rows = await self.inventory.store.inventory_stock(tote=tote)
        return max(rows, key=lambda r: r.on_hand).sku if rows else ""

    async def _choose(self, aisle: str, sku: str, avoid: str | None = None) -> str | None:
        taken = set((await self.store.asrs_tote_locations()).values())
        taken |= {r.location for r in self._requests.values() if r.kind is RequestKind.STORE}
        if avoid is not None:
            taken.add(avoid)
        open_ids = self._locations[aisle] - taken
        return self._policies[aisle].choose(open_ids, sku, self._turnover, self._rng)

    def _new_store(
        self, tote: str, sku: str, aisle: str, location: str, purpose: str
    ) -> AsrsRequest:
        now = self.clock.utcnow()
        request = AsrsRequest(
            id=self._next_id,
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
        self._next_id += 1
        return request

    async def _again(self, req: AsrsRequest, why: str, *, relocate: bool) -> AsrsRequest:
        """The request back to waiting (a store at another open location when ``relocate``)."""
        location = req.location
        if relocate:
            others = {r.id: r for r in self._requests.values() if r.id != req.id}
            saved, self._requests = self._requests, others
            try:
                chosen = await self._choose(req.aisle, req.sku, avoid=req.location)
            finally:
                self._requests = saved
            if chosen is None:
                return self._touch(req, state=RequestState.FAILED, reason=f"{why}; aisle full")
            location = chosen
        return self._touch(req, state=RequestState.WAITING, location=location, reason=why)

    def _touch(self, item: _Item, **changes: Any) -> _Item:
        return replace(item, updated_at=self.clock.utcnow(), **changes)

    async def _save(
        self,
        requests: list[AsrsRequest] | None = None,
        commands: list[AsrsCommand] | None = None,
        sequences: Mapping[str, int] | None = None,
    ) -> None:
        """Write, then mirror: open ones kept in memory, finished ones dropped."""
        requests, commands = requests or [], commands or []
        await self.store.asrs_save(requests, commands, sequences)
        for r in requests:
            if r.state in (RequestState.DONE, RequestState.FAILED):
                self._requests.pop(r.id, None)
            else:
                self._requests[r.id] = r
        for c in commands:
            if c.state in (CommandState.DONE, CommandState.FAILED):
                self._commands.pop(c.command_id, None)
            else:
                self._commands[c.command_id] = c
        for aisle, seq in (sequences or {}).items():
            self._last[aisle] = max(seq, self._last.get(aisle, 0))

    def _changed(self) -> None:
        self._gauges()
        self._wake.set()

    def _gauges(self) -> None:
        gauge = self.metrics.asrs_open
        for aisle in self.aisles:
            reqs = [r for r in self._requests.values() if r.aisle == aisle]
            cmds = [c for c in self._commands.values() if c.aisle == aisle]
            gauge.labels(aisle, "waiting").set(
                sum(1 for r in reqs if r.state is RequestState.WAITING)
            )
            gauge.labels(aisle, "check").set(sum(1 for r in reqs if r.state is RequestState.CHECK))
            for state in (CommandState.PENDING, CommandState.SENT):
                gauge.labels(aisle, state.value).set(sum(1 for c in cmds if c.state is state))

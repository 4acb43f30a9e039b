"""The state :class:`~controller.asrs.flows.AsrsFlows` keeps and the helpers every part of it uses.

:class:`AsrsState` holds the collaborators (cranes, inventory, store, clock, metrics, hooks), the
racks' geometry and storage policies, and the in-memory mirror of the open requests and commands
(loaded by :meth:`~controller.asrs.flows.AsrsFlows.open`, written through :meth:`AsrsState._save`).
Its helpers are shared by the requests (:mod:`controller.asrs.flows`), the planning
(:mod:`controller.asrs.planning`) and the crane events (:mod:`controller.asrs.events`): choosing
a store location, putting a request back to waiting, saving and mirroring, announcing the
transports given up, the gauges. The lock guards the mirror: every change is made under it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from controller.asrs.commands import AsrsRequestError, call_hook, geometry
from controller.line.inventory import Inventory
from controller.store.asrs import (
    AsrsCommand,
    AsrsRequest,
    AsrsStore,
    CommandState,
    RequestKind,
    RequestState,
)
from devices.base import Cranes
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import asrs as decide
from routing.asrs import StoragePolicy
from routing.rack import BadLocation, parse_location

log = logging.getLogger("controller.asrs.flows")  # the AS/RS flows log under one name

_Item = TypeVar("_Item", AsrsRequest, AsrsCommand)

RetrievedHook = Callable[[str, str, str, str | None], Awaitable[None] | None]
FailedHook = Callable[[AsrsRequest], Awaitable[None] | None]


class AsrsState:
    """What the AS/RS flows know, and the helpers that change it."""

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
        self.held = False  # an operator holds the line: no new command goes to a crane
        self._fault_hold: set[str] = set()
        # aisle -> totes at its P&D input that could not be stored (logged once while there)
        self._refused_infeed: dict[str, set[str]] = {}
        self._opened = False

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

    async def _announce_failures(self, changed: list[AsrsRequest]) -> None:
        for req in changed:
            if req.state is RequestState.FAILED:
                log.warning(
                    "AS/RS transport given up",
                    extra={"request": req.id, "kind": req.kind.value, "why": req.reason},
                )
                await call_hook(self.on_failed, req)

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

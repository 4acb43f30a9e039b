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
most :data:`~controller.asrs.commands.MAX_ATTEMPTS` times). A transport lost to a power loss
waits for the racks' contents (read after every reconnect): a retrieve whose tote is still at
its location is sent again under a new id; a tote that was on the crane is back at the P&D
input and is stored at its location first; a store whose tote reached its location is
confirmed there.

A restart loads every open request and command: a command written but never accepted is sent
again with the same id (the crane runs it once), one accepted is finished by its completion,
replayed from the crane's journal after the last number handled
(:func:`~controller.asrs.commands.journal_positions`, passed to the cranes adapter).
"""

from __future__ import annotations

import logging
from datetime import datetime

from controller.asrs.commands import AisleCommands, AsrsRequestError, aisle_commands
from controller.asrs.events import CraneEvents
from controller.asrs.locations import RackLocations
from controller.asrs.planning import CommandPlanner
from controller.asrs.requests import TransportRequests
from controller.asrs.state import AsrsState, FailedHook, RetrievedHook
from controller.line.inventory import Inventory
from controller.store.asrs import AsrsCommand, AsrsRequest, AsrsStore
from devices.base import Cranes, DeviceEvent
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

__all__ = ["AsrsFlows", "AsrsRequestError", "FailedHook", "RetrievedHook"]

log = logging.getLogger(__name__)


class AsrsFlows:
    """The AS/RS flows (see the module docstring): the requests, the planning and the cranes'
    events over one :class:`~controller.asrs.state.AsrsState`."""

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
        self.state = AsrsState(
            config,
            cranes,
            inventory,
            store,
            clock,
            metrics,
            on_retrieved=on_retrieved,
            on_failed=on_failed,
            max_in_flight=max_in_flight,
            infeed_capacity=infeed_capacity,
            poll_seconds=poll_seconds,
        )
        self.locations = RackLocations(self.state, seed=seed)
        self.requests = TransportRequests(self.state, self.locations)
        self.planner = CommandPlanner(self.state, self.requests)
        self.events = CraneEvents(self.state, self.requests, self.locations)

    # --- what the line's other parts set and read ---------------------------------------------

    @property
    def store(self) -> AsrsStore:
        return self.state.store

    @property
    def held(self) -> bool:
        """An operator holds the line: no new command goes to a crane."""
        return self.state.held

    @held.setter
    def held(self, value: bool) -> None:
        self.state.held = value

    @property
    def on_retrieved(self) -> RetrievedHook | None:
        return self.state.on_retrieved

    @on_retrieved.setter
    def on_retrieved(self, hook: RetrievedHook | None) -> None:
        self.state.on_retrieved = hook

    @property
    def on_failed(self) -> FailedHook | None:
        return self.state.on_failed

    @on_failed.setter
    def on_failed(self, hook: FailedHook | None) -> None:
        self.state.on_failed = hook

    # --- start-up -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the open requests and commands of the last run."""
        state = self.state
        loaded = await state.store.asrs_load()
        state.namespace = loaded.namespace
        state.next_id = loaded.next_request_id
        state.requests = {r.id: r for r in loaded.requests}
        state.commands = {c.command_id: c for c in loaded.commands}
        state.last = dict(loaded.last_sequences)
        state.turnover = {k: float(v) for k, v in loaded.retrieves_by_sku.items()}
        state.opened = True
        state.gauges()
        if state.requests or state.commands:
            log.info(
                "AS/RS transports of the last run taken over",
                extra={"requests": len(state.requests), "commands": len(state.commands)},
            )

    def last_sequences(self) -> dict[str, int]:
        """aisle -> highest crane journal number handled (``OpcUaCranes(last_sequences=...)``)."""
        return dict(self.state.last)

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
        return await self.requests.request_retrieve(
            tote, purpose, order_id, due, deliver_from, deliver_until, priority
        )

    async def tote_at_pd(self, tote: str, aisle: str, purpose: str = "return") -> AsrsRequest:
        """A tote was set down at ``aisle``'s P&D input: store it where the storage policy
        says (among rack locations without a tote and without a store on its way). Telling the
        same tote twice returns the first request."""
        return await self.requests.tote_at_pd(tote, aisle, purpose)

    async def withdraw(self, request_ids: list[int]) -> list[AsrsRequest]:
        """Take back waiting requests no command was planned for (their order ended, or
        released only in part); requests already under way go on. Returns those withdrawn."""
        return await self.requests.withdraw(request_ids)

    async def withdraw_order(self, order_id: str) -> list[str]:
        """Withdraw the order's waiting retrieves; returns their totes."""
        return await self.requests.withdraw_order(order_id)

    def busy_totes(self) -> set[str]:
        """Totes with an open transport (asked for, planned or under way)."""
        return self.requests.busy_totes()

    async def rack_totes(self) -> set[str]:
        """Totes the inventory has at a rack location."""
        return await self.locations.rack_totes()

    async def aisle_for_return(self) -> str | None:
        """The aisle a tote coming back should be sent to: reachable, with room, fewest
        transports waiting (:func:`routing.asrs.aisle_for_store`)."""
        return await self.requests.aisle_for_return()

    # --- the commands and the cranes' events --------------------------------------------------

    async def run(self) -> None:
        """Plan and send commands until cancelled; wakes on every change and every
        ``poll_seconds`` of line time (delivery windows opening, faults clearing)."""
        await self.planner.run()

    def wake(self) -> None:
        """Plan now (the line was resumed)."""
        self.planner.wake()

    async def plan_once(self) -> int:
        """One pass over the aisles: send what is written and unsent, then plan new cycles
        while a crane has room. Returns the number of commands the cranes accepted."""
        return await self.planner.plan_once()

    async def handle(self, event: DeviceEvent) -> None:
        """Take one of the cranes' events (others are ignored)."""
        await self.events.handle(event)

    # --- reading ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, AisleCommands]:
        state = self.state
        return {
            aisle: aisle_commands(
                aisle,
                [r for r in state.requests.values() if r.aisle == aisle],
                [c for c in state.commands.values() if c.aisle == aisle],
                aisle in state.fault_hold,
            )
            for aisle in state.aisles
        }

    def open_requests(self) -> list[AsrsRequest]:
        return sorted(self.state.requests.values(), key=lambda r: r.id)

    def open_commands(self) -> list[AsrsCommand]:
        return sorted(self.state.commands.values(), key=lambda c: c.created_at)

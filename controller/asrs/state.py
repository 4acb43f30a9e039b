"""What the controller knows of its AS/RS transports: the devices and stores it works with, its
settings, and the in-memory mirror of the open transport requests and crane commands.

The store is the record; the mirror is what the controller plans from. Every change is written
to the store first and then mirrored (:meth:`AsrsState.save`), always under :attr:`AsrsState.lock`,
so the two never disagree about what is open. Finished requests and commands are dropped from the
mirror; the gauges of open transports are computed from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from controller.asrs.commands import geometry
from controller.line.inventory import Inventory
from controller.store.asrs import (
    AsrsCommand,
    AsrsRequest,
    AsrsStore,
    CommandState,
    RequestState,
)
from devices.base import Cranes
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing.asrs import AisleGeometry

Item = TypeVar("Item", AsrsRequest, AsrsCommand)

RetrievedHook = Callable[[str, str, str, str | None], Awaitable[None] | None]
FailedHook = Callable[[AsrsRequest], Awaitable[None] | None]


@dataclass
class AsrsState:
    """The AS/RS's collaborators, settings and open transports, shared by the parts of the flows."""

    config: LineConfig
    cranes: Cranes
    inventory: Inventory
    store: AsrsStore
    clock: Clock
    metrics: Metrics
    on_retrieved: RetrievedHook | None = None  # a tote set down at a P&D output
    on_failed: FailedHook | None = None  # a transport given up
    max_in_flight: int = 2  # commands per aisle written and not finished
    infeed_capacity: int = 3  # totes a P&D input holds
    poll_seconds: float = 1.0  # line time between planning passes without a change
    aisles: dict[str, AisleGeometry] = field(init=False)
    dual_command: bool = field(init=False)
    # every change to the mirror is made under the lock
    lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    # set on every change: the planning runs again at once
    wakeup: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    # the mirror of the store: open requests by id, open commands by id
    requests: dict[int, AsrsRequest] = field(init=False, default_factory=dict)
    commands: dict[str, AsrsCommand] = field(init=False, default_factory=dict)
    turnover: dict[str, float] = field(init=False, default_factory=dict)  # sku -> retrieves
    namespace: str = field(init=False, default="")  # the store's prefix of command ids
    next_id: int = field(init=False, default=1)  # the next request's id
    last: dict[str, int] = field(init=False, default_factory=dict)  # aisle -> journal number
    available: bool = field(init=False, default=True)  # the cranes are reachable
    held: bool = field(init=False, default=False)  # an operator holds the line: no new command
    fault_hold: set[str] = field(init=False, default_factory=set)  # aisles whose crane refused
    # aisle -> totes at its P&D input that could not be stored (logged once while there)
    refused_infeed: dict[str, set[str]] = field(init=False, default_factory=dict)
    opened: bool = field(init=False, default=False)  # the mirror was loaded from the store

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {self.max_in_flight}")
        self.aisles = geometry(self.config)
        self.dual_command = self.config.asrs.dual_command

    def require_open(self) -> None:
        """Nothing is planned or asked for before the mirror is loaded."""
        if not self.opened:
            raise RuntimeError("AsrsFlows.open() first")

    def touch(self, item: Item, **changes: Any) -> Item:
        """``item`` with ``changes``, stamped with the line's time."""
        return replace(item, updated_at=self.clock.utcnow(), **changes)

    async def save(
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
                self.requests.pop(r.id, None)
            else:
                self.requests[r.id] = r
        for c in commands:
            if c.state in (CommandState.DONE, CommandState.FAILED):
                self.commands.pop(c.command_id, None)
            else:
                self.commands[c.command_id] = c
        for aisle, seq in (sequences or {}).items():
            self.last[aisle] = max(seq, self.last.get(aisle, 0))

    def changed(self) -> None:
        """Something changed: the gauges follow and the planning runs again."""
        self.gauges()
        self.wakeup.set()

    def gauges(self) -> None:
        gauge = self.metrics.asrs_open
        for aisle in self.aisles:
            reqs = [r for r in self.requests.values() if r.aisle == aisle]
            cmds = [c for c in self.commands.values() if c.aisle == aisle]
            gauge.labels(aisle, "waiting").set(
                sum(1 for r in reqs if r.state is RequestState.WAITING)
            )
            gauge.labels(aisle, "check").set(sum(1 for r in reqs if r.state is RequestState.CHECK))
            for state in (CommandState.PENDING, CommandState.SENT):
                gauge.labels(aisle, state.value).set(sum(1 for c in cmds if c.state is state))

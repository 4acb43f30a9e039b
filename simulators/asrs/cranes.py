"""What the AS/RS simulator's OPC UA bindings share: one crane model per aisle, the one lock
every change goes through and the nodes once built.

:class:`AsrsCranes` is passed to each part of the bindings (publishing, methods, retained
state), so they work on one explicit state; the lock keeps completion events in journal order
and the variables following the models.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from kernel.clock import Clock
from kernel.config.model import LineConfig
from routing.crane import Kinematics
from routing.rack import BadLocation, Rack, parse_location
from simulators.asrs.address_space import AsrsNodes
from simulators.asrs.motion import CraneModel
from simulators.asrs.motion_values import Fact

DeliveredHook = Callable[[str, str], Awaitable[None] | None]


class UnknownName(ValueError):
    """An aisle, crane, tote or location the AS/RS does not know (or a tote it already has)."""


class AsrsCranes:
    """Every aisle's crane model, by aisle id, and the lock their changes go through."""

    def __init__(self, config: LineConfig, clock: Clock) -> None:
        self.clock = clock
        self.cranes: dict[str, CraneModel] = {}
        self.crane_aisle: dict[str, str] = {}
        stored: dict[str, dict[str, str]] = {a.id: {} for a in config.asrs.aisles}
        for t in config.asrs.totes:
            stored[parse_location(t.location).aisle][t.location] = t.tote
        for a in config.asrs.aisles:
            c = a.crane
            rack = Rack(a.id, a.bays, a.levels, a.sides, a.bay_width, a.level_height)
            k = Kinematics(c.speed_x, c.speed_y, c.accel_x, c.accel_y, c.pd_time)
            self.cranes[a.id] = CraneModel(c.id, rack, k, stored[a.id])
            self.crane_aisle[c.id] = a.id
        self.lock = asyncio.Lock()
        self.nodes: AsrsNodes | None = None

    def step(self) -> list[Fact]:
        """Advance every crane to now; what happened, crane by crane."""
        now = self.clock.now()
        return [f for model in self.cranes.values() for f in model.step(now)]

    def crane(self, crane_or_aisle: str) -> CraneModel:
        aisle = self.crane_aisle.get(crane_or_aisle, crane_or_aisle)
        model = self.cranes.get(aisle)
        if model is None:
            raise UnknownName(f"no crane or aisle {crane_or_aisle!r}")
        return model

    def arrive(self, tote: str, aisle: str, now: float) -> None:
        """A tote set down at the aisle's P&D input."""
        if not tote:
            raise UnknownName("empty tote id")
        model = self.cranes.get(aisle)
        if model is None:
            raise UnknownName(f"no aisle {aisle!r}")
        if any(m.holds(tote) for m in self.cranes.values()):
            raise UnknownName(f"tote {tote!r} is already in the AS/RS")
        model.arrive(tote)

    def block(self, location: str, blocked: bool) -> None:
        try:
            aisle = parse_location(location).aisle
            self.crane(aisle).set_blocked(location, blocked)
        except (BadLocation, UnknownName) as exc:
            raise UnknownName(str(exc)) from None

    def attached(self) -> AsrsNodes:
        if self.nodes is None:
            raise RuntimeError("bindings are not attached to an address space")
        return self.nodes

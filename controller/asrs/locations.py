"""The racks' storage locations: which aisle a location belongs to, which totes are in a rack,
how full each aisle is, and where the configured storage policy puts a tote.

A location is open when the inventory has no tote there and no store is on its way to it. The
policy (random, closest open, class-based, ...) chooses among the open locations of one aisle,
weighing each SKU by its retrieves so far (:attr:`~controller.asrs.state.AsrsState.turnover`).
"""

from __future__ import annotations

import random

from controller.asrs.state import AsrsState
from controller.store.asrs import RequestKind
from routing import asrs as decide
from routing.asrs import StoragePolicy
from routing.rack import BadLocation, parse_location


class RackLocations:
    """Where totes are and may go in the racks."""

    def __init__(self, state: AsrsState, *, seed: int = 0) -> None:
        self.state = state
        self.ids: dict[str, set[str]] = {
            a: {loc.id for loc in g.rack.locations()} for a, g in state.aisles.items()
        }
        asrs = state.config.asrs
        self._policies: dict[str, StoragePolicy] = {
            a: decide.storage_policy(
                asrs.storage_policy, [g], asrs.class_location_shares, asrs.class_turnover_shares
            )
            for a, g in state.aisles.items()
        }
        self._rng = random.Random(seed)

    def aisle_of(self, location: str | None) -> str | None:
        """The aisle of a rack location; None for anything else (a P&D, a station, ...)."""
        if location is None:
            return None
        try:
            aisle = parse_location(location).aisle
        except BadLocation:
            return None
        return aisle if location in self.ids.get(aisle, ()) else None

    async def rack_totes(self) -> set[str]:
        """Totes the inventory has at a rack location."""
        return {
            tote
            for tote, where in (await self.state.store.asrs_tote_locations()).items()
            if self.aisle_of(where) is not None
        }

    async def occupied(self) -> dict[str, int]:
        """aisle -> rack locations the inventory has a tote at."""
        counts: dict[str, int] = {}
        for where in (await self.state.store.asrs_tote_locations()).values():
            aisle = self.aisle_of(where)
            if aisle is not None:
                counts[aisle] = counts.get(aisle, 0) + 1
        return counts

    async def choose(
        self, aisle: str, sku: str, avoid: str | None = None, ignoring: int | None = None
    ) -> str | None:
        """An open location of ``aisle`` for a tote of ``sku`` (not ``avoid``; the store
        request ``ignoring`` does not hold its location), or None when the aisle is full."""
        taken = set((await self.state.store.asrs_tote_locations()).values())
        taken |= {
            r.location
            for r in self.state.requests.values()
            if r.kind is RequestKind.STORE and r.id != ignoring
        }
        if avoid is not None:
            taken.add(avoid)
        open_ids = self.ids[aisle] - taken
        return self._policies[aisle].choose(open_ids, sku, self.state.turnover, self._rng)

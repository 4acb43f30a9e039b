"""Totes at the reject chute whose picked units are off the books, and their way back.

A tote a robot filled reaches the reject chute (or, serving no order any more, a chute on its
way back) when its order was cancelled, went into ``exception`` or was given to another robot.
Its picked units left their locations' on-hand when the robot reported the picks. The sortation
registers each such tote here with what it holds (:meth:`RejectTotes.arrived`); an operator then
counts the units back into pick locations (:meth:`RejectTotes.restock`: by default all of them
to where they were picked) or writes them off (:meth:`RejectTotes.write_off`), through
``/v1/inventory/reject-totes`` (audited). Until then the gauges ``linectl_reject_totes`` and
``linectl_reject_tote_units`` show what waits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from controller.line.inventory import Inventory
from controller.line.trips import Trip
from controller.store.reject_totes import (
    RejectLine,
    RejectTote,
    RejectToteError,
    RejectToteResolved,
    RejectToteState,
    RejectToteStore,
    RestockLine,
    UnknownRejectTote,
)
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger(__name__)


def tote_contents(trip: Trip) -> list[RejectLine]:
    """What a robot trip's tote holds: the picks the robot reported done, per SKU and location."""
    lines: dict[tuple[str, str, str], int] = {}
    for i in sorted(trip.picks_done):
        if i < len(trip.picks):
            pk = trip.picks[i]
            key = (pk.sku, pk.location, pk.line_id)
            lines[key] = lines.get(key, 0) + pk.quantity
    return [RejectLine(sku, loc, qty, line) for (sku, loc, line), qty in lines.items() if qty > 0]


class RejectTotes:
    def __init__(
        self,
        config: LineConfig,
        store: RejectToteStore,
        inventory: Inventory,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.clock = clock
        self.metrics = metrics
        # loose stock lives at the robots' pick locations: a restock puts units there
        self.locations = {loc.id for loc in config.robots.storage_locations}

    async def open(self) -> None:
        """Show the totes still open from earlier runs in the gauges."""
        await self._refresh()

    async def arrived(self, trip: Trip, chute: str, reason: str) -> RejectTote | None:
        """``trip``'s tote came out in ``chute`` serving no order: register what it holds
        (nothing when the robot picked nothing into it). Idempotent per trip."""
        lines = tote_contents(trip)
        if not lines:
            return None
        tote = await self.store.reject_tote_register(
            trip.tote, trip.order_id, trip.trip_id, chute, reason, lines, self.clock.utcnow()
        )
        log.info(
            "tote with picked units in the reject chute",
            extra={
                "tote": trip.tote,
                "order": trip.order_id,
                "chute": chute,
                "units": tote.units,
                "reason": reason,
            },
        )
        await self._refresh()
        return tote

    async def listing(self, state: RejectToteState | None = None) -> list[RejectTote]:
        return await self.store.reject_totes(state, limit=1000)

    async def restock(
        self, tote: str, lines: Sequence[RestockLine] | None, by: str, note: str = ""
    ) -> RejectTote:
        """Count the tote's units back: ``lines`` as counted (what they leave out is written
        off), or, without lines, every unit to the location it was picked from."""
        if lines is None:
            found = await self._open(tote)
            lines = [RestockLine(ln.sku, ln.location, ln.quantity) for ln in found.lines]
        unknown = sorted({ln.location for ln in lines} - self.locations)
        if unknown:
            raise RejectToteError(
                f"{', '.join(unknown)}: not a pick location of this line (robots.storage_locations)"
            )
        closed, applied = await self.store.reject_tote_restock(
            tote, lines, by, note, dict(self.inventory.levels), self.clock.utcnow()
        )
        self.inventory.mirror(applied)
        self.metrics.reject_totes_resolved.labels("restocked").inc()
        log.info(
            "reject tote restocked",
            extra={"tote": tote, "by": by, "written_off": closed.resolution.get("written_off")},
        )
        await self._refresh()
        return closed

    async def write_off(self, tote: str, by: str, note: str = "") -> RejectTote:
        closed = await self.store.reject_tote_write_off(tote, by, note, self.clock.utcnow())
        self.metrics.reject_totes_resolved.labels("written_off").inc()
        log.info("reject tote written off", extra={"tote": tote, "by": by, "units": closed.units})
        await self._refresh()
        return closed

    async def _open(self, tote: str) -> RejectTote:
        found = await self.store.reject_tote(tote)
        if found is None:
            raise UnknownRejectTote(f"tote {tote} is not registered as a reject-chute tote")
        if found.state is not RejectToteState.OPEN:
            raise RejectToteResolved(f"tote {tote} was {found.state.value.replace('_', ' ')}")
        return found

    async def _refresh(self) -> None:
        self._gauges(*await self.store.reject_totes_open())

    def _gauges(self, totes: int, units: int) -> None:
        self.metrics.reject_totes.set(totes)
        self.metrics.reject_tote_units.set(units)

"""AS/RS totes going back into the rack from the stations and chutes where they were used.

A tote the AS/RS brought out (for a B2B order's cases, :mod:`controller.asrs.case_picks.picks`, or
for a replenishment, :mod:`controller.asrs.replenishment`) ends up at a station or chute: the
inventory has it at ``STATION:<chute>``. Once no open task needs it there (the order verified,
cancelled or in exception; the put confirmed), it is listed in that station's returns with the
aisle to send it to (:meth:`routing.asrs.aisle_for_store` over the aisles' load, via
:meth:`~controller.asrs.flows.AsrsFlows.aisle_for_return`). The operator reports it sent: the tote
moves to ``RETURN:<aisle>`` and, when it reaches that aisle's P&D input, the infeed's report makes
the AS/RS store it. Everything is read from the inventory's tote locations, so the list is the same
after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller.asrs.commands import AsrsRequestError
from controller.asrs.flows import AsrsFlows
from controller.line.inventory import Inventory
from controller.store.inventory import InventoryError
from kernel.clock import Clock
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

STATION_PREFIX = "STATION:"
RETURN_PREFIX = "RETURN:"

Holder = Callable[[str], set[str]]  # station -> totes an open task still needs there


@dataclass(frozen=True)
class ReturnTote:
    """An AS/RS tote at a station (or the reject chute) to go back into the rack."""

    tote: str
    station: str
    aisle: str  # the aisle whose P&D input it should be sent to
    sent: bool = False


class ToteReturns:
    def __init__(self, inventory: Inventory, clock: Clock, metrics: Metrics) -> None:
        self.inventory = inventory
        self.clock = clock
        self.metrics = metrics
        self.asrs: AsrsFlows | None = None  # set by the orchestrator when the line has one
        self.holders: list[Holder] = []  # the flows whose open tasks keep totes at a station

    async def returns(self, station: str) -> list[ReturnTote]:
        """AS/RS totes at ``station`` that no open task needs: to be sent back to the rack."""
        if self.asrs is None:
            return []
        needed = {tote for holder in self.holders for tote in holder(station)}
        here = f"{STATION_PREFIX}{station}"
        totes = sorted(
            tote
            for tote, location in (await self.asrs.store.asrs_tote_locations()).items()
            if location == here and tote not in needed
        )
        if not totes:
            return []
        aisle = await self.asrs.aisle_for_return()
        return [ReturnTote(tote, station, aisle or "") for tote in totes]

    async def send_back(self, station: str, tote: str) -> ReturnTote:
        """The operator put ``tote`` on the return conveyor to the aisle named in the returns
        list. Telling it twice answers the same. LookupError when the tote is not there,
        AsrsRequestError when no aisle can take it now."""
        if self.asrs is None:
            raise LookupError("this line has no AS/RS: no tote to send back")
        where = (await self.asrs.store.asrs_tote_locations()).get(tote)
        if where is not None and where.startswith(RETURN_PREFIX):
            return ReturnTote(tote, station, where.removeprefix(RETURN_PREFIX), sent=True)
        for r in await self.returns(station):
            if r.tote != tote:
                continue
            if not r.aisle:
                raise AsrsRequestError("no aisle can take a store now")
            ref = f"return-{tote}-{station}-{self.clock.utcnow().isoformat()}"
            try:
                await self.inventory.tote_moved(tote, f"{RETURN_PREFIX}{r.aisle}", ref)
            except InventoryError as exc:
                log.error("tote return not recorded", extra={"tote": tote, "why": str(exc)})
                raise
            self.metrics.tote_returns.inc()
            log.info("tote sent back", extra={"tote": tote, "station": station, "aisle": r.aisle})
            return ReturnTote(tote, station, r.aisle, sent=True)
        raise LookupError(f"tote {tote!r} is not waiting for return at {station!r}")

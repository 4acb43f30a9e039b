"""Case picks that do not go to plan: orders that end otherwise, and the restart.

An order that ends any other way than by its verification (cancelled, in exception) gives back its
tote reservations, withdraws the retrieves no crane has taken yet, and its totes still under way
go to the reject chute, from where they are returned like any case tote. After a restart each
order's case picks are rebuilt from its history (the totes released, retrieved, at the station),
and the orchestrator asks whether the order still needs a robot and where its robot tote is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from controller.asrs.case_picks.state import CaseOrder, CasePickState, CaseTote
from controller.orders.model import HistoryEvent, OrderRecord, OrderStatus
from controller.store.base import StoreError
from controller.store.inventory import InventoryError, ToteLine

log = logging.getLogger("controller.asrs.case_picks.picks")  # the case picks log under one name


class CaseRecovery:
    """Unwinding the case picks of ended orders, and rebuilding them after a restart."""

    def __init__(self, state: CasePickState) -> None:
        self.state = state
        self.to_unwind: asyncio.Queue[str] = asyncio.Queue()  # ended orders, in turn

    # --- orders that end otherwise -----------------------------------------------------------

    def ended(self, rec: OrderRecord) -> None:
        """History listener: the order ended (cancelled, exception, ...)."""
        co = self.state.orders.get(rec.id)
        if co is not None and not co.ended:
            co.ended = True
            self.to_unwind.put_nowait(rec.id)

    async def run(self) -> None:
        """Give back what ended orders held: reservations, retrieves not yet taken by a crane;
        their totes still under way go to the reject chute."""
        while True:
            order_id = await self.to_unwind.get()
            try:
                await self.unwind(order_id)
            except (StoreError, InventoryError):
                log.exception("could not unwind an order's case picks", extra={"order": order_id})

    async def unwind(self, order_id: str) -> None:
        state = self.state
        co = state.orders.pop(order_id, None)
        if co is None:
            return
        withdrawn: list[str] = []
        if state.asrs is not None:
            withdrawn = await state.asrs.withdraw_order(order_id)
        for trip in state.flight.case_totes(order_id):
            if not trip.void:  # (one that came out after the order ended is void already)
                trip.cancel()
        await state.inventory.release(order_id, reason="order ended")
        log.info(
            "case picks of an ended order unwound",
            extra={"order": order_id, "withdrawn": withdrawn},
        )

    # --- restart -----------------------------------------------------------------------------

    def restore(self, rec: OrderRecord, events: Iterable[HistoryEvent]) -> bool:
        """Rebuild the order's case picks from its history; True when it has some."""
        state = self.state
        evs = list(events)
        released = next((e for e in evs if e.type == "case_pick_released"), None)
        if released is None:
            return False
        totes: dict[str, CaseTote] = {}
        for t in released.data.get("totes", []):
            lines = [
                ToteLine(str(ln["line_id"]), str(ln["sku"]), str(t["tote"]), int(ln["units"]))
                for ln in t.get("lines", [])
            ]
            totes[str(t["tote"])] = CaseTote(str(t["tote"]), str(t["aisle"]), lines)
        robot_part = any(
            ln.line_id not in {x.line_id for t in totes.values() for x in t.lines}
            for ln in rec.body.lines
        )
        void = rec.status.terminal or rec.status is OrderStatus.EXCEPTION
        co = CaseOrder(
            rec.id,
            frozenset(x.line_id for t in totes.values() for x in t.lines),
            totes,
            robot_part,
            ended=void,  # its reservations were given back; its totes go to the reject chute
        )
        for e in evs:
            tote = e.data.get("tote")
            if e.type == "case_tote_retrieved" and tote in totes:
                totes[str(tote)].state = "retrieved"
            elif e.type == "tote_at_station" and isinstance(tote, str):
                co.station = str(e.data.get("chute"))
                if tote in totes:
                    totes[tote].state = "at_station"
                else:
                    co.robot_tote = tote
            elif e.type in ("requeued", "robot_assigned") and co.robot_tote is not None:
                co.robot_tote = None  # a robot picks the order's other lines again
        state.orders[rec.id] = co
        for t in totes.values():
            if t.state == "retrieved":  # on the conveyor: sorted like any tote
                state.flight.on_conveyor(state.trip(rec.id, t.tote, t.aisle, rec, void))
        return True

    def needs_robot(self, order_id: str) -> bool:
        """After a restart: the order still needs a robot for its other lines."""
        co = self.state.orders.get(order_id)
        return co is None or co.robot_part

    def robot_tote_at_station(self, order_id: str) -> bool:
        """After a restart: the robot's tote of the order is already at its station (the
        order waits for its AS/RS totes), not on the conveyor."""
        co = self.state.orders.get(order_id)
        return co is not None and co.robot_tote is not None

"""Releasing a B2B order's case lines to the AS/RS: which lines it serves, which rack totes hold
the cases, their reservation and the retrieves asked for.

A line with ``uom: case`` whose SKU the AS/RS holds is served from the rack. The totes are chosen
for the fewest totes: per line a tote already chosen if it covers what is left, else the
smallest tote that covers it, else the fullest; a tote asked for by anyone else is not taken.
The units are reserved *in those totes* (reference ``case-<order>``) and each tote is asked for
once, with the order's due time, delivery window and priority, which sequence the retrieves.
At most ``asrs.max_case_orders`` orders have their case totes out at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.asrs.case_picks.state import PURPOSE, CaseOrder, CasePickState, CaseTote
from controller.asrs.commands import AsrsRequestError
from controller.orders.model import OrderLine, OrderRecord, OrderStatus, OrderType
from controller.orders.waiting import (
    AsrsBusy,
    AsrsStockShort,
    AsrsUnavailable,
    StockRefused,
    Waiting,
)
from controller.store.asrs import AsrsRequest
from controller.store.inventory import InventoryError, ToteLine

log = logging.getLogger("controller.asrs.case_picks.picks")  # the case picks log under one name


@dataclass
class TotePlan:
    """The rack totes chosen for an order's case lines, one tote line per part of a line."""

    lines: list[ToteLine] = field(default_factory=list)

    def totes(self) -> list[str]:
        return list(dict.fromkeys(ln.tote for ln in self.lines))


def reservation_ref(order_id: str) -> str:
    """The reference of the order's tote reservations."""
    return f"case-{order_id}"


class CaseRelease:
    """Chooses an order's case lines and totes and hands them to the AS/RS."""

    def __init__(self, state: CasePickState) -> None:
        self.state = state
        self._checked: set[str] = set()  # orders whose leftovers of an earlier run were cleared

    def asrs_lines(self, rec: OrderRecord) -> list[OrderLine]:
        """The order's lines the AS/RS serves: B2B case lines of SKUs held in rack totes."""
        if self.state.asrs is None or rec.type is not OrderType.B2B:
            return []
        held = self.state.inventory.tote_view()
        return [ln for ln in rec.body.lines if ln.uom == "case" and ln.sku in held]

    def busy(self) -> AsrsBusy | None:
        """Why no further order's case totes may come out now (``asrs.max_case_orders``
        orders have theirs out), else None."""
        out = sum(1 for co in self.state.orders.values() if not co.ended)
        limit = self.state.config.asrs.max_case_orders
        return AsrsBusy(out, limit) if out >= limit else None

    async def release(self, rec: OrderRecord, robot_part: bool) -> Waiting | None:
        """Reserve the totes of the order's AS/RS lines and ask for them. Returns None when
        released, else why the order waits (short of stock, the AS/RS unavailable)."""
        state = self.state
        asrs = state.asrs
        assert asrs is not None
        if rec.id not in self._checked:  # once per run: an attempt cut short by a restart
            self._checked.add(rec.id)  # may have reserved or asked without recording it
            await asrs.withdraw_order(rec.id)
            await state.inventory.release(
                rec.id, trip_id=reservation_ref(rec.id), reason="not recorded"
            )
        lines = self.asrs_lines(rec)
        plan = await self.plan(lines)
        if isinstance(plan, AsrsStockShort):
            return plan
        try:
            await state.inventory.reserve_totes(rec.id, plan.lines, reservation_ref(rec.id))
        except InventoryError as exc:
            return StockRefused(str(exc))
        requested: list[AsrsRequest] = []
        try:
            for tote in plan.totes():
                requested.append(
                    await asrs.request_retrieve(
                        tote,
                        PURPOSE,
                        order_id=rec.id,
                        due=rec.due_at,
                        deliver_from=rec.body.deliver_from,
                        deliver_until=rec.body.deliver_until,
                        priority=rec.priority,
                    )
                )
        except AsrsRequestError as exc:
            await asrs.withdraw([r.id for r in requested])
            await state.inventory.release(rec.id, reason="AS/RS retrieve refused")
            return AsrsUnavailable(str(exc))
        co = CaseOrder(
            rec.id,
            frozenset(ln.line_id for ln in lines),
            {
                r.tote: CaseTote(r.tote, r.aisle, [ln for ln in plan.lines if ln.tote == r.tote])
                for r in requested
            },
            robot_part,
        )
        state.orders[rec.id] = co
        data = {"totes": [_tote_data(co.totes[r.tote], r) for r in requested]}
        if robot_part:
            await state.history.record(rec, "case_pick_released", data=data)
        else:
            await state.history.record(
                rec,
                "case_pick_released",
                OrderStatus.RELEASED,
                step="asrs_retrieving",
                waiting=None,
                data=data,
            )
        state.metrics.case_totes.labels("requested").inc(len(requested))
        log.info(
            "case picks released to the AS/RS",
            extra={"order": rec.id, "totes": [r.tote for r in requested]},
        )
        return None

    async def plan(self, lines: Sequence[OrderLine]) -> TotePlan | AsrsStockShort:
        """Rack totes for the lines: per line a tote the plan already takes if it covers what
        is left, else the smallest tote that covers it, else the fullest; a tote asked for by
        anyone else is not taken."""
        state = self.state
        assert state.asrs is not None
        busy = state.asrs.busy_totes()
        in_rack = await state.asrs.rack_totes()
        view = state.inventory.tote_view()
        plan = TotePlan()
        planned: dict[tuple[str, str], int] = {}  # (tote, sku) -> units this plan takes
        for ln in lines:
            need = ln.quantity * state.case_qty.get(ln.sku, 1)
            free = {
                tote: left
                for tote, units in view.get(ln.sku, {}).items()
                if tote in in_rack
                and tote not in busy
                and (left := units - planned.get((tote, ln.sku), 0)) > 0
            }
            rack_free = sum(free.values())
            while need > 0 and free:
                chosen = {t for t, _ in planned}
                covering = [t for t, u in free.items() if u >= need]
                tote = (
                    min(covering, key=lambda t: (t not in chosen, free[t], t))
                    if covering
                    else max(free, key=lambda t: (free[t], t))
                )
                take = min(need, free.pop(tote))
                plan.lines.append(ToteLine(ln.line_id, ln.sku, tote, take))
                planned[(tote, ln.sku)] = planned.get((tote, ln.sku), 0) + take
                need -= take
            if need > 0:
                return AsrsStockShort(ln.sku, need, rack_free)
        return plan


def _tote_data(t: CaseTote, r: AsrsRequest) -> dict[str, Any]:
    """A released tote as the order's history keeps it (rebuilt from it after a restart)."""
    return {
        "tote": t.tote,
        "aisle": t.aisle,
        "location": r.location,
        "request": r.id,
        "lines": [{"line_id": ln.line_id, "sku": ln.sku, "units": ln.quantity} for ln in t.lines],
    }

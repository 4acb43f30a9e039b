"""B2B case picks served from the AS/RS: totes out of the rack, to the order's station, back.

A B2B order line with ``uom: case`` whose SKU the AS/RS holds is served from the rack, not by a
robot. When the dispatcher releases the order, :meth:`CasePicks.release` chooses the rack totes
that hold the cases (fewest totes: the smallest tote that covers what is left, else the fullest),
reserves the units *in those totes* and asks the AS/RS for each tote (purpose ``case_pick``, with
the order's due time, delivery window and priority, which sequence the retrieves). Lines a robot
picks (eaches, and cases of SKUs the AS/RS does not hold) still go out on a robot trip; the
order's station task opens only when every tote of the order is there.

The path of one case tote, each step an event in the order's history:

- ``case_pick_released``: totes reserved and requested (``asrs_retrieving`` when no robot part);
- ``case_tote_retrieved``: the crane set it down at the P&D output, from where it rides the
  conveyor; the sorter routes it like the robot's tote, to the order's station;
- ``tote_at_station``: in the chute (the inventory moves the tote to ``STATION:<chute>``);
- ``sorted`` (``at_station``) once all of the order's totes are there: the station task lists
  them and expects each AS/RS line in cases;
- verification: the counted cases are taken out of the totes (the reservations consumed, each
  change a ledger movement), then every case tote is listed in the station's *returns*
  (``GET /v1/stations/{id}/returns``, :mod:`controller.asrs.returns`). The operator sends it
  back (``POST .../returns/{tote}``, the tote moves to ``RETURN:<aisle>``), and when it reaches
  the aisle's P&D input the AS/RS stores it, in a dual cycle with a waiting retrieve when there
  is one.

An order that ends any other way (cancelled, in exception) gives back its tote reservations,
withdraws the retrieves no crane has taken yet, and its totes still under way go to the reject
chute, from where they are returned the same way. Everything is rebuilt from the order history
and the inventory after a restart.

The class is put together from one module per concept: this module chooses the lines and totes
and releases them; :mod:`controller.asrs.case_picks.totes` follows the totes to the station and
their verification; :mod:`controller.asrs.case_picks.recovery` unwinds orders that end otherwise and
rebuilds everything after a restart; :mod:`controller.asrs.case_picks.state` holds the state they
share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.asrs.case_picks.recovery import CasePickRecovery
from controller.asrs.case_picks.state import PURPOSE, CaseOrder, CaseTote
from controller.asrs.case_picks.totes import CasePickTotes
from controller.asrs.commands import AsrsRequestError
from controller.orders.model import OrderLine, OrderRecord, OrderStatus, OrderType
from controller.store.asrs import AsrsRequest
from controller.store.inventory import InventoryError, ToteLine

__all__ = ["PURPOSE", "CasePicks", "Shortage"]

log = logging.getLogger(__name__)


@dataclass
class Shortage:
    reason: str


@dataclass
class _Plan:
    lines: list[ToteLine] = field(default_factory=list)

    def totes(self) -> list[str]:
        return list(dict.fromkeys(ln.tote for ln in self.lines))


class CasePicks(CasePickTotes, CasePickRecovery):
    """B2B case picks from the AS/RS (see the module docstring); its constructor is
    :class:`~controller.asrs.case_picks.state.CasePickState`'s."""

    # --- which lines -------------------------------------------------------------------------

    def asrs_lines(self, rec: OrderRecord) -> list[OrderLine]:
        """The order's lines the AS/RS serves: B2B case lines of SKUs held in rack totes."""
        if self.asrs is None or rec.type is not OrderType.B2B:
            return []
        held = self.inventory.tote_view()
        return [ln for ln in rec.body.lines if ln.uom == "case" and ln.sku in held]

    def released(self, order_id: str) -> frozenset[str]:
        """Lines of the order already handed to the AS/RS (the robot leaves them out)."""
        co = self.orders.get(order_id)
        return co.lines if co is not None else frozenset()

    def serves(self, order_id: str) -> bool:
        return order_id in self.orders

    def busy(self) -> str | None:
        """Why no further order's case totes may come out now (``asrs.max_case_orders``
        orders have theirs out), else None."""
        out = sum(1 for co in self.orders.values() if not co.ended)
        limit = self.config.asrs.max_case_orders
        return (
            f"asrs_busy: {out} orders' case totes out (at most {limit})" if out >= limit else None
        )

    # --- release -----------------------------------------------------------------------------

    async def release(self, rec: OrderRecord, robot_part: bool) -> str | None:
        """Reserve the totes of the order's AS/RS lines and ask for them. Returns None when
        released, else why the order waits (``stock_short: ...``, ``asrs_unavailable: ...``)."""
        assert self.asrs is not None
        if rec.id not in self._checked:  # once per run: an attempt cut short by a restart
            self._checked.add(rec.id)  # may have reserved or asked without recording it
            await self.asrs.withdraw_order(rec.id)
            await self.inventory.release(rec.id, trip_id=self._ref(rec.id), reason="not recorded")
        lines = self.asrs_lines(rec)
        plan = await self._plan(lines)
        if isinstance(plan, Shortage):
            return plan.reason
        try:
            await self.inventory.reserve_totes(rec.id, plan.lines, self._ref(rec.id))
        except InventoryError as exc:
            return f"stock_short: {exc}"
        requested: list[AsrsRequest] = []
        try:
            for tote in plan.totes():
                requested.append(
                    await self.asrs.request_retrieve(
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
            await self.asrs.withdraw([r.id for r in requested])
            await self.inventory.release(rec.id, reason="AS/RS retrieve refused")
            return f"asrs_unavailable: {exc}"
        co = CaseOrder(
            rec.id,
            frozenset(ln.line_id for ln in lines),
            {
                r.tote: CaseTote(r.tote, r.aisle, [ln for ln in plan.lines if ln.tote == r.tote])
                for r in requested
            },
            robot_part,
        )
        self.orders[rec.id] = co
        data = {"totes": [self._tote_data(co.totes[r.tote], r) for r in requested]}
        if robot_part:
            await self.history.record(rec, "case_pick_released", data=data)
        else:
            await self.history.record(
                rec,
                "case_pick_released",
                OrderStatus.RELEASED,
                step="asrs_retrieving",
                waiting_reason=None,
                data=data,
            )
        self.metrics.case_totes.labels("requested").inc(len(requested))
        log.info(
            "case picks released to the AS/RS",
            extra={"order": rec.id, "totes": [r.tote for r in requested]},
        )
        return None

    @staticmethod
    def _ref(order_id: str) -> str:
        """The reference of the order's tote reservations."""
        return f"case-{order_id}"

    async def _plan(self, lines: Sequence[OrderLine]) -> _Plan | Shortage:
        """Rack totes for the lines: per line a tote the plan already takes if it covers what
        is left, else the smallest tote that covers it, else the fullest; a tote asked for by
        anyone else is not taken."""
        assert self.asrs is not None
        busy = self.asrs.busy_totes()
        in_rack = await self.asrs.rack_totes()
        view = self.inventory.tote_view()
        plan = _Plan()
        planned: dict[tuple[str, str], int] = {}  # (tote, sku) -> units this plan takes
        for ln in lines:
            need = ln.quantity * self.case_qty.get(ln.sku, 1)
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
                return Shortage(
                    f"stock_short: {ln.sku} missing {need} in the AS/RS "
                    f"({rack_free} units free in rack totes)"
                )
        return plan

    @staticmethod
    def _tote_data(t: CaseTote, r: AsrsRequest) -> dict[str, Any]:
        return {
            "tote": t.tote,
            "aisle": t.aisle,
            "location": r.location,
            "request": r.id,
            "lines": [
                {"line_id": ln.line_id, "sku": ln.sku, "units": ln.quantity} for ln in t.lines
            ],
        }

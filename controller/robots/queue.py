"""The orders not yet released, kept in release order as they come and go.

A dispatch round looks at the head of the queue only: the few orders that could go to the robots
free now. Sorting the whole queue in every round, or writing a waiting reason for every queued
order, would make a round's cost grow with the queue: with 20,000 orders queued, robots would
wait for the dispatcher. So the queue keeps its orders sorted by
:func:`routing.dispatch.release_key` as they are added (a binary search and an insert), orders
outside their delivery window wait in a heap by the time their window opens, and removed or
re-keyed orders leave stale entries that are skipped and swept out now and then. Orders with
case lines for the AS/RS are indexed on their own as well, since their totes are asked for
independently of the robots.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from controller.orders.model import OrderRecord
from controller.orders.waiting import Waiting
from routing import dispatch

Entry = tuple[dispatch.ReleaseKey, str]


@dataclass
class Pending:
    """An order in the queue, with the waiting reason last recorded for it."""

    record: OrderRecord
    seq: int
    waiting: Waiting | None = None
    asrs: bool = False  # has case lines the AS/RS serves (not yet asked for)
    key: dispatch.ReleaseKey | None = None  # its place while in the sorted queue
    windowed: bool = False  # waits in the heap for its delivery window

    def order(self) -> dispatch.PendingOrder:
        r = self.record
        return dispatch.PendingOrder(r.id, r.due_at, r.priority, self.seq, r.body.deliver_from)


class ReleaseQueue:
    """A mapping of order id to :class:`Pending`, iterable in release order."""

    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._sorted: list[Entry] = []
        self._asrs: list[Entry] = []
        self._windows: list[tuple[datetime, int, str]] = []
        self._stale = 0
        self._deferred: list[Pending] = []  # put in the heap since the last deferred() call

    # --- the mapping ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._pending

    def __getitem__(self, order_id: str) -> Pending:
        return self._pending[order_id]

    def __delitem__(self, order_id: str) -> None:
        if self.pop(order_id) is None:
            raise KeyError(order_id)

    def get(self, order_id: str) -> Pending | None:
        return self._pending.get(order_id)

    def values(self) -> list[Pending]:
        return list(self._pending.values())

    def pop(self, order_id: str, default: Pending | None = None) -> Pending | None:
        p = self._pending.pop(order_id, None)
        if p is None:
            return default
        if p.key is not None:
            self._stale += 2 if p.asrs else 1
        self._sweep()
        return p

    # --- coming and going -------------------------------------------------------------------

    def add(self, p: Pending, now: datetime) -> None:
        """Queue ``p`` (replacing an entry of the same order)."""
        self.pop(p.record.id)
        self._pending[p.record.id] = p
        order = p.order()
        if dispatch.releasable(order, now):
            self._insert(p)
        else:
            assert order.deliver_from is not None
            p.windowed = True
            heapq.heappush(self._windows, (order.deliver_from, p.seq, p.record.id))
            self._deferred.append(p)

    def changed(self, record: OrderRecord) -> Pending | None:
        """The order's priority or due time changed: it moves to its new place."""
        p = self._pending.get(record.id)
        if p is None:
            return None
        p.record = record
        if p.key is not None and p.key != dispatch.release_key(p.order()):
            self._stale += 2 if p.asrs else 1
            self._insert(p)
            self._sweep()
        return p

    def served_by_asrs(self, order_id: str) -> None:
        """The order's case lines were handed to the AS/RS: it leaves the AS/RS index."""
        p = self._pending.get(order_id)
        if p is not None and p.asrs:
            p.asrs = False
            if p.key is not None:
                self._stale += 1  # its entry in the AS/RS index is now stale

    def deferred(self) -> list[Pending]:
        """Orders queued outside their delivery window since the last call (to say why)."""
        out, self._deferred = self._deferred, []
        return [p for p in out if self._pending.get(p.record.id) is p]

    # --- release order ----------------------------------------------------------------------

    def in_release_order(self, now: datetime, *, asrs_only: bool = False) -> Iterator[Pending]:
        """The releasable orders, first to go first; orders whose window opened by ``now`` join
        first. The queue may change while this is iterated: removed orders are skipped."""
        self._open_windows(now)
        seen: set[str] = set()
        for key, order_id in list(self._asrs if asrs_only else self._sorted):
            p = self._pending.get(order_id)
            if p is None or p.key != key or (asrs_only and not p.asrs) or order_id in seen:
                continue
            seen.add(order_id)
            yield p

    def _open_windows(self, now: datetime) -> None:
        while self._windows and self._windows[0][0] <= now:
            _, _, order_id = heapq.heappop(self._windows)
            p = self._pending.get(order_id)
            if p is not None and p.windowed:
                p.windowed = False
                self._insert(p)

    def _insert(self, p: Pending) -> None:
        key = dispatch.release_key(p.order())
        p.key = key
        entry = (key, p.record.id)
        bisect.insort(self._sorted, entry)
        if p.asrs:
            bisect.insort(self._asrs, entry)

    def _sweep(self) -> None:
        """Drop stale entries once they are as many as the live ones."""
        if self._stale < 1024 or self._stale < len(self._pending):
            return
        live = {oid: p.key for oid, p in self._pending.items() if p.key is not None}
        self._sorted = [e for e in self._sorted if live.get(e[1]) == e[0]]
        self._asrs = [e for e in self._asrs if live.get(e[1]) == e[0] and self._pending[e[1]].asrs]
        self._stale = 0

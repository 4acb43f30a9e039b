"""Orders reaching the active controller through the store, whichever controller's API took them.

On a line with a standby both controllers' APIs accept orders, changes and cancel requests into
the shared store; only the active controller acts on them. :class:`FeedIntake` follows the
store's event feed from where the active controller started and hands it each order accepted
(``accepted``), changed (``updated``) or asked to be cancelled (``cancel_requested``), in the
order the store committed them. Writes of this process wake it at once; those of the other
controller are found within ``poll_seconds``.

The controller's start-up resumes the orders the store holds (:meth:`Orchestrator.resume`) after
:meth:`FeedIntake.start` has noted where the feed stood, so an order accepted in between is both
resumed and in the feed: the ids resumed are handed over once only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from controller.orders.model import OrderStatus
from controller.service.orchestrator import Orchestrator
from controller.store.base import OrderStore

log = logging.getLogger(__name__)

PAGE = 500


class FeedIntake:
    """Follows the event feed for the orchestrator; see the module's docstring."""

    def __init__(
        self, store: OrderStore, orchestrator: Orchestrator, *, poll_seconds: float = 0.5
    ) -> None:
        self._store = store
        self._orchestrator = orchestrator
        self._poll = poll_seconds
        self._after = 0
        self._resumed: set[str] = set()
        self._window_end = 0  # events up to here may be of orders resumed at start-up

    async def start(self) -> None:
        """Note where the feed stands, before the orders the store holds are resumed."""
        self._after = await self._store.last_event_seq()

    async def resumed(self, order_ids: Iterable[str]) -> None:
        """The orders the start-up resumed: their ``accepted`` events in the feed are skipped."""
        self._resumed = set(order_ids)
        self._window_end = await self._store.last_event_seq()

    async def run(self) -> None:
        while True:
            events = await self._store.events_after(self._after, PAGE)
            for event in events:
                await self._hand_over(event.seq, event.order_id, event.type)
                self._after = event.seq
            if len(events) < PAGE:
                await self._store.wait_for_event(self._after, self._poll)

    async def _hand_over(self, seq: int, order_id: str, kind: str) -> None:
        if kind not in ("accepted", "updated", "cancel_requested"):
            return
        if kind == "accepted" and seq <= self._window_end and order_id in self._resumed:
            self._resumed.discard(order_id)
            return
        record = await self._store.get_order(order_id)
        if record is None or record.status.terminal:
            return
        if kind == "accepted":
            if record.status is OrderStatus.ACCEPTED:
                self._orchestrator.order_accepted(record)
        elif kind == "updated":
            self._orchestrator.order_changed(record)
        else:
            self._orchestrator.cancel_requested(record)

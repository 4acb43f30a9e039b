"""A queue of device events that knows how far its consumer has got.

Each kind of device (the robots, the conveyor with its sorter, the AS/RS cranes) reports into a
queue of its own, handled by a task of its own. Normally a robot's report of a drop, or a
crane's of a retrieval, is handled long before the tote reaches the scanner; but when that
consumer waits (for the order store to take a ledger row, say) the conveyor goes on and would
record a tote's sortation before its picks are booked. :class:`DeviceEventQueue` counts the
events put in and the events handled, so that a later step can wait until every event that
came in before it has been handled (:meth:`DeviceEventQueue.caught_up`): what the line did is
recorded in the order it happened. When the consumer keeps up, the wait returns at once.

It also counts, per robot, the events not handled yet (:meth:`DeviceEventQueue.pending`): a new
order replaces what a robot remembers of its last one (VDA 5050 drops the finished order's action
states), so traffic control sends a robot none while its last reports are still unrecorded.
"""

from __future__ import annotations

import asyncio

from devices import base as dev


class DeviceEventQueue(asyncio.Queue[dev.DeviceEvent]):
    """One kind of device's events, in the order they came, for one consumer."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0  # events put in so far
        self.handled = 0  # events the consumer is done with (handled or failed)
        self._progress = asyncio.Condition()
        self._pending: dict[str, int] = {}  # robot -> its events not handled yet
        self._taken: dev.DeviceEvent | None = None  # the event the consumer took last

    def put_nowait(self, item: dev.DeviceEvent) -> None:
        super().put_nowait(item)  # Queue.put ends here too
        self.received += 1
        serial = getattr(item, "serial", None)
        if isinstance(serial, str):
            self._pending[serial] = self._pending.get(serial, 0) + 1

    def get_nowait(self) -> dev.DeviceEvent:
        item = super().get_nowait()  # Queue.get ends here too
        self._taken = item
        return item

    def pending(self, serial: str) -> int:
        """The robot's events put in and not handled yet (the one being handled included)."""
        return self._pending.get(serial, 0)

    async def done(self) -> None:
        """The consumer is done with the event it took last."""
        taken, self._taken = self._taken, None
        serial = getattr(taken, "serial", None)
        if isinstance(serial, str) and self._pending.get(serial, 0) > 0:
            self._pending[serial] -= 1
            if not self._pending[serial]:
                del self._pending[serial]
        async with self._progress:
            self.handled += 1
            self._progress.notify_all()

    async def caught_up(self, mark: int) -> None:
        """Wait until the first ``mark`` events put in are handled."""
        if self.handled >= mark:
            return
        async with self._progress:
            await self._progress.wait_for(lambda: self.handled >= mark)

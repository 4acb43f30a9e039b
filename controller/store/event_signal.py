"""In-process notification of new history events, so readers of the event feed wait without
polling the database.

The store moves :attr:`EventSignal.head` forward after every committed write that added events;
waiters sleep on an :class:`asyncio.Condition` until the head passes the ``seq`` they have seen.
Events written by another process on the same file are not signalled; readers still find them
on their next read (the SSE stream re-reads at every heartbeat).
"""

from __future__ import annotations

import asyncio


class EventSignal:
    """The newest committed event ``seq`` known to this process, and waiting for a newer one."""

    def __init__(self, head: int = 0) -> None:
        self._head = head
        self._changed = asyncio.Condition()

    @property
    def head(self) -> int:
        return self._head

    def reset(self, head: int) -> None:
        """Set the head without waking anyone (when the store opens)."""
        self._head = head

    async def advance(self, seq: int) -> None:
        """Record that events up to ``seq`` are committed and wake the waiters."""
        if seq <= self._head:
            return
        self._head = seq
        async with self._changed:
            self._changed.notify_all()

    async def wait_beyond(self, after_seq: int, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait up to ``timeout`` wall seconds for ``head > after_seq``; True if it is."""
        if self._head > after_seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: self._head > after_seq)
        except TimeoutError:
            return self._head > after_seq
        return True

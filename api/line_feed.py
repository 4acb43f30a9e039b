"""The live line view as a stream: one snapshot per interval, whatever the number of watchers.

:class:`LineFeed` builds the line view (``GET /v1/line``'s document) at most once per
:data:`MIN_AGE` seconds and shares it between every stream; a stream sends a snapshot only when
it changed since the one it sent last, and a heartbeat comment when nothing changed for
:data:`HEARTBEAT_SECONDS`. Each message is a whole snapshot, so a client that joins or
reconnects needs nothing else and a slow client simply skips snapshots: the stream waits for
the client to take each message before it builds the next (nothing queues up per client).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

MIN_AGE = 0.1  # wall seconds a built snapshot is shared before it is built again
HEARTBEAT_SECONDS = 15.0  # wall seconds without a change before a heartbeat comment
RETRY_MS = 2000  # reconnection delay suggested to clients
MIN_INTERVAL = 0.2
MAX_INTERVAL = 10.0
DEFAULT_INTERVAL = 0.5


@dataclass(frozen=True)
class Snapshot:
    version: int  # counts the changes since the feed was made
    data: str  # the line view as JSON


class LineFeed:
    """The line view, built at most every :data:`MIN_AGE` seconds for every stream."""

    def __init__(self, render: Callable[[], str]) -> None:
        self._render = render  # the line view as JSON
        self._built = float("-inf")
        self._current = Snapshot(0, "")

    def current(self) -> Snapshot:
        now = time.monotonic()
        if now - self._built >= MIN_AGE:
            data = self._render()
            if data != self._current.data:
                self._current = Snapshot(self._current.version + 1, data)
            self._built = now
        return self._current


def format_snapshot(snapshot: Snapshot) -> bytes:
    """One SSE message: ``event: line`` with the view as ``data`` (JSON has no raw newline)."""
    return f"event: line\ndata: {snapshot.data}\n\n".encode()


async def line_stream(
    feed: LineFeed, interval: float, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncIterator[bytes]:
    """The view now, then each change, looked for every ``interval`` wall seconds."""
    yield f"retry: {RETRY_MS}\n: linectl line view every {interval:g} s\n\n".encode()
    sent = -1
    quiet_since = time.monotonic()
    while True:
        snapshot = feed.current()
        now = time.monotonic()
        if snapshot.version != sent:
            yield format_snapshot(snapshot)
            sent, quiet_since = snapshot.version, now
        elif now - quiet_since >= heartbeat:
            yield b": heartbeat\n\n"
            quiet_since = now
        await anyio.sleep(interval)

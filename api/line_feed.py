"""The live line view as a stream, built once for every watcher.

:class:`LineFeed` builds the line view (``GET /v1/line``'s document) at most once per
:data:`MIN_AGE` seconds and shares it between every stream; a stream sends a snapshot only when
it changed since the one it sent last (the view's own time and the time the orders were counted
do not count as a change), and a heartbeat comment when nothing changed for
:data:`HEARTBEAT_SECONDS`. Each message is a whole snapshot, so a client that joins or
reconnects needs nothing else and a slow client simply skips snapshots: the stream waits for
the client to take each message before it builds the next (nothing queues up per client).
"""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """A line view built for the stream: ``data`` is sent; ``key`` is what counts as a change
    (the view without the clock readings that differ on every build, such as its time)."""

    key: str
    data: str


@dataclass(frozen=True)
class Snapshot:
    version: int  # counts the changes since the feed was made
    data: str  # the line view as JSON


class LineFeed:
    """The line view, built at most every :data:`MIN_AGE` seconds for every stream."""

    def __init__(self, render: Callable[[], Rendered]) -> None:
        self._render = render
        self._built = float("-inf")
        self._key: str | None = None
        self._current = Snapshot(0, "")
        self._failing = False  # the last build failed (logged once until one succeeds)

    def current(self) -> Snapshot:
        """The latest snapshot; raises what building it raised (logged once per failure run)."""
        now = time.monotonic()
        if now - self._built >= MIN_AGE:
            try:
                rendered = self._render()
            except Exception:
                if not self._failing:
                    log.exception("line view could not be built; its streams end")
                self._failing = True
                raise
            self._failing = False
            if rendered.key != self._key:
                self._key = rendered.key
                self._current = Snapshot(self._current.version + 1, rendered.data)
            self._built = now
        return self._current


def format_snapshot(snapshot: Snapshot) -> bytes:
    """One SSE message: ``event: line`` with the view as ``data`` (JSON has no raw newline)."""
    return f"event: line\ndata: {snapshot.data}\n\n".encode()


async def line_stream(
    feed: LineFeed, interval: float, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncIterator[bytes]:
    """The view now, then each change, looked for every ``interval`` wall seconds. Ends when
    the view cannot be built (the client reconnects)."""
    yield f"retry: {RETRY_MS}\n: linectl line view every {interval:g} s\n\n".encode()
    sent = -1
    quiet_since = time.monotonic()
    while True:
        try:
            snapshot = feed.current()
        except Exception:
            return  # logged by the feed
        now = time.monotonic()
        if snapshot.version != sent:
            yield format_snapshot(snapshot)
            sent, quiet_since = snapshot.version, now
        elif now - quiet_since >= heartbeat:
            yield b": heartbeat\n\n"
            quiet_since = now
        await anyio.sleep(interval)

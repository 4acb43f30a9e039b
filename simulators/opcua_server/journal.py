"""A device's journal of completed commands: every entry numbered, the last ones in a ring.

A client that lost its session, or a controller restarted, asks for the entries after the last
sequence number it handled and learns every completion it missed, as long as the ring still
holds them (the last :data:`JOURNAL_SIZE` entries). The simulators journal different entries
(a sorter's diverts, a crane's transports); each entry carries its ``sequence`` number.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

JOURNAL_SIZE = 10_000


class Numbered(Protocol):
    @property
    def sequence(self) -> int: ...


E = TypeVar("E", bound=Numbered)


class Journal(Generic[E]):
    """Numbers entries 1, 2, ... and keeps the last ``size`` of them."""

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        self._entries: deque[E] = deque(maxlen=size)
        self._last = 0

    @property
    def last(self) -> int:
        """Highest sequence number given so far (0 before the first entry)."""
        return self._last

    def append(self, make: Callable[[int], E]) -> E:
        """Add the entry ``make`` builds from the next sequence number."""
        entry = make(self._last + 1)
        self._last = entry.sequence
        self._entries.append(entry)
        return entry

    def since(self, sequence: int) -> list[E]:
        """Entries with a sequence number above ``sequence``, oldest first; when ``sequence``
        is older than the ring, every entry the ring still holds."""
        newer: list[E] = []
        for entry in reversed(self._entries):
            if entry.sequence <= sequence:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    def entries(self) -> list[E]:
        return list(self._entries)

    def restore(self, last: int, entries: Iterable[E]) -> None:
        """Replace the journal (after a restart): ``entries`` ascending, none above ``last``."""
        kept = list(entries)
        sequences = [e.sequence for e in kept]
        if sequences != sorted(set(sequences)) or (sequences and sequences[-1] > last):
            raise ValueError("journal entries must have ascending sequences up to last")
        self._entries.clear()
        self._entries.extend(kept)
        self._last = last

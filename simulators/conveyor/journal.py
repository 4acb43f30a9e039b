"""The sorter's divert journal: every completed divert, numbered, in a bounded ring.

A client that lost its session (or a controller restarted) asks for the entries after the last
sequence number it has seen and so learns every divert it missed, as long as the ring still
holds them (the last :data:`JOURNAL_SIZE` entries).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

JOURNAL_SIZE = 10_000


@dataclass(frozen=True)
class JournalEntry:
    sequence: int
    item_id: str
    tote_id: str
    chute_id: str
    ok: bool


class DivertJournal:
    """Numbers completed diverts 1, 2, ... and keeps the last ``size`` of them."""

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._last = 0

    @property
    def last(self) -> int:
        """Highest sequence number given so far (0 before the first divert)."""
        return self._last

    def record(self, item_id: str, tote_id: str, chute_id: str, ok: bool) -> int:
        self._last += 1
        self._entries.append(JournalEntry(self._last, item_id, tote_id, chute_id, ok))
        return self._last

    def since(self, sequence: int) -> list[JournalEntry]:
        """Entries with a sequence number above ``sequence``, oldest first; when ``sequence``
        is older than the ring, every entry the ring still holds."""
        newer: list[JournalEntry] = []
        for entry in reversed(self._entries):
            if entry.sequence <= sequence:
                break
            newer.append(entry)
        newer.reverse()
        return newer

    def entries(self) -> list[JournalEntry]:
        return list(self._entries)

    def restore(self, last: int, entries: Iterable[JournalEntry]) -> None:
        """Replace the journal (after a restart): ``entries`` ascending, none above ``last``."""
        kept = list(entries)
        sequences = [e.sequence for e in kept]
        if sequences != sorted(set(sequences)) or (sequences and sequences[-1] > last):
            raise ValueError("journal entries must have ascending sequences up to last")
        self._entries.clear()
        self._entries.extend(kept)
        self._last = last

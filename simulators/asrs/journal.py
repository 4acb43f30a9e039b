"""A crane's command journal: every finished transport, numbered, in a bounded ring.

The same scheme as the sorter's divert journal (:mod:`simulators.conveyor.journal`): a client
that lost its session, or a controller restarted, asks for the entries after the last sequence
number it handled and learns every completion it missed, while the ring still holds them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

JOURNAL_SIZE = 10_000


@dataclass(frozen=True)
class JournalEntry:
    sequence: int
    command_id: str
    kind: str  # Store | Retrieve
    tote_id: str
    location: str
    ok: bool
    reason: str  # "" when ok
    dual: bool  # one half of a dual cycle
    cycle_seconds: float  # line seconds of the crane's cycle (0 when it failed)


class CraneJournal:
    """Numbers finished transports 1, 2, ... and keeps the last ``size`` of them."""

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=size)
        self._last = 0

    @property
    def last(self) -> int:
        """Highest sequence number given so far (0 before the first completion)."""
        return self._last

    def record(
        self,
        command_id: str,
        kind: str,
        tote_id: str,
        location: str,
        *,
        ok: bool,
        reason: str,
        dual: bool,
        cycle_seconds: float,
    ) -> JournalEntry:
        self._last += 1
        entry = JournalEntry(
            self._last, command_id, kind, tote_id, location, ok, reason, dual, cycle_seconds
        )
        self._entries.append(entry)
        return entry

    def since(self, sequence: int) -> list[JournalEntry]:
        """Entries above ``sequence``, oldest first; when ``sequence`` is older than the ring,
        every entry the ring still holds."""
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

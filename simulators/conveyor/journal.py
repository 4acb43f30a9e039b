"""The sorter's divert journal: every completed divert, numbered, in a bounded ring
(:mod:`simulators.opcua_server.journal`)."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.opcua_server.journal import JOURNAL_SIZE, Journal


@dataclass(frozen=True)
class JournalEntry:
    sequence: int
    item_id: str
    tote_id: str
    chute_id: str
    ok: bool


class DivertJournal(Journal[JournalEntry]):
    """Numbers completed diverts 1, 2, ... and keeps the last ``size`` of them."""

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        super().__init__(size)

    def record(self, item_id: str, tote_id: str, chute_id: str, ok: bool) -> int:
        """Journal a divert; returns its sequence number."""
        entry = self.append(lambda seq: JournalEntry(seq, item_id, tote_id, chute_id, ok))
        return entry.sequence

"""A crane's command journal: every finished transport, numbered, in a bounded ring
(:mod:`simulators.opcua_server.journal`)."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.opcua_server.journal import JOURNAL_SIZE, Journal


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


class CraneJournal(Journal[JournalEntry]):
    """Numbers finished transports 1, 2, ... and keeps the last ``size`` of them."""

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        super().__init__(size)

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
        return self.append(
            lambda seq: JournalEntry(
                seq, command_id, kind, tote_id, location, ok, reason, dual, cycle_seconds
            )
        )

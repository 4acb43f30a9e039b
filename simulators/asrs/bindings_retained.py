"""The AS/RS simulator's retentive state: kept in a state file, taken over after a restart.

With a state file the bindings write every crane's retentive state there
(:mod:`simulators.asrs.retained`: rack contents, P&D input, the tote on the crane, the commands
pending and known, the journal) right after every change of what is retained; a write that
fails is logged once and tried again at the next change. :meth:`BindingsRetained.restore`
takes the state over after a restart, before clients connect.
"""

from __future__ import annotations

import asyncio
import logging

from routing.rack import BadLocation
from simulators.asrs.bindings_state import BindingsState
from simulators.asrs.journal import JournalEntry
from simulators.asrs.motion_values import Command, Fact, Kind, Transport
from simulators.asrs.retained import (
    RetainedAsrs,
    RetainedCommand,
    RetainedCrane,
    RetainedEntry,
    RetainedTransport,
    write_state,
)

log = logging.getLogger("simulators.asrs.bindings")  # the bindings log under one name


def _transport(t: Transport | None) -> RetainedTransport | None:
    if t is None:
        return None
    return RetainedTransport(kind=t.kind.value, tote=t.tote, location=t.location)


def _command(c: Command) -> RetainedCommand:
    return RetainedCommand(
        command_id=c.command_id, store=_transport(c.store), retrieve=_transport(c.retrieve)
    )


def _from_transport(t: RetainedTransport | None) -> Transport | None:
    return None if t is None else Transport(Kind(t.kind), t.tote, t.location)


def _from_command(c: RetainedCommand) -> Command:
    return Command(c.command_id, _from_transport(c.store), _from_transport(c.retrieve))


class BindingsRetained(BindingsState):
    """Keeps and restores the retentive state (mixed into
    :class:`~simulators.asrs.bindings.AsrsBindings`)."""

    def retained(self) -> RetainedAsrs:
        cranes = []
        for aisle, m in self.cranes.items():
            cranes.append(
                RetainedCrane(
                    crane=m.crane_id,
                    aisle=aisle,
                    contents=dict(m.contents),
                    pd_input=list(m.pd_input),
                    load=_transport(m.load),
                    pending=[_command(c) for c in m.pending],
                    known=[_command(c) for c in m.known.values()],
                    journal_last=m.journal.last,
                    journal=[RetainedEntry(**vars(e)) for e in m.journal.entries()],
                )
            )
        return RetainedAsrs(cranes=cranes)

    async def restore(self, state: RetainedAsrs) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line."""
        by_aisle = {c.aisle: c for c in state.cranes}
        if set(by_aisle) != set(self.cranes):
            raise ValueError(
                f"the state file has aisles {sorted(by_aisle)}, the line {sorted(self.cranes)}"
            )
        async with self._lock:
            now = self._clock.now()
            facts: list[Fact] = []
            for aisle, r in by_aisle.items():
                model = self.cranes[aisle]
                if r.crane != model.crane_id:
                    raise ValueError(f"aisle {aisle}: crane {r.crane!r}, not {model.crane_id!r}")
                try:
                    facts += model.restore(
                        r.contents,
                        r.pd_input,
                        _from_transport(r.load),
                        [_from_command(c) for c in r.pending],
                        [_from_command(c) for c in r.known],
                        r.journal_last,
                        [JournalEntry(**e.model_dump()) for e in r.journal],
                        now,
                    )
                except BadLocation as exc:
                    raise ValueError(f"aisle {aisle}: {exc}") from None
            await self._publish(facts)
            await self._retain()
        for aisle, r in by_aisle.items():
            log.info(
                "retained state loaded",
                extra={
                    "crane": r.crane,
                    "totes": len(r.contents),
                    "aborted": len(r.pending),
                    "journal_last": self.cranes[aisle].journal.last,
                },
            )

    async def _retain(self) -> None:
        if self._state_file is None:
            return
        key = tuple(m.revision for m in self.cranes.values())
        if key == self._saved:
            return
        try:
            await asyncio.to_thread(write_state, self._state_file, self.retained())
        except OSError as exc:
            if not self._save_failing:
                log.error(
                    "retained state not written",
                    extra={"file": str(self._state_file), "error": str(exc)},
                )
            self._save_failing = True
            return
        if self._save_failing:
            log.info("retained state written again", extra={"file": str(self._state_file)})
        self._save_failing = False
        self._saved = key

"""The AS/RS simulator's retentive state: kept in a state file, taken over after a restart.

With a state file every crane's retentive state (:mod:`simulators.asrs.retained`: rack
contents, P&D input, the tote on the crane, the commands pending and known, the journal) is
written right after every change of what is retained; a write that fails is logged once and
tried again at the next change. :meth:`AsrsRetention.restore` takes the state over after a
restart, before clients connect.
"""

from __future__ import annotations

import logging
from pathlib import Path

from routing.rack import BadLocation
from simulators.asrs.cranes import AsrsCranes
from simulators.asrs.journal import JournalEntry
from simulators.asrs.motion_values import Command, Fact, Kind, Transport
from simulators.asrs.publisher import AsrsPublisher
from simulators.asrs.retained import (
    RetainedAsrs,
    RetainedCommand,
    RetainedCrane,
    RetainedEntry,
    RetainedTransport,
)
from simulators.opcua_server.retained import RetainedFile

log = logging.getLogger("simulators.asrs.bindings")  # the bindings log under one name


def retained_transport(t: Transport | None) -> RetainedTransport | None:
    if t is None:
        return None
    return RetainedTransport(kind=t.kind.value, tote=t.tote, location=t.location)


def retained_command(c: Command) -> RetainedCommand:
    return RetainedCommand(
        command_id=c.command_id,
        store=retained_transport(c.store),
        retrieve=retained_transport(c.retrieve),
    )


def transport_of(t: RetainedTransport | None) -> Transport | None:
    return None if t is None else Transport(Kind(t.kind), t.tote, t.location)


def command_of(c: RetainedCommand) -> Command:
    return Command(c.command_id, transport_of(c.store), transport_of(c.retrieve))


class AsrsRetention:
    """Keeps the cranes' state file and restores the cranes from it."""

    def __init__(
        self, cranes: AsrsCranes, publisher: AsrsPublisher, state_file: Path | None
    ) -> None:
        self._cranes = cranes
        self._publisher = publisher
        self._file = RetainedFile(state_file, log, {})

    def retained(self) -> RetainedAsrs:
        cranes = []
        for aisle, m in self._cranes.cranes.items():
            cranes.append(
                RetainedCrane(
                    crane=m.crane_id,
                    aisle=aisle,
                    contents=dict(m.contents),
                    pd_input=list(m.pd_input),
                    load=retained_transport(m.load),
                    pending=[retained_command(c) for c in m.pending],
                    known=[retained_command(c) for c in m.known.values()],
                    journal_last=m.journal.last,
                    journal=[RetainedEntry(**vars(e)) for e in m.journal.entries()],
                )
            )
        return RetainedAsrs(cranes=cranes)

    async def retain(self) -> None:
        """Write the retained state if a crane's revision changed (under the lock, so the
        file follows the changes in order)."""
        key = tuple(m.revision for m in self._cranes.cranes.values())
        if self._file.due(key):
            await self._file.write(key, self.retained())

    async def restore(self, state: RetainedAsrs) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line."""
        models = self._cranes.cranes
        by_aisle = {c.aisle: c for c in state.cranes}
        if set(by_aisle) != set(models):
            raise ValueError(
                f"the state file has aisles {sorted(by_aisle)}, the line {sorted(models)}"
            )
        async with self._cranes.lock:
            now = self._cranes.clock.now()
            facts: list[Fact] = []
            for aisle, r in by_aisle.items():
                model = models[aisle]
                if r.crane != model.crane_id:
                    raise ValueError(f"aisle {aisle}: crane {r.crane!r}, not {model.crane_id!r}")
                try:
                    facts += model.restore(
                        r.contents,
                        r.pd_input,
                        transport_of(r.load),
                        [command_of(c) for c in r.pending],
                        [command_of(c) for c in r.known],
                        r.journal_last,
                        [JournalEntry(**e.model_dump()) for e in r.journal],
                        now,
                    )
                except BadLocation as exc:
                    raise ValueError(f"aisle {aisle}: {exc}") from None
            await self._publisher.publish(facts)
            await self.retain()
        for aisle, r in by_aisle.items():
            log.info(
                "retained state loaded",
                extra={
                    "crane": r.crane,
                    "totes": len(r.contents),
                    "aborted": len(r.pending),
                    "journal_last": models[aisle].journal.last,
                },
            )

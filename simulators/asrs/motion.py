"""The crane motion and command model of one aisle: queue, cycles, rack contents. Pure.

:class:`CraneModel` takes commands (:meth:`CraneModel.submit`), runs them one after another and
moves the crane with :mod:`routing.crane` (both axes at once, trapezoidal profiles), so a command
takes exactly the cycle time the sizing tool computes. Time is an argument (``now``, line
seconds); :meth:`CraneModel.step` advances the crane to ``now`` and returns the facts of what
happened since (commands finished, totes delivered at the P&D output), in order.

Cycles (the crane starts and ends each at the P&D point):

- ``Store``: pick up at the P&D input, travel out, deposit, travel back (single cycle);
- ``Retrieve``: travel out, pick up, travel back, deposit at the P&D output (single cycle);
- ``DualCommand``: pick up the store tote, travel to its location, deposit, travel straight to
  the retrieve location, pick up, travel back, deposit at the P&D output (dual cycle).

A command finishes when its cycle ends (both halves of a dual command at the end of the dual
cycle, the store half first). Physical changes (a tote leaving the P&D input, entering or
leaving a location) happen at the end of each pick-up or deposit.

The commands, answers and facts are the values of :mod:`simulators.asrs.motion_values`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from routing.crane import PD_POINT, Kinematics, Point, position_at, travel_time
from routing.rack import BadLocation, Rack, parse_location
from simulators.asrs.journal import CraneJournal, JournalEntry
from simulators.asrs.motion_values import (
    Accepted,
    Command,
    CommandFinished,
    CraneState,
    Fact,
    Kind,
    Refusal,
    Refused,
    ToteDelivered,
    Transport,
)

KNOWN_COMMANDS = 20_000  # command ids remembered for idempotency (oldest finished ones drop)


@dataclass(frozen=True)
class _Phase:
    state: CraneState
    duration: float
    start: Point
    end: Point
    pick: Transport | None = None  # at the end: the tote goes onto the crane
    drop: Transport | None = None  # at the end: the tote leaves the crane


@dataclass
class _Running:
    command: Command
    phases: list[_Phase]
    started: float  # line time the cycle began
    phase_started: float
    failed: dict[Kind, str] = field(default_factory=dict)  # halves failed at the start


class CraneModel:
    """One aisle's crane, rack and P&D point."""

    def __init__(
        self, crane_id: str, rack: Rack, kinematics: Kinematics, contents: dict[str, str]
    ) -> None:
        self.crane_id = crane_id
        self.rack = rack
        self.k = kinematics
        self.contents: dict[str, str] = dict(contents)  # location id -> tote
        self.pd_input: list[str] = []  # totes waiting at the P&D input, in arrival order
        self.load: Transport | None = None  # the tote on the crane and where it goes
        self.queue: list[Command] = []
        self.running: _Running | None = None
        self.fault: str = ""
        self.blocked: set[str] = set()
        self.journal = CraneJournal()
        self.known: OrderedDict[str, Command] = OrderedDict()
        self.revision = 0  # bumped on every change of what is retained
        self._position: Point = PD_POINT
        for location in contents:
            self.rack.check(location)

    @property
    def aisle(self) -> str:
        return self.rack.aisle

    # --- reading ---------------------------------------------------------------------------

    @property
    def state(self) -> CraneState:
        if self.fault:
            return CraneState.FAULT
        if self.running is None or not self.running.phases:
            return CraneState.IDLE
        return self.running.phases[0].state

    def position(self, now: float) -> Point:
        run = self.running
        if self.fault or run is None or not run.phases:
            return self._position
        phase = run.phases[0]
        if phase.state is not CraneState.MOVING:
            return phase.start
        return position_at(self.k, phase.start, phase.end, now - run.phase_started)

    @property
    def current_command(self) -> str:
        return self.running.command.command_id if self.running is not None else ""

    @property
    def pending(self) -> list[Command]:
        """The command in progress (if any) and the queued ones, in order."""
        return ([self.running.command] if self.running is not None else []) + self.queue

    # --- commands --------------------------------------------------------------------------

    def submit(self, command: Command, now: float) -> Accepted | Refused:
        """Queue a command, or say why not. The same command id with the same arguments again
        is accepted without being queued a second time."""
        known = self.known.get(command.command_id)
        if known is not None:
            if known == command:
                return Accepted(duplicate=True)
            return Refused(Refusal.ID_REUSED, f"command {command.command_id!r} was different")
        refused = self._check(command)
        if refused is not None:
            return refused
        self.known[command.command_id] = command
        while len(self.known) > KNOWN_COMMANDS:
            oldest = next(iter(self.known))
            if any(c.command_id == oldest for c in self.pending):
                break
            self.known.popitem(last=False)
        self.queue.append(command)
        self.revision += 1
        self._start_next(now)
        return Accepted(duplicate=False)

    def _check(self, command: Command) -> Refused | None:
        if not command.command_id or not command.transports:
            return Refused(Refusal.BAD_ARGUMENT, "empty command id")
        for t in command.transports:
            if not t.tote:
                return Refused(Refusal.BAD_ARGUMENT, "empty tote id")
            try:
                parse_location(t.location)
            except BadLocation as exc:
                return Refused(Refusal.BAD_ARGUMENT, str(exc))
            try:
                self.rack.check(t.location)
            except BadLocation as exc:
                return Refused(Refusal.OUT_OF_RANGE, str(exc))
        if command.dual:
            assert command.store is not None and command.retrieve is not None
            if command.store.location == command.retrieve.location:
                return Refused(Refusal.BAD_ARGUMENT, "store and retrieve at the same location")
            if command.store.tote == command.retrieve.tote:
                return Refused(Refusal.BAD_ARGUMENT, "store and retrieve of the same tote")
        if self.fault:
            return Refused(Refusal.FAULT, self.fault)
        for t in command.transports:
            if t.location in self.blocked:
                return Refused(Refusal.BLOCKED, t.location)
        pending = [p for c in self.pending for p in c.transports]
        if command.store is not None:
            s = command.store
            claimed = {p.tote for p in pending if p.kind is Kind.STORE}
            if s.tote not in self.pd_input or s.tote in claimed:
                return Refused(Refusal.NOT_AT_PD, s.tote)
            reserved = {p.location for p in pending if p.kind is Kind.STORE}
            if s.location in self.contents or s.location in reserved:
                return Refused(Refusal.OCCUPIED, s.location)
        if command.retrieve is not None:
            r = command.retrieve
            there = self.contents.get(r.location)
            claimed = {p.location for p in pending if p.kind is Kind.RETRIEVE}
            if there is None or r.location in claimed:
                return Refused(Refusal.EMPTY, r.location)
            if there != r.tote:
                return Refused(Refusal.WRONG_TOTE, f"{r.location} holds {there}")
        return None

    def arrive(self, tote: str) -> None:
        """A tote set down at the P&D input (a tote returning from the conveyor)."""
        self.pd_input.append(tote)
        self.revision += 1

    def holds(self, tote: str) -> bool:
        """The tote is somewhere in this aisle: rack, P&D input or on the crane."""
        return (
            tote in self.pd_input
            or tote in self.contents.values()
            or (self.load is not None and self.load.tote == tote)
        )

    # --- faults ----------------------------------------------------------------------------

    def set_fault(self, text: str, now: float) -> None:
        """The crane stops where it is; the command in progress stays pending and resumes
        after :meth:`clear_fault` (the interrupted move from where the crane stopped, an
        interrupted pick-up or deposit from its start)."""
        if not text:
            raise ValueError("a fault needs a text")
        run = self.running
        if not self.fault and run is not None and run.phases:
            self._position = self.position(now)
            phase = run.phases[0]
            if phase.state is CraneState.MOVING:
                run.phases[0] = replace(phase, start=self._position)
        self.fault = text

    def clear_fault(self, now: float) -> bool:
        """Resume; False when the crane was not in fault."""
        if not self.fault:
            return False
        self.fault = ""
        run = self.running
        if run is not None and run.phases:
            phase = run.phases[0]
            if phase.state is CraneState.MOVING:
                phase = replace(phase, duration=travel_time(self.k, phase.start, phase.end))
                run.phases[0] = phase
            run.phase_started = now
        self._start_next(now)
        return True

    def set_blocked(self, location: str, blocked: bool) -> None:
        """A blocked location takes no new commands; queued ones for it fail when they start."""
        self.rack.check(location)
        if blocked:
            self.blocked.add(location)
        else:
            self.blocked.discard(location)

    # --- time ------------------------------------------------------------------------------

    def step(self, now: float) -> list[Fact]:
        facts: list[Fact] = []
        while not self.fault and self.running is not None:
            run = self.running
            if not run.phases:
                facts += self._finish(run, run.phase_started)
                self._start_next(run.phase_started, facts)
                continue
            phase = run.phases[0]
            ends = run.phase_started + phase.duration
            if ends > now:
                break
            run.phases.pop(0)
            run.phase_started = ends
            self._position = phase.end
            facts += self._complete_phase(phase, ends)
        return facts

    def _complete_phase(self, phase: _Phase, at: float) -> list[Fact]:
        if phase.pick is not None:
            t = phase.pick
            if t.kind is Kind.STORE:
                self.pd_input.remove(t.tote)
            else:
                del self.contents[t.location]
            self.load = t
            self.revision += 1
        if phase.drop is not None:
            t = phase.drop
            self.load = None
            self.revision += 1
            if t.kind is Kind.STORE:
                self.contents[t.location] = t.tote
            else:
                return [ToteDelivered(t.tote, self.aisle, at)]
        return []

    def _finish(self, run: _Running, at: float) -> list[Fact]:
        self.running = None
        self.revision += 1
        cycle = at - run.started
        facts: list[Fact] = []
        for t in run.command.transports:
            reason = run.failed.get(t.kind, "")
            entry = self.journal.record(
                run.command.command_id,
                t.kind.value,
                t.tote,
                t.location,
                ok=not reason,
                reason=reason,
                dual=run.command.dual and not run.failed,
                cycle_seconds=0.0 if reason else cycle,
            )
            facts.append(CommandFinished(entry, at))
        return facts

    def _start_next(self, now: float, facts: list[Fact] | None = None) -> None:
        if self.fault or self.running is not None or not self.queue:
            return
        command = self.queue.pop(0)
        failed: dict[Kind, str] = {}
        for t in command.transports:
            why = self._unfit(t)
            if why:
                failed[t.kind] = why
        store = command.store if command.store and Kind.STORE not in failed else None
        retrieve = command.retrieve if command.retrieve and Kind.RETRIEVE not in failed else None
        phases = self._plan(store, retrieve)
        self.running = _Running(command, phases, now, now, failed)
        self.revision += 1

    def _unfit(self, t: Transport) -> str:
        """Why a queued transport cannot run now ("" when it can)."""
        if t.location in self.blocked:
            return "location blocked"
        if t.kind is Kind.STORE:
            if t.tote not in self.pd_input:
                return "tote not at the P&D input"
            if t.location in self.contents:
                return "location occupied"
        elif self.contents.get(t.location) != t.tote:
            return "tote not at the location"
        return ""

    def _plan(self, store: Transport | None, retrieve: Transport | None) -> list[_Phase]:
        k, pd = self.k, PD_POINT
        phases: list[_Phase] = []
        here = pd

        def move(to: Point) -> None:
            nonlocal here
            phases.append(_Phase(CraneState.MOVING, travel_time(k, here, to), here, to))
            here = to

        if store is not None:
            at = self.rack.position(self.rack.check(store.location))
            phases.append(_Phase(CraneState.PICKING_UP, k.pd_time, pd, pd, pick=store))
            move(at)
            phases.append(_Phase(CraneState.DEPOSITING, k.pd_time, at, at, drop=store))
        if retrieve is not None:
            at = self.rack.position(self.rack.check(retrieve.location))
            move(at)
            phases.append(_Phase(CraneState.PICKING_UP, k.pd_time, at, at, pick=retrieve))
            move(pd)
            phases.append(_Phase(CraneState.DEPOSITING, k.pd_time, pd, pd, drop=retrieve))
        elif store is not None:
            move(pd)
        return phases

    # --- power loss ------------------------------------------------------------------------

    def restore(
        self,
        contents: dict[str, str],
        pd_input: Iterable[str],
        load: Transport | None,
        pending: Iterable[Command],
        known: Iterable[Command],
        journal_last: int,
        journal: Iterable[JournalEntry],
        now: float,
    ) -> list[Fact]:
        """Take over retained state after a power loss. The crane comes back at the P&D point;
        a tote it carried is set down at the P&D input; every command accepted but not finished
        is journalled as failed with reason ``power loss``."""
        for location in contents:
            self.rack.check(location)
        self.contents = dict(contents)
        self.pd_input = list(pd_input)
        self.journal.restore(journal_last, journal)
        self.known = OrderedDict((c.command_id, c) for c in known)
        self.queue, self.running, self.fault = [], None, ""
        self._position = PD_POINT
        if load is not None:
            self.pd_input.append(load.tote)
        self.load = None
        facts: list[Fact] = []
        for command in pending:
            self.known.setdefault(command.command_id, command)
            for t in command.transports:
                entry = self.journal.record(
                    command.command_id,
                    t.kind.value,
                    t.tote,
                    t.location,
                    ok=False,
                    reason="power loss",
                    dual=False,
                    cycle_seconds=0.0,
                )
                facts.append(CommandFinished(entry, now))
        self.revision += 1
        return facts

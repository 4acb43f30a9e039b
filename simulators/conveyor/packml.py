"""The PackML unit state machine (OPC 30050 / ISA-TR88.00.02) of the simulated conveyor.

The simulated unit has no real acting work to do, so every acting state (``Starting``,
``Stopping``, ``Holding``, ...) completes at once and the unit settles in the matching wait
state. Commands that are not valid in the current state are refused with
:class:`InvalidTransition`; the state does not change.

OPC 30050 nests the states in three state machines (:class:`~devices.opcua.packml.Level`):
:func:`active_states` says which state each of them is in, and a command sent to one of them
(``Reset`` exists on two) is valid only where that machine has the transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devices.opcua.packml import Level


class PackMLState(StrEnum):
    STOPPED = "Stopped"
    IDLE = "Idle"
    EXECUTE = "Execute"
    HELD = "Held"
    SUSPENDED = "Suspended"
    COMPLETE = "Complete"
    ABORTED = "Aborted"


class PackMLCommand(StrEnum):
    RESET = "Reset"
    START = "Start"
    STOP = "Stop"
    HOLD = "Hold"
    UNHOLD = "Unhold"
    SUSPEND = "Suspend"
    UNSUSPEND = "Unsuspend"
    ABORT = "Abort"
    CLEAR = "Clear"


S = PackMLState
C = PackMLCommand

# (command, state the command is valid in) -> wait state the unit settles in
_TRANSITIONS: dict[tuple[PackMLCommand, PackMLState], PackMLState] = {
    (C.RESET, S.STOPPED): S.IDLE,
    (C.RESET, S.COMPLETE): S.IDLE,
    (C.START, S.IDLE): S.EXECUTE,
    (C.HOLD, S.EXECUTE): S.HELD,
    (C.HOLD, S.SUSPENDED): S.HELD,
    (C.UNHOLD, S.HELD): S.EXECUTE,
    (C.SUSPEND, S.EXECUTE): S.SUSPENDED,
    (C.UNSUSPEND, S.SUSPENDED): S.EXECUTE,
    (C.CLEAR, S.ABORTED): S.STOPPED,
    **{(C.STOP, s): S.STOPPED for s in (S.IDLE, S.EXECUTE, S.HELD, S.SUSPENDED, S.COMPLETE)},
    **{(C.ABORT, s): S.ABORTED for s in PackMLState if s is not S.ABORTED},
}


# Reset leaves Stopped on MachineState and Complete on ExecuteState
_RESET_FROM = {Level.MACHINE: S.STOPPED, Level.EXECUTE: S.COMPLETE}


def active_states(state: PackMLState) -> dict[Level, str | None]:
    """The state each of OPC 30050's three nested machines is in (None: not active)."""
    if state is S.ABORTED:
        return {Level.BASE: "Aborted", Level.MACHINE: None, Level.EXECUTE: None}
    if state is S.STOPPED:
        return {Level.BASE: "Cleared", Level.MACHINE: "Stopped", Level.EXECUTE: None}
    return {Level.BASE: "Cleared", Level.MACHINE: "Running", Level.EXECUTE: state.value}


class InvalidTransition(Exception):
    """The command is not valid in the current state."""

    def __init__(self, command: PackMLCommand, state: PackMLState) -> None:
        super().__init__(f"{command.value} is not valid in state {state.value}")
        self.command = command
        self.state = state


@dataclass
class PackMLMachine:
    """The state of one unit; only :meth:`apply` changes it."""

    state: PackMLState = PackMLState.EXECUTE

    @property
    def producing(self) -> bool:
        """True when the unit moves material (belts run only in ``Execute``)."""
        return self.state is PackMLState.EXECUTE

    def allowed(self) -> tuple[PackMLCommand, ...]:
        """Commands valid in the current state."""
        return tuple(cmd for (cmd, state) in _TRANSITIONS if state is self.state)

    def apply(self, command: PackMLCommand, level: Level | None = None) -> PackMLState:
        """Run ``command`` (sent to the state machine ``level``, or to the unit); returns the
        new state or raises :class:`InvalidTransition`."""
        target = _TRANSITIONS.get((command, self.state))
        if (
            command is C.RESET
            and level is not None
            and _RESET_FROM.get(level, self.state) != self.state
        ):
            target = None
        if target is None:
            raise InvalidTransition(command, self.state)
        self.state = target
        return target

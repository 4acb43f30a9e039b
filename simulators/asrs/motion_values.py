"""The values an aisle's crane model speaks in: commands, its answers, its facts, its states.

A :class:`Command` is a ``Store``, a ``Retrieve`` or a ``DualCommand`` (both), each half a
:class:`Transport`; :meth:`~simulators.asrs.motion.CraneModel.submit` answers it with
:class:`Accepted` or :class:`Refused` (a :class:`Refusal`, which the bindings map to one OPC UA
status code each), and :meth:`~simulators.asrs.motion.CraneModel.step` reports a :class:`Fact`:
a transport finished, or a retrieved tote set down at the P&D output. All are plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from simulators.asrs.journal import JournalEntry


class Kind(StrEnum):
    STORE = "Store"
    RETRIEVE = "Retrieve"


class CraneState(StrEnum):
    IDLE = "Idle"
    MOVING = "Moving"
    PICKING_UP = "PickingUp"
    DEPOSITING = "Depositing"
    FAULT = "Fault"


class Refusal(StrEnum):
    """Why a command was not accepted (each maps to one OPC UA status code)."""

    BAD_ARGUMENT = "bad argument"  # empty id, not a location id, same location twice
    OUT_OF_RANGE = "location not in this crane's rack"
    BLOCKED = "location blocked"
    FAULT = "crane fault"
    OCCUPIED = "location occupied"
    NOT_AT_PD = "tote not at the P&D input"
    EMPTY = "location empty"
    WRONG_TOTE = "another tote at the location"
    ID_REUSED = "command id reused with other arguments"


@dataclass(frozen=True)
class Transport:
    kind: Kind
    tote: str
    location: str


@dataclass(frozen=True)
class Command:
    """A ``Store``, a ``Retrieve`` or a ``DualCommand`` (both), under the client's id."""

    command_id: str
    store: Transport | None = None
    retrieve: Transport | None = None

    @property
    def dual(self) -> bool:
        return self.store is not None and self.retrieve is not None

    @property
    def transports(self) -> tuple[Transport, ...]:
        return tuple(t for t in (self.store, self.retrieve) if t is not None)


@dataclass(frozen=True)
class Accepted:
    duplicate: bool  # the same command again: accepted before, not executed twice


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    detail: str


@dataclass(frozen=True)
class CommandFinished:
    """A transport finished (one per half of a dual command), as journalled."""

    entry: JournalEntry
    at: float


@dataclass(frozen=True)
class ToteDelivered:
    """A retrieved tote set down at the P&D output."""

    tote: str
    aisle: str
    at: float


Fact = CommandFinished | ToteDelivered

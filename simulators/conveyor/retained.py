"""The conveyor's retentive state: what a PLC keeps across a power cycle, as a JSON file.

Retained: the items on the belt (id, tote, front position), the totes waiting at an induction,
the chute counts, the item id counter, the divert journal and the PackML state. Not retained
(volatile, like a PLC's non-retentive memory): pending ``Divert`` requests, jams, forced chute
signals, the watchdog. The file is replaced atomically (a temporary file, then ``os.replace``),
so a crash leaves either the previous or the new state, never a torn one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from simulators.conveyor.packml import PackMLState
from simulators.opcua_server import retained
from simulators.opcua_server.retained import Record, RetainedStateError, write_state

__all__ = [
    "RetainedChute",
    "RetainedDivert",
    "RetainedItem",
    "RetainedLoop",
    "RetainedState",
    "RetainedStateError",
    "RetainedWaiting",
    "read_state",
    "write_state",
]

NonNeg = Annotated[int, Field(ge=0)]


class RetainedItem(Record):
    item_id: str = Field(min_length=1)
    tote_id: str = Field(min_length=1)
    seq: Annotated[int, Field(ge=1)]
    position: Annotated[float, Field(ge=0)]


class RetainedWaiting(Record):
    """A tote at an induction, not yet on the belt (queue order)."""

    zone: str
    item_id: str = Field(min_length=1)
    tote_id: str = Field(min_length=1)
    seq: Annotated[int, Field(ge=1)]


class RetainedChute(Record):
    chute_id: str
    count: NonNeg
    delivered: NonNeg


class RetainedDivert(Record):
    sequence: Annotated[int, Field(ge=1)]
    item_id: str
    tote_id: str
    chute_id: str
    ok: bool


class RetainedLoop(Record):
    """The motion model's part."""

    next_seq: Annotated[int, Field(ge=1)]
    items: list[RetainedItem]
    waiting: list[RetainedWaiting]
    chutes: list[RetainedChute]
    journal_last: NonNeg
    journal: list[RetainedDivert]


class RetainedState(Record):
    format: Literal[1] = 1
    conveyor: str
    packml_state: PackMLState
    loop: RetainedLoop


def read_state(path: Path) -> RetainedState | None:
    """The state in ``path``, None when there is no file; :class:`RetainedStateError` when it
    is unreadable or not a conveyor state file."""
    return retained.read_state(path, RetainedState, "conveyor")

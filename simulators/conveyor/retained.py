"""The conveyor's retentive state: what a PLC keeps across a power cycle, as a JSON file.

Retained: the items on the belt (id, tote, front position), the totes waiting at an induction,
the chute counts, the item id counter, the divert journal and the PackML state. Not retained
(volatile, like a PLC's non-retentive memory): pending ``Divert`` requests, jams, forced chute
signals, the watchdog. The file is replaced atomically (a temporary file, then ``os.replace``),
so a crash leaves either the previous or the new state, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulators.conveyor.packml import PackMLState

NonNeg = Annotated[int, Field(ge=0)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetainedItem(_Record):
    item_id: str = Field(min_length=1)
    tote_id: str = Field(min_length=1)
    seq: Annotated[int, Field(ge=1)]
    position: Annotated[float, Field(ge=0)]


class RetainedWaiting(_Record):
    """A tote at an induction, not yet on the belt (queue order)."""

    zone: str
    item_id: str = Field(min_length=1)
    tote_id: str = Field(min_length=1)
    seq: Annotated[int, Field(ge=1)]


class RetainedChute(_Record):
    chute_id: str
    count: NonNeg
    delivered: NonNeg


class RetainedDivert(_Record):
    sequence: Annotated[int, Field(ge=1)]
    item_id: str
    tote_id: str
    chute_id: str
    ok: bool


class RetainedLoop(_Record):
    """The motion model's part."""

    next_seq: Annotated[int, Field(ge=1)]
    items: list[RetainedItem]
    waiting: list[RetainedWaiting]
    chutes: list[RetainedChute]
    journal_last: NonNeg
    journal: list[RetainedDivert]


class RetainedState(_Record):
    format: Literal[1] = 1
    conveyor: str
    packml_state: PackMLState
    loop: RetainedLoop


class RetainedStateError(Exception):
    """The state file cannot be read or does not fit the line."""


def write_state(path: Path, state: RetainedState) -> None:
    """Replace ``path`` with ``state`` atomically (blocking: run it off the event loop)."""
    tmp = path.with_name(f".{path.name}.tmp")
    data = state.model_dump_json().encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_state(path: Path) -> RetainedState | None:
    """The state in ``path``, None when there is no file; :class:`RetainedStateError` when it
    is unreadable or not a conveyor state file."""
    if not path.parent.is_dir():
        raise RetainedStateError(f"{path}: directory {path.parent} does not exist")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RetainedStateError(f"{path}: cannot read the state file: {exc}") from None
    try:
        return RetainedState.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()
        why = "; ".join(first[:3]) if first else type(exc).__name__
        raise RetainedStateError(f"{path}: not a valid conveyor state file: {why}") from None

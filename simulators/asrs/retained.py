"""The AS/RS's retentive state: what its PLC keeps across a power cycle, as a JSON file.

Retained, per crane: the rack's contents (location -> tote), the totes at the P&D input, the
tote on the crane, the commands accepted and not finished (to be reported failed with reason
``power loss`` after the restart), the command ids known (so a command sent again after the
restart is still not executed twice) and the command journal. Not retained (volatile): the
crane's position (it comes back at the P&D point), faults and blocked locations. The file is
replaced atomically (a temporary file, then ``os.replace``), so a crash leaves the previous or
the new state, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetainedTransport(_Record):
    kind: Literal["Store", "Retrieve"]
    tote: str = Field(min_length=1)
    location: str = Field(min_length=1)


class RetainedCommand(_Record):
    command_id: str = Field(min_length=1)
    store: RetainedTransport | None = None
    retrieve: RetainedTransport | None = None


class RetainedEntry(_Record):
    sequence: Annotated[int, Field(ge=1)]
    command_id: str
    kind: Literal["Store", "Retrieve"]
    tote_id: str
    location: str
    ok: bool
    reason: str
    dual: bool
    cycle_seconds: Annotated[float, Field(ge=0)]


class RetainedCrane(_Record):
    crane: str
    aisle: str
    contents: dict[str, str]
    pd_input: list[str]
    load: RetainedTransport | None
    pending: list[RetainedCommand]
    known: list[RetainedCommand]
    journal_last: Annotated[int, Field(ge=0)]
    journal: list[RetainedEntry]


class RetainedAsrs(_Record):
    format: Literal[1] = 1
    kind: Literal["asrs"] = "asrs"
    cranes: list[RetainedCrane]


class RetainedStateError(Exception):
    """The state file cannot be read or does not fit the line."""


def write_state(path: Path, state: RetainedAsrs) -> None:
    """Replace ``path`` with ``state`` atomically (blocking: run it off the event loop)."""
    tmp = path.with_name(f".{path.name}.tmp")
    data = state.model_dump_json().encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_state(path: Path) -> RetainedAsrs | None:
    """The state in ``path``, None when there is no file; :class:`RetainedStateError` when it
    is unreadable or not an AS/RS state file."""
    if not path.parent.is_dir():
        raise RetainedStateError(f"{path}: directory {path.parent} does not exist")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RetainedStateError(f"{path}: cannot read the state file: {exc}") from None
    try:
        return RetainedAsrs.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()
        why = "; ".join(first[:3]) if first else type(exc).__name__
        raise RetainedStateError(f"{path}: not a valid AS/RS state file: {why}") from None

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

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from simulators.opcua_server import retained
from simulators.opcua_server.retained import Record, RetainedStateError, write_state

__all__ = [
    "RetainedAsrs",
    "RetainedCommand",
    "RetainedCrane",
    "RetainedEntry",
    "RetainedStateError",
    "RetainedTransport",
    "read_state",
    "write_state",
]


class RetainedTransport(Record):
    kind: Literal["Store", "Retrieve"]
    tote: str = Field(min_length=1)
    location: str = Field(min_length=1)


class RetainedCommand(Record):
    command_id: str = Field(min_length=1)
    store: RetainedTransport | None = None
    retrieve: RetainedTransport | None = None


class RetainedEntry(Record):
    sequence: Annotated[int, Field(ge=1)]
    command_id: str
    kind: Literal["Store", "Retrieve"]
    tote_id: str
    location: str
    ok: bool
    reason: str
    dual: bool
    cycle_seconds: Annotated[float, Field(ge=0)]


class RetainedCrane(Record):
    crane: str
    aisle: str
    contents: dict[str, str]
    pd_input: list[str]
    load: RetainedTransport | None
    pending: list[RetainedCommand]
    known: list[RetainedCommand]
    journal_last: Annotated[int, Field(ge=0)]
    journal: list[RetainedEntry]


class RetainedAsrs(Record):
    format: Literal[1] = 1
    kind: Literal["asrs"] = "asrs"
    cranes: list[RetainedCrane]


def read_state(path: Path) -> RetainedAsrs | None:
    """The state in ``path``, None when there is no file; :class:`RetainedStateError` when it
    is unreadable or not an AS/RS state file."""
    return retained.read_state(path, RetainedAsrs, "AS/RS")

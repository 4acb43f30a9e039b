"""What crosses the AS/RS seam: crane command completions, the racks' contents, the totes at
the P&D inputs, availability and the cranes' snapshot.

Plain frozen values, used by :class:`devices.base.Cranes` and importable from
:mod:`devices.base` with every other value of the device seams.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CraneKind = Literal["Store", "Retrieve"]


@dataclass(frozen=True)
class CraneCommandFinished:
    """A crane finished a transport (one per half of a dual command), or failed it."""

    crane: str
    aisle: str
    command_id: str
    kind: CraneKind
    tote: str
    location: str
    ok: bool
    reason: str  # "" when ok; "crane fault"-like text from the crane, "power loss", ...
    sequence: int  # the crane's journal number
    replayed: bool  # read back from the journal after a reconnect: the event itself was missed
    at: datetime
    dual: bool = False  # half of a dual cycle
    cycle_seconds: float = 0.0  # line seconds of the crane's cycle (0 when it failed)


@dataclass(frozen=True)
class CraneContents:
    """What the racks hold, read after every (re)connect: aisle -> {location: tote}."""

    contents: Mapping[str, Mapping[str, str]]
    at: datetime


@dataclass(frozen=True)
class TotesAtPdInput:
    """The totes now waiting at an aisle's P&D input, in arrival order: the whole list as the
    infeed reports it (``PdInput``), after every (re)connect and whenever it changes."""

    aisle: str
    crane: str
    totes: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class CranesAvailability:
    """The AS/RS server's session came up or went down (every crane at once)."""

    available: bool
    reason: str
    at: datetime


@dataclass(frozen=True)
class CraneSnapshot:
    crane: str
    aisle: str
    connected: bool
    state: str  # Idle, Moving, PickingUp, Depositing, Fault; "Unknown" when not connected
    x: float | None
    y: float | None
    current_command: str
    queue_length: int
    fault: str
    pd_input: tuple[str, ...] = ()  # totes waiting at the P&D input; () when not connected

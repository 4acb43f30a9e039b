"""AS/RS crane commands as data: the command a routing decision becomes (with its deterministic
id), what one aisle has to do (for ``GET /v1/line``), the racks' geometry and where the crane
journals were left. No I/O except :func:`journal_positions`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from controller.store.asrs import (
    AsrsCommand,
    AsrsRequest,
    AsrsStore,
    CommandKind,
    CommandState,
    RequestKind,
    RequestState,
)
from kernel.config.model import LineConfig
from routing.asrs import AisleGeometry
from routing.crane import Kinematics
from routing.rack import Rack

MAX_ATTEMPTS = 3
POWER_LOSS = "power loss"
FAULT_STATUS = "BadInvalidState"  # the crane refused: it is in fault
RELOCATE_STATUSES = ("BadEntryExists", "BadResourceUnavailable")  # occupied, blocked
RELOCATE_REASONS = ("location occupied", "location blocked")
NO_DEADLINE = datetime.max.replace(tzinfo=UTC)


class AsrsRequestError(ValueError):
    """A transport that cannot be asked for (unknown aisle, tote not in the rack, ...)."""


@dataclass(frozen=True)
class AisleCommands:
    """What one aisle's crane has to do (for ``GET /v1/line``)."""

    aisle: str
    waiting_stores: int
    waiting_retrieves: int
    check: int  # transports lost to a power loss, waiting for the racks' contents
    pending: int  # commands written, not yet accepted
    sent: int  # commands accepted, not finished
    fault_hold: bool
    commands: list[dict[str, Any]]

    def document(self) -> dict[str, Any]:
        return {
            "aisle": self.aisle,
            "waiting_stores": self.waiting_stores,
            "waiting_retrieves": self.waiting_retrieves,
            "check": self.check,
            "pending": self.pending,
            "sent": self.sent,
            "fault_hold": self.fault_hold,
            "commands": self.commands,
        }


def geometry(config: LineConfig) -> dict[str, AisleGeometry]:
    out = {}
    for a in config.asrs.aisles:
        c = a.crane
        rack = Rack(a.id, a.bays, a.levels, a.sides, a.bay_width, a.level_height)
        out[a.id] = AisleGeometry(
            rack, Kinematics(c.speed_x, c.speed_y, c.accel_x, c.accel_y, c.pd_time)
        )
    return out


async def journal_positions(store: AsrsStore, config: LineConfig) -> dict[str, int]:
    """aisle -> highest crane journal number handled, for ``OpcUaCranes(last_sequences=...)``:
    0 for an aisle whose crane has never reported to this database, so its whole journal is
    read back (completions of commands this database does not know are skipped)."""
    stored = await store.asrs_last_sequences()
    return {a.id: stored.get(a.id, 0) for a in config.asrs.aisles}


async def call_hook(hook: Callable[..., Awaitable[None] | None] | None, *args: Any) -> None:
    """Call a hook that may be a plain function or a coroutine function."""
    if hook is None:
        return
    result = hook(*args)
    if inspect.isawaitable(result):
        await result


def build_command(
    kind: str,
    aisle: str,
    store: AsrsRequest | None,
    retrieve: AsrsRequest | None,
    namespace: str,
    now: datetime,
) -> tuple[AsrsCommand, list[AsrsRequest]]:
    """The command for a planned cycle (``dual``, ``store`` or ``retrieve``) and its requests
    as they stand once it is written. Its id is deterministic and never reused:
    ``<namespace>-<aisle>-R<request>.<attempt>`` (``S`` for a store,
    ``D<retrieve>.<attempt>-<store>.<attempt>`` for a dual command)."""
    s = None if store is None else replace(store, attempts=store.attempts + 1)
    r = None if retrieve is None else replace(retrieve, attempts=retrieve.attempts + 1)
    parts = []
    if r is not None:
        parts.append(f"{r.id}.{r.attempts}")
    if s is not None:
        parts.append(f"{s.id}.{s.attempts}")
    letter = {"dual": "D", "store": "S", "retrieve": "R"}[kind]
    command_id = f"{namespace}-{aisle}-{letter}{'-'.join(parts)}"
    cmd = AsrsCommand(
        command_id=command_id,
        aisle=aisle,
        kind=CommandKind(kind),
        store_request=None if s is None else s.id,
        retrieve_request=None if r is None else r.id,
        store_tote=None if s is None else s.tote,
        store_location=None if s is None else s.location,
        retrieve_tote=None if r is None else r.tote,
        retrieve_location=None if r is None else r.location,
        state=CommandState.PENDING,
        reason="",
        store_result="",
        retrieve_result="",
        created_at=now,
        updated_at=now,
    )
    changed = [
        replace(q, state=RequestState.COMMANDED, command_id=command_id, updated_at=now)
        for q in (s, r)
        if q is not None
    ]
    return cmd, changed


def aisle_commands(
    aisle: str, requests: list[AsrsRequest], commands: list[AsrsCommand], fault_hold: bool
) -> AisleCommands:
    """One aisle's open requests and commands, counted and listed."""

    def waiting(kind: RequestKind) -> int:
        return sum(1 for r in requests if r.kind is kind and r.state is RequestState.WAITING)

    return AisleCommands(
        aisle=aisle,
        waiting_stores=waiting(RequestKind.STORE),
        waiting_retrieves=waiting(RequestKind.RETRIEVE),
        check=sum(1 for r in requests if r.state is RequestState.CHECK),
        pending=sum(1 for c in commands if c.state is CommandState.PENDING),
        sent=sum(1 for c in commands if c.state is CommandState.SENT),
        fault_hold=fault_hold,
        commands=[
            {
                "command_id": c.command_id,
                "kind": c.kind.value,
                "state": c.state.value,
                "store": None
                if c.store_tote is None
                else {"tote": c.store_tote, "location": c.store_location},
                "retrieve": None
                if c.retrieve_tote is None
                else {"tote": c.retrieve_tote, "location": c.retrieve_location},
            }
            for c in commands
        ],
    )

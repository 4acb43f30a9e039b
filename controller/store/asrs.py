"""The AS/RS command store interface: transport requests, crane commands, journal numbers.

The controller writes a crane command here *before* it sends it, so a controller killed at any
moment finds, on its next start, every request not yet finished and every command that may have
reached a crane, each under the id it was (or was about to be) sent with. A crane treats a
command id it knows as the same command, so sending a persisted command again never moves a
tote twice. The cranes' highest journal numbers already handled are kept beside them, so the
cranes adapter replays exactly the completions the controller missed.

A **request** is one tote transport the controller wants (a retrieve of a stored tote, or a store
of a tote at an aisle's P&D input); a **command** is one crane cycle carrying one request, or two
(a dual command: a store and a retrieve). A request that has to be tried again (after a power
loss) goes into a new command under a new id; the old command stays failed with its reason.

The SQLite store implements this protocol (:mod:`controller.store.sqlite.asrs`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class RequestKind(StrEnum):
    STORE = "store"
    RETRIEVE = "retrieve"


class RequestState(StrEnum):
    WAITING = "waiting"  # not in a command yet
    COMMANDED = "commanded"  # in a command (see ``command_id``)
    CHECK = "check"  # its command was lost to a power loss: the racks' contents decide
    DONE = "done"
    FAILED = "failed"


OPEN_REQUEST_STATES = (RequestState.WAITING, RequestState.COMMANDED, RequestState.CHECK)


class CommandKind(StrEnum):
    STORE = "store"
    RETRIEVE = "retrieve"
    DUAL = "dual"


class CommandState(StrEnum):
    PENDING = "pending"  # written, not yet accepted by the crane (send it, same id)
    SENT = "sent"  # the crane accepted it; its completions are awaited
    DONE = "done"  # every half finished ok
    FAILED = "failed"  # refused, or a half failed (see ``reason``)


OPEN_COMMAND_STATES = (CommandState.PENDING, CommandState.SENT)


@dataclass(frozen=True)
class AsrsRequest:
    id: int
    kind: RequestKind
    tote: str
    sku: str  # what the tote holds ('' when empty or unknown), for the storage policy
    aisle: str
    location: str  # the rack location: where the tote is (retrieve) or goes (store)
    purpose: str  # why: "order", "replenishment", "return", ...
    order_id: str | None
    due: datetime | None
    deliver_from: datetime | None
    deliver_until: datetime | None
    priority: int
    state: RequestState
    command_id: str | None
    attempts: int  # commands it has been put in
    reason: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AsrsCommand:
    command_id: str
    aisle: str
    kind: CommandKind
    store_request: int | None
    retrieve_request: int | None
    store_tote: str | None
    store_location: str | None
    retrieve_tote: str | None
    retrieve_location: str | None
    state: CommandState
    reason: str
    store_result: str  # '' while open, 'ok' or 'failed'
    retrieve_result: str
    created_at: datetime
    updated_at: datetime

    @property
    def halves_open(self) -> int:
        return (self.store_request is not None and not self.store_result) + (
            self.retrieve_request is not None and not self.retrieve_result
        )


@dataclass(frozen=True)
class AsrsState:
    """What a start needs: open requests and commands, journal numbers, ids."""

    namespace: str  # a short token unique to this database, the prefix of every command id
    next_request_id: int
    requests: list[AsrsRequest]
    commands: list[AsrsCommand]
    last_sequences: dict[str, int]
    retrieves_by_sku: dict[str, int]  # finished retrieves per SKU (turnover for the policy)


class AsrsStore(Protocol):
    async def asrs_load(self) -> AsrsState:
        """Open requests and commands, journal numbers and the id namespace."""
        ...

    async def asrs_last_sequences(self) -> dict[str, int]:
        """aisle -> highest crane journal number handled (for the cranes adapter)."""
        ...

    async def asrs_save(
        self,
        requests: Sequence[AsrsRequest] = (),
        commands: Sequence[AsrsCommand] = (),
        sequences: Mapping[str, int] | None = None,
    ) -> None:
        """Insert or replace requests and commands, raise journal numbers; one transaction."""
        ...

    async def asrs_tote_locations(self) -> dict[str, str]:
        """Where the inventory has each tote (tote -> location)."""
        ...

    async def asrs_requests(
        self, *, states: Collection[RequestState] | None = None, limit: int = 100
    ) -> list[AsrsRequest]:
        """Requests, newest first."""
        ...

    async def asrs_commands(
        self, *, states: Collection[CommandState] | None = None, limit: int = 100
    ) -> list[AsrsCommand]:
        """Commands, newest first."""
        ...

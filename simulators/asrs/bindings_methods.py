"""The AS/RS simulator's OPC UA methods: each crane's commands and the simulation's own.

Each crane answers ``Store``, ``Retrieve``, ``DualCommand``, ``ClearFault``, ``Journal`` and
``Contents``; a refused command answers with the status code :data:`STATUS` gives its
:class:`~simulators.asrs.motion_values.Refusal`. The simulation's methods set a tote down at a
P&D input, set or clear a crane fault and block or free a location. Every change is made under
the bindings' lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from asyncua import ua

from simulators.asrs.address_space import CraneCallbacks
from simulators.asrs.bindings_state import (
    _BOOLEAN,
    _DOUBLE,
    _STRING,
    _UINT32,
    _UINT32_MAX,
    BindingsState,
    UnknownName,
)
from simulators.asrs.motion_values import Accepted, Command, Kind, Refusal, Refused, Transport
from simulators.opcua_nodes import bad, string_args

STATUS: dict[Refusal, int] = {
    Refusal.BAD_ARGUMENT: ua.StatusCodes.BadInvalidArgument,
    Refusal.OUT_OF_RANGE: ua.StatusCodes.BadOutOfRange,
    Refusal.BLOCKED: ua.StatusCodes.BadResourceUnavailable,
    Refusal.FAULT: ua.StatusCodes.BadInvalidState,
    Refusal.OCCUPIED: ua.StatusCodes.BadEntryExists,
    Refusal.NOT_AT_PD: ua.StatusCodes.BadNotFound,
    Refusal.EMPTY: ua.StatusCodes.BadNoEntryExists,
    Refusal.WRONG_TOTE: ua.StatusCodes.BadNoMatch,
    Refusal.ID_REUSED: ua.StatusCodes.BadAlreadyExists,
}


class BindingsMethods(BindingsState):
    """Answers the OPC UA methods (mixed into :class:`~simulators.asrs.bindings.AsrsBindings`)."""

    if TYPE_CHECKING:

        async def change(self, mutate: Callable[[float], Any]) -> Any: ...

        def arrive(self, tote: str, aisle: str, now: float) -> None: ...

        def block(self, location: str, blocked: bool) -> None: ...

        async def submit(self, aisle: str, command: Command) -> Accepted | Refused: ...

    def _crane_callbacks(self, aisle: str) -> CraneCallbacks:
        async def store(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            return await self._command(aisle, Kind.STORE, args)

        async def retrieve(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            return await self._command(aisle, Kind.RETRIEVE, args)

        async def dual(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            values = string_args(args, 5)
            if isinstance(values, ua.StatusCode):
                return values
            cid, s_tote, s_loc, r_tote, r_loc = values
            command = Command(
                cid,
                Transport(Kind.STORE, s_tote, s_loc),
                Transport(Kind.RETRIEVE, r_tote, r_loc),
            )
            return self._status(await self.submit(aisle, command))

        async def clear_fault(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            if args:
                return bad(ua.StatusCodes.BadTooManyArguments)
            await self.change(self.cranes[aisle].clear_fault)
            return []

        async def journal(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            return await self._journal(aisle, args)

        async def contents(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            if args:
                return bad(ua.StatusCodes.BadTooManyArguments)
            async with self._lock:
                items = sorted(self.cranes[aisle].contents.items())
            return [
                ua.Variant([loc for loc, _ in items], _STRING),
                ua.Variant([tote for _, tote in items], _STRING),
            ]

        return CraneCallbacks(store, retrieve, dual, clear_fault, journal, contents)

    async def _command(
        self, aisle: str, kind: Kind, args: tuple[Any, ...]
    ) -> list[ua.Variant] | ua.StatusCode:
        values = string_args(args, 3)
        if isinstance(values, ua.StatusCode):
            return values
        cid, tote, location = values
        t = Transport(kind, tote, location)
        command = Command(cid, store=t) if kind is Kind.STORE else Command(cid, retrieve=t)
        return self._status(await self.submit(aisle, command))

    @staticmethod
    def _status(result: Accepted | Refused) -> list[ua.Variant] | ua.StatusCode:
        if isinstance(result, Refused):
            return bad(STATUS[result.reason])
        return []

    async def _journal(self, aisle: str, args: tuple[Any, ...]) -> list[ua.Variant] | ua.StatusCode:
        if not args:
            return bad(ua.StatusCodes.BadArgumentsMissing)
        if len(args) > 1:
            return bad(ua.StatusCodes.BadTooManyArguments)
        since = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= _UINT32_MAX:
            return bad(ua.StatusCodes.BadInvalidArgument)
        async with self._lock:
            journal = self.cranes[aisle].journal
            last, entries = journal.last, journal.since(since)
        return [
            ua.Variant(last, _UINT32),
            ua.Variant([e.sequence for e in entries], _UINT32),
            ua.Variant([e.command_id for e in entries], _STRING),
            ua.Variant([e.kind for e in entries], _STRING),
            ua.Variant([e.tote_id for e in entries], _STRING),
            ua.Variant([e.location for e in entries], _STRING),
            ua.Variant([e.ok for e in entries], _BOOLEAN),
            ua.Variant([e.reason for e in entries], _STRING),
            ua.Variant([e.dual for e in entries], _BOOLEAN),
            ua.Variant([e.cycle_seconds for e in entries], _DOUBLE),
        ]

    async def _arrive_at_pd(
        self, parent: ua.NodeId, *args: Any
    ) -> list[ua.Variant] | ua.StatusCode:
        values = string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        tote, aisle = values
        try:
            await self.change(lambda now: self.arrive(tote, aisle, now))
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        return []

    async def _set_fault(self, parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
        values = string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        crane_id, text = values
        try:
            model = self.crane(crane_id)
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        if text:
            await self.change(lambda now: model.set_fault(text, now))
        else:
            await self.change(model.clear_fault)
        return []

    async def _block_location(
        self, parent: ua.NodeId, *args: Any
    ) -> list[ua.Variant] | ua.StatusCode:
        if len(args) != 2:
            code = ua.StatusCodes.BadArgumentsMissing if len(args) < 2 else 0
            return bad(code or ua.StatusCodes.BadTooManyArguments)
        location, blocked = (a.Value if isinstance(a, ua.Variant) else a for a in args)
        if not isinstance(location, str) or not isinstance(blocked, bool):
            return bad(ua.StatusCodes.BadInvalidArgument)
        try:
            await self.change(lambda now: self.block(location, blocked))
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        return []

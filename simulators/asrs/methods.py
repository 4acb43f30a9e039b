"""The AS/RS simulator's OPC UA methods: each crane's commands and the simulation's own.

Each crane answers ``Store``, ``Retrieve``, ``DualCommand``, ``ClearFault``, ``Journal`` and
``Contents``; a refused command answers with the status code :data:`STATUS` gives its
:class:`~simulators.asrs.motion_values.Refusal`. The simulation's methods set a tote down at a
P&D input, set or clear a crane fault and block or free a location. Every change is made under
the cranes' lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from asyncua import ua

from simulators.asrs.address_space import AsrsCallbacks, CraneCallbacks
from simulators.asrs.cranes import AsrsCranes, UnknownName
from simulators.asrs.motion_values import Accepted, Command, Kind, Refusal, Refused, Transport
from simulators.asrs.publisher import BOOLEAN, DOUBLE, STRING, UINT32
from simulators.opcua_nodes import MethodAnswer, bad, string_args, uint32_arg

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


class Changes(Protocol):
    """The changes a method makes through the bindings (under the lock, published)."""

    async def change(self, mutate: Callable[[float], Any]) -> Any: ...

    async def submit(self, aisle: str, command: Command) -> Accepted | Refused: ...


def status(result: Accepted | Refused) -> MethodAnswer:
    """A command's answer: no output arguments, or the status code of its refusal."""
    if isinstance(result, Refused):
        return bad(STATUS[result.reason])
    return []


class AsrsMethods:
    """Answers the OPC UA methods of the cranes and of the ``Simulation`` object."""

    def __init__(self, cranes: AsrsCranes, changes: Changes) -> None:
        self._cranes = cranes
        self._changes = changes

    def callbacks(self) -> AsrsCallbacks:
        return AsrsCallbacks(
            crane=self._crane_callbacks,
            arrive_at_pd=self._arrive_at_pd,
            set_fault=self._set_fault,
            block_location=self._block_location,
        )

    def _crane_callbacks(self, aisle: str) -> CraneCallbacks:
        cranes, changes = self._cranes, self._changes

        async def store(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            return await self._command(aisle, Kind.STORE, args)

        async def retrieve(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            return await self._command(aisle, Kind.RETRIEVE, args)

        async def dual(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            values = string_args(args, 5)
            if isinstance(values, ua.StatusCode):
                return values
            cid, s_tote, s_loc, r_tote, r_loc = values
            command = Command(
                cid,
                Transport(Kind.STORE, s_tote, s_loc),
                Transport(Kind.RETRIEVE, r_tote, r_loc),
            )
            return status(await changes.submit(aisle, command))

        async def clear_fault(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            if args:
                return bad(ua.StatusCodes.BadTooManyArguments)
            await changes.change(cranes.cranes[aisle].clear_fault)
            return []

        async def journal(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            return await self._journal(aisle, args)

        async def contents(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            if args:
                return bad(ua.StatusCodes.BadTooManyArguments)
            async with cranes.lock:
                items = sorted(cranes.cranes[aisle].contents.items())
            return [
                ua.Variant([loc for loc, _ in items], STRING),
                ua.Variant([tote for _, tote in items], STRING),
            ]

        return CraneCallbacks(store, retrieve, dual, clear_fault, journal, contents)

    async def _command(self, aisle: str, kind: Kind, args: tuple[Any, ...]) -> MethodAnswer:
        values = string_args(args, 3)
        if isinstance(values, ua.StatusCode):
            return values
        cid, tote, location = values
        t = Transport(kind, tote, location)
        command = Command(cid, store=t) if kind is Kind.STORE else Command(cid, retrieve=t)
        return status(await self._changes.submit(aisle, command))

    async def _journal(self, aisle: str, args: tuple[Any, ...]) -> MethodAnswer:
        since = uint32_arg(args)
        if isinstance(since, ua.StatusCode):
            return since
        async with self._cranes.lock:
            journal = self._cranes.cranes[aisle].journal
            last, entries = journal.last, journal.since(since)
        return [
            ua.Variant(last, UINT32),
            ua.Variant([e.sequence for e in entries], UINT32),
            ua.Variant([e.command_id for e in entries], STRING),
            ua.Variant([e.kind for e in entries], STRING),
            ua.Variant([e.tote_id for e in entries], STRING),
            ua.Variant([e.location for e in entries], STRING),
            ua.Variant([e.ok for e in entries], BOOLEAN),
            ua.Variant([e.reason for e in entries], STRING),
            ua.Variant([e.dual for e in entries], BOOLEAN),
            ua.Variant([e.cycle_seconds for e in entries], DOUBLE),
        ]

    async def _arrive_at_pd(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        values = string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        tote, aisle = values
        try:
            await self._changes.change(lambda now: self._cranes.arrive(tote, aisle, now))
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        return []

    async def _set_fault(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        values = string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        crane_id, text = values
        try:
            model = self._cranes.crane(crane_id)
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        if text:
            await self._changes.change(lambda now: model.set_fault(text, now))
        else:
            await self._changes.change(model.clear_fault)
        return []

    async def _block_location(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        if len(args) != 2:
            code = ua.StatusCodes.BadArgumentsMissing if len(args) < 2 else 0
            return bad(code or ua.StatusCodes.BadTooManyArguments)
        location, blocked = (a.Value if isinstance(a, ua.Variant) else a for a in args)
        if not isinstance(location, str) or not isinstance(blocked, bool):
            return bad(ua.StatusCodes.BadInvalidArgument)
        try:
            await self._changes.change(lambda now: self._cranes.block(location, blocked))
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        return []

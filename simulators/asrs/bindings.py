"""OPC UA bindings of the AS/RS simulator: methods in, variable writes and events out.

:class:`AsrsBindings` owns one :class:`~simulators.asrs.motion.CraneModel` per aisle. Every
change goes through one lock, so completion events leave in journal order and the variables
follow the model; variables are written only when their value changes. With a state file the
bindings keep the retentive state there (:mod:`simulators.asrs.retained`) right after every
change of what is retained.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.server.event_generator import EventGenerator

from controller.clock import Clock
from controller.config.model import LineConfig
from routing.crane import Kinematics
from routing.rack import BadLocation, Rack, parse_location
from simulators.asrs.address_space import AsrsCallbacks, AsrsNodes, CraneCallbacks
from simulators.asrs.journal import JournalEntry
from simulators.asrs.motion import CraneModel
from simulators.asrs.motion_values import (
    Accepted,
    Command,
    CommandFinished,
    Fact,
    Kind,
    Refusal,
    Refused,
    ToteDelivered,
    Transport,
)
from simulators.asrs.retained import (
    RetainedAsrs,
    RetainedCommand,
    RetainedCrane,
    RetainedEntry,
    RetainedTransport,
    write_state,
)
from simulators.opcua_nodes import MethodCallback, bad, string_args

log = logging.getLogger(__name__)

_STRING = ua.VariantType.String
_UINT32 = ua.VariantType.UInt32
_BOOLEAN = ua.VariantType.Boolean
_DOUBLE = ua.VariantType.Double
_UINT32_MAX = 2**32 - 1

DeliveredHook = Callable[[str, str], Awaitable[None] | None]

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


class UnknownName(ValueError):
    """An aisle, crane, tote or location the AS/RS does not know (or a tote it already has)."""


def _transport(t: Transport | None) -> RetainedTransport | None:
    if t is None:
        return None
    return RetainedTransport(kind=t.kind.value, tote=t.tote, location=t.location)


def _command(c: Command) -> RetainedCommand:
    return RetainedCommand(
        command_id=c.command_id, store=_transport(c.store), retrieve=_transport(c.retrieve)
    )


def _from_transport(t: RetainedTransport | None) -> Transport | None:
    return None if t is None else Transport(Kind(t.kind), t.tote, t.location)


def _from_command(c: RetainedCommand) -> Command:
    return Command(c.command_id, _from_transport(c.store), _from_transport(c.retrieve))


class AsrsBindings:
    """Connects the cranes' models to the address space."""

    def __init__(
        self,
        server: Server,
        config: LineConfig,
        clock: Clock,
        state_file: Path | None = None,
        on_delivered: DeliveredHook | None = None,
    ) -> None:
        self._server = server
        self._clock = clock
        self.cranes: dict[str, CraneModel] = {}
        self.crane_aisle: dict[str, str] = {}
        stored: dict[str, dict[str, str]] = {a.id: {} for a in config.asrs.aisles}
        for t in config.asrs.totes:
            stored[parse_location(t.location).aisle][t.location] = t.tote
        for a in config.asrs.aisles:
            c = a.crane
            rack = Rack(a.id, a.bays, a.levels, a.sides, a.bay_width, a.level_height)
            k = Kinematics(c.speed_x, c.speed_y, c.accel_x, c.accel_y, c.pd_time)
            self.cranes[a.id] = CraneModel(c.id, rack, k, stored[a.id])
            self.crane_aisle[c.id] = a.id
        self._lock = asyncio.Lock()
        self._nodes: AsrsNodes | None = None
        self._events: dict[str, EventGenerator] = {}
        self._written: dict[ua.NodeId, Any] = {}
        self._state_file = state_file
        self._saved: tuple[int, ...] | None = None
        self._save_failing = False
        self.on_delivered = on_delivered

    @property
    def callbacks(self) -> AsrsCallbacks:
        return AsrsCallbacks(
            crane=self._crane_callbacks,
            arrive_at_pd=self._arrive_at_pd,
            set_fault=self._set_fault,
            block_location=self._block_location,
        )

    async def attach(self, nodes: AsrsNodes) -> None:
        self._nodes = nodes
        for aisle, crane in nodes.cranes.items():
            self._events[aisle] = await self._server.get_event_generator(
                nodes.completed_event_type, crane.crane.nodeid
            )

    # --- changes ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Advance every crane to now, publish what happened, hand delivered totes over."""
        async with self._lock:
            facts = self._step()
            await self._publish(facts)
            await self._retain()
        await self._deliver(facts)

    def _step(self) -> list[Fact]:
        now = self._clock.now()
        return [f for model in self.cranes.values() for f in model.step(now)]

    async def change(self, mutate: Callable[[float], Any]) -> Any:
        """Run ``mutate(now)`` after advancing the cranes, then publish, under the lock."""
        async with self._lock:
            facts = self._step()
            try:
                result = mutate(self._clock.now())
            finally:
                facts += self._step()
                await self._publish(facts)
                await self._retain()
        await self._deliver(facts)
        return result

    async def _deliver(self, facts: Iterable[Fact]) -> None:
        hook = self.on_delivered
        for fact in facts:
            if not isinstance(fact, ToteDelivered) or hook is None:
                continue
            try:
                result = hook(fact.tote, fact.aisle)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # the hook is the caller's code; the cranes go on
                log.error(
                    "delivered-tote hook failed",
                    extra={"tote": fact.tote, "aisle": fact.aisle, "error": repr(exc)},
                )

    def crane(self, crane_or_aisle: str) -> CraneModel:
        aisle = self.crane_aisle.get(crane_or_aisle, crane_or_aisle)
        model = self.cranes.get(aisle)
        if model is None:
            raise UnknownName(f"no crane or aisle {crane_or_aisle!r}")
        return model

    def arrive(self, tote: str, aisle: str, now: float) -> None:
        if not tote:
            raise UnknownName("empty tote id")
        model = self.cranes.get(aisle)
        if model is None:
            raise UnknownName(f"no aisle {aisle!r}")
        if any(m.holds(tote) for m in self.cranes.values()):
            raise UnknownName(f"tote {tote!r} is already in the AS/RS")
        model.arrive(tote)

    def block(self, location: str, blocked: bool) -> None:
        try:
            aisle = parse_location(location).aisle
            self.crane(aisle).set_blocked(location, blocked)
        except (BadLocation, UnknownName) as exc:
            raise UnknownName(str(exc)) from None

    async def submit(self, aisle: str, command: Command) -> Accepted | Refused:
        result: Accepted | Refused = await self.change(
            lambda now: self.cranes[aisle].submit(command, now)
        )
        extra = {"crane": self.cranes[aisle].crane_id, "command": command.command_id}
        if isinstance(result, Refused):
            log.info(
                "crane command refused",
                extra={**extra, "why": result.reason.value, "detail": result.detail},
            )
        elif not result.duplicate:
            log.info("crane command accepted", extra={**extra, "dual": command.dual})
        return result

    # --- retained state --------------------------------------------------------------------

    def retained(self) -> RetainedAsrs:
        cranes = []
        for aisle, m in self.cranes.items():
            cranes.append(
                RetainedCrane(
                    crane=m.crane_id,
                    aisle=aisle,
                    contents=dict(m.contents),
                    pd_input=list(m.pd_input),
                    load=_transport(m.load),
                    pending=[_command(c) for c in m.pending],
                    known=[_command(c) for c in m.known.values()],
                    journal_last=m.journal.last,
                    journal=[RetainedEntry(**vars(e)) for e in m.journal.entries()],
                )
            )
        return RetainedAsrs(cranes=cranes)

    async def restore(self, state: RetainedAsrs) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line."""
        by_aisle = {c.aisle: c for c in state.cranes}
        if set(by_aisle) != set(self.cranes):
            raise ValueError(
                f"the state file has aisles {sorted(by_aisle)}, the line {sorted(self.cranes)}"
            )
        async with self._lock:
            now = self._clock.now()
            facts: list[Fact] = []
            for aisle, r in by_aisle.items():
                model = self.cranes[aisle]
                if r.crane != model.crane_id:
                    raise ValueError(f"aisle {aisle}: crane {r.crane!r}, not {model.crane_id!r}")
                try:
                    facts += model.restore(
                        r.contents,
                        r.pd_input,
                        _from_transport(r.load),
                        [_from_command(c) for c in r.pending],
                        [_from_command(c) for c in r.known],
                        r.journal_last,
                        [JournalEntry(**e.model_dump()) for e in r.journal],
                        now,
                    )
                except BadLocation as exc:
                    raise ValueError(f"aisle {aisle}: {exc}") from None
            await self._publish(facts)
            await self._retain()
        for aisle, r in by_aisle.items():
            log.info(
                "retained state loaded",
                extra={
                    "crane": r.crane,
                    "totes": len(r.contents),
                    "aborted": len(r.pending),
                    "journal_last": self.cranes[aisle].journal.last,
                },
            )

    async def _retain(self) -> None:
        if self._state_file is None:
            return
        key = tuple(m.revision for m in self.cranes.values())
        if key == self._saved:
            return
        try:
            await asyncio.to_thread(write_state, self._state_file, self.retained())
        except OSError as exc:
            if not self._save_failing:
                log.error(
                    "retained state not written",
                    extra={"file": str(self._state_file), "error": str(exc)},
                )
            self._save_failing = True
            return
        if self._save_failing:
            log.info("retained state written again", extra={"file": str(self._state_file)})
        self._save_failing = False
        self._saved = key

    # --- method callbacks ------------------------------------------------------------------

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

    # --- publishing ------------------------------------------------------------------------

    def _node(self) -> AsrsNodes:
        if self._nodes is None:
            raise RuntimeError("bindings are not attached to an address space")
        return self._nodes

    def _utc_at(self, at: float) -> datetime:
        return self._clock.utcnow() - timedelta(seconds=self._clock.now() - at)

    async def _write(self, node: Node, value: Any, vtype: ua.VariantType) -> None:
        if node.nodeid in self._written and self._written[node.nodeid] == value:
            return
        self._written[node.nodeid] = value
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    async def _publish(self, facts: Iterable[Fact]) -> None:
        nodes = self._node()
        for fact in facts:
            if isinstance(fact, CommandFinished):
                aisle = parse_location(fact.entry.location).aisle
                await self._emit(aisle, fact)
        now = self._clock.now()
        for aisle, m in self.cranes.items():
            n = nodes.cranes[aisle]
            x, y = m.position(now)
            await self._write(n.state, m.state.value, _STRING)
            await self._write(n.position_x, round(x, 3), _DOUBLE)
            await self._write(n.position_y, round(y, 3), _DOUBLE)
            await self._write(n.current_command, m.current_command, _STRING)
            await self._write(n.queue_length, len(m.queue), _UINT32)
            await self._write(n.fault, m.fault, _STRING)
            await self._write(n.load, m.load.tote if m.load else "", _STRING)
            await self._write(n.pd_input, list(m.pd_input), _STRING)

    async def _emit(self, aisle: str, fact: CommandFinished) -> None:
        gen = self._events[aisle]
        e = fact.entry
        ev = gen.event
        ev.CommandId = e.command_id
        ev.ToteId = e.tote_id
        ev.Location = e.location
        ev.Kind = e.kind
        ev.Success = e.ok
        ev.Reason = e.reason
        ev.Sequence = e.sequence
        ev.Dual = e.dual
        ev.CycleSeconds = e.cycle_seconds
        ev.Severity = 100 if e.ok else 500
        message = f"{e.kind} {e.tote_id} {e.location}" + ("" if e.ok else f": {e.reason}")
        await gen.trigger(time_attr=self._utc_at(fact.at), message=message)


__all__ = ["AsrsBindings", "DeliveredHook", "MethodCallback", "UnknownName"]

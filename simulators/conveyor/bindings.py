"""OPC UA bindings of the conveyor simulator: methods in, variable writes and events out.

:class:`ConveyorBindings` owns the motion model and the PackML machine. Every change goes through
one lock, so the facts of one change are written to the address space (and events fired) in the
order they happened, whether the change came from a method call, a client write, the scripting
API or the motion tick. Variables are written only when their value changes.

With a state file the bindings also keep the unit's retentive state there
(:mod:`simulators.conveyor.retained`): right after every change of what the loop holds or of the
PackML state, and every :data:`RETAIN_WALL_SECONDS` while items move.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common.callback import CallbackService, CallbackType, ServerItemCallback
from asyncua.server.event_generator import EventGenerator

from controller.clock import Clock
from controller.config.model import LineConfig
from simulators.conveyor.address_space import ConveyorNodes, MethodCallbacks
from simulators.conveyor.facts import (
    ChuteChanged,
    DivertFinished,
    Fact,
    ItemRead,
    ZoneChanged,
    ZoneJamChanged,
    ZoneMotionChanged,
)
from simulators.conveyor.motion import JogRefused, LoopModel, UnknownName
from simulators.conveyor.packml import (
    InvalidTransition,
    PackMLCommand,
    PackMLMachine,
    PackMLState,
)
from simulators.conveyor.retained import RetainedState, write_state
from simulators.opcua_nodes import MethodCallback, bad, double_args, string_args

log = logging.getLogger(__name__)

_STRING = ua.VariantType.String
_UINT32 = ua.VariantType.UInt32
_BOOLEAN = ua.VariantType.Boolean
_UINT32_MAX = 2**32 - 1

RETAIN_WALL_SECONDS = 0.5  # the longest the state file lags the belt while items move


_bad = bad
_string_args = string_args
_double_args = double_args


class ConveyorBindings:
    """Connects a :class:`LoopModel` and a :class:`PackMLMachine` to the address space."""

    def __init__(
        self,
        server: Server,
        config: LineConfig,
        clock: Clock,
        seed: int = 0,
        state_file: Path | None = None,
    ) -> None:
        self._server = server
        self._clock = clock
        self._conveyor_id = config.conveyor.id
        self.model = LoopModel(config.conveyor, start=clock.now(), seed=seed)
        self.machine = PackMLMachine()
        self._lock = asyncio.Lock()
        self._nodes: ConveyorNodes | None = None
        self._scan_events: dict[str, EventGenerator] = {}
        self._divert_events: dict[str, EventGenerator] = {}
        self._enabled_nodes: dict[ua.NodeId, str] = {}
        self._written: dict[ua.NodeId, Any] = {}
        # the controller's life sign: armed by its first write, tripped after a silence
        self._watchdog_timeout = config.conveyor.watchdog.timeout
        self._watchdog_value: int | None = None
        self._watchdog_at = 0.0  # wall clock (time.monotonic) of the last new value
        self.watchdog_tripped = False
        self._state_file = state_file
        self._saved: tuple[int, PackMLState] | None = None  # model revision and state written
        self._saved_at = 0.0  # wall clock of the last write
        self._save_failing = False

    @property
    def callbacks(self) -> MethodCallbacks:
        return MethodCallbacks(
            packml=self._packml,
            divert=self._divert,
            induct=self._induct,
            tracking=self._tracking,
            journal=self._journal,
            jog=self._jog,
        )

    async def attach(self, nodes: ConveyorNodes) -> None:
        """Create the event generators and listen for client writes, once nodes exist."""
        self._nodes = nodes
        for scanner_id, node in nodes.scanners.items():
            self._scan_events[scanner_id] = await self._server.get_event_generator(
                nodes.scan_event_type, node.nodeid
            )
        for divert_id, node in nodes.diverts.items():
            self._divert_events[divert_id] = await self._server.get_event_generator(
                nodes.divert_event_type, node.nodeid
            )
        self._enabled_nodes = {c.enabled.nodeid: cid for cid, c in nodes.chutes.items()}
        self._server.subscribe_server_callback(CallbackType.PostWrite, self._on_write)

    def detach(self) -> None:
        self._server.unsubscribe_server_callback(CallbackType.PostWrite, self._on_write)

    # --- changes ---------------------------------------------------------------------------

    async def change(self, mutate: Callable[[float], list[Fact]]) -> None:
        """Run ``mutate(now)`` on the model and publish its facts, under the lock."""
        async with self._lock:
            await self._publish(mutate(self._clock.now()))
            await self._retain()

    async def tick(self) -> None:
        async with self._lock:
            now = self._clock.now()
            await self._publish(self.model.step(now))
            if (
                self._watchdog_value is not None
                and not self.watchdog_tripped
                and self.machine.producing
                and time.monotonic() - self._watchdog_at > self._watchdog_timeout
            ):
                await self._trip_watchdog(now)
            await self._retain()

    async def restore(self, state: RetainedState) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line.

        The unit comes back in its retained PackML state, except that a unit that was in
        ``Execute`` comes back ``Held`` with ``WatchdogTripped`` set: a restart never starts
        the belts by itself, and to the controller it looks like any loss of communication
        (read the state, reconcile, ``Unhold``).
        """
        if state.conveyor != self._conveyor_id:
            raise ValueError(
                f"the state file is of conveyor {state.conveyor!r}, not {self._conveyor_id!r}"
            )
        async with self._lock:
            now = self._clock.now()
            facts = self.model.restore(state.loop, now)
            retained = state.packml_state
            tripped = retained is PackMLState.EXECUTE
            self.machine.state = PackMLState.HELD if tripped else retained
            facts += self.model.set_producing(self.machine.producing, now)
            await self._publish(facts)
            await self._write(self._node().state, self.machine.state.value, _STRING)
            self.watchdog_tripped = tripped
            await self._write(self._node().watchdog_tripped, tripped, _BOOLEAN)
            await self._retain()
        log.info(
            "retained state loaded",
            extra={
                "conveyor": self._conveyor_id,
                "state": self.machine.state.value,
                "retained_state": retained.value,
                "items": len(state.loop.items) + len(state.loop.waiting),
                "journal_last": state.loop.journal_last,
            },
        )

    async def _retain(self) -> None:
        """Write the retained state if it changed, or if items moved for a while (under the
        lock, so the file follows the changes in order)."""
        if self._state_file is None:
            return
        key = (self.model.revision, self.machine.state)
        wall = time.monotonic()
        moved = self.model.moving and self.model.on_belt > 0
        if key == self._saved and not (moved and wall - self._saved_at >= RETAIN_WALL_SECONDS):
            return
        snapshot = RetainedState.model_construct(
            format=1,
            conveyor=self._conveyor_id,
            packml_state=self.machine.state,
            loop=self.model.retained(),
        )
        try:
            await asyncio.to_thread(write_state, self._state_file, snapshot)
        except OSError as exc:
            if not self._save_failing:
                log.error(
                    "retained state not written",
                    extra={
                        "conveyor": self._conveyor_id,
                        "file": str(self._state_file),
                        "error": str(exc),
                    },
                )
            self._save_failing = True
            self._saved_at = wall  # try again at the next change or in a while
            return
        if self._save_failing:
            log.info("retained state written again", extra={"conveyor": self._conveyor_id})
        self._save_failing = False
        self._saved, self._saved_at = key, wall

    async def _trip_watchdog(self, now: float) -> None:
        """The controller stopped writing its counter: hold the belts (a PLC's safe stop).
        ``WatchdogTripped`` stays set, and the unit held, until a client sends a PackML
        command (``Unhold``, ``Stop``, ...)."""
        self.watchdog_tripped = True
        state = self.machine.apply(PackMLCommand.HOLD)
        await self._publish(self.model.set_producing(self.machine.producing, now))
        await self._write(self._node().state, state.value, _STRING)
        await self._write(self._node().watchdog_tripped, True, ua.VariantType.Boolean)
        log.warning(
            "controller watchdog expired: belts held",
            extra={
                "conveyor": self._conveyor_id,
                "silent_wall_seconds": round(time.monotonic() - self._watchdog_at, 2),
                "timeout": self._watchdog_timeout,
            },
        )

    @property
    def watchdog_value(self) -> int | None:
        return self._watchdog_value

    async def _watchdog_written(self, value: int) -> None:
        async with self._lock:
            if value != self._watchdog_value:
                self._watchdog_value, self._watchdog_at = value, time.monotonic()

    async def induct(self, tote_id: str, zone_id: str) -> str:
        """Hand a tote to the loop; raises ``UnknownName`` for an unknown zone or empty id."""
        async with self._lock:
            item_id, facts = self.model.induct(tote_id, zone_id, self._clock.now())
            await self._publish(facts)
            await self._retain()
        log.debug("tote inducted", extra={"tote_id": tote_id, "zone": zone_id, "item": item_id})
        return item_id

    # --- method callbacks ------------------------------------------------------------------

    def _packml(self, command: PackMLCommand) -> MethodCallback:
        async def call(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            if args:
                return _bad(ua.StatusCodes.BadTooManyArguments)
            async with self._lock:
                try:
                    state = self.machine.apply(command)
                except InvalidTransition as exc:
                    log.info(
                        "PackML command refused",
                        extra={"command": command.value, "state": exc.state.value},
                    )
                    return _bad(ua.StatusCodes.BadInvalidState)
                facts = self.model.set_producing(self.machine.producing, self._clock.now())
                await self._publish(facts)
                await self._write(self._node().state, state.value, _STRING)
                if self.watchdog_tripped:  # a client has decided what happens next
                    self.watchdog_tripped = False
                    await self._write(self._node().watchdog_tripped, False, ua.VariantType.Boolean)
                await self._retain()
            log.info("PackML state changed", extra={"command": command.value, "state": state.value})
            return []

        return call

    def _jog(self, zone_id: str) -> MethodCallback:
        async def call(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            values = _double_args(args, 2)
            if isinstance(values, ua.StatusCode):
                return values
            speed, seconds = values
            async with self._lock:
                try:
                    facts = self.model.jog(zone_id, speed, seconds, self._clock.now())
                except JogRefused as exc:
                    log.info("jog refused", extra={"zone": zone_id, "why": str(exc)})
                    return _bad(ua.StatusCodes.BadInvalidState)
                except ValueError as exc:
                    log.info("jog refused", extra={"zone": zone_id, "why": str(exc)})
                    return _bad(ua.StatusCodes.BadOutOfRange)
                await self._publish(facts)
            log.info("zone jogged", extra={"zone": zone_id, "speed": speed, "seconds": seconds})
            return []

        return call

    async def _divert(self, parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
        values = _string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        item_id, chute_id = values
        try:
            self.model.request_divert(item_id, chute_id)
        except UnknownName as exc:
            log.info("divert refused", extra={"item": item_id, "chute": chute_id, "why": str(exc)})
            return _bad(ua.StatusCodes.BadInvalidArgument)
        return []

    async def _induct(self, parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
        values = _string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        try:
            item_id = await self.induct(values[0], values[1])
        except UnknownName:
            return _bad(ua.StatusCodes.BadInvalidArgument)
        return [ua.Variant(item_id, _STRING)]

    async def _tracking(self, parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
        """Every item the loop knows, as parallel arrays."""
        if args:
            return _bad(ua.StatusCodes.BadTooManyArguments)
        async with self._lock:
            tracked = self.model.tracking()
        return [
            ua.Variant([t.item_id for t in tracked], _STRING),
            ua.Variant([t.tote_id for t in tracked], _STRING),
            ua.Variant([t.zone_id for t in tracked], _STRING),
            ua.Variant([t.on_belt for t in tracked], _BOOLEAN),
            ua.Variant([t.requested for t in tracked], _STRING),
        ]

    async def _journal(self, parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
        """Divert journal entries after ``Since``, as parallel arrays, and the last sequence."""
        if not args:
            return _bad(ua.StatusCodes.BadArgumentsMissing)
        if len(args) > 1:
            return _bad(ua.StatusCodes.BadTooManyArguments)
        since = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        if isinstance(since, bool) or not isinstance(since, int) or not 0 <= since <= _UINT32_MAX:
            return _bad(ua.StatusCodes.BadInvalidArgument)
        async with self._lock:
            last = self.model.journal.last
            entries = self.model.journal.since(since)
        return [
            ua.Variant(last, _UINT32),
            ua.Variant([e.sequence for e in entries], _UINT32),
            ua.Variant([e.item_id for e in entries], _STRING),
            ua.Variant([e.tote_id for e in entries], _STRING),
            ua.Variant([e.chute_id for e in entries], _STRING),
            ua.Variant([e.ok for e in entries], _BOOLEAN),
        ]

    async def _on_write(self, event: ServerItemCallback, _: CallbackService) -> None:
        """A client wrote a chute's ``Enabled`` (tell the motion model) or the watchdog."""
        results = event.response_params or []
        for write, status in zip(event.request_params.NodesToWrite, results, strict=False):
            if write.NodeId == self._node().watchdog.nodeid and status.is_good():
                await self._watchdog_written(int(write.Value.Value.Value))
                continue
            chute_id = self._enabled_nodes.get(write.NodeId)
            if chute_id is None or not status.is_good():
                continue
            enabled = bool(write.Value.Value.Value)
            await self.change(partial(self.model.set_chute_enabled, chute_id, enabled))

    # --- publishing ------------------------------------------------------------------------

    def _node(self) -> ConveyorNodes:
        if self._nodes is None:
            raise RuntimeError("bindings are not attached to an address space")
        return self._nodes

    def _utc_at(self, at: float) -> datetime:
        return self._clock.utcnow() - timedelta(seconds=self._clock.now() - at)

    async def _write(self, node: Node, value: Any, vtype: ua.VariantType) -> None:
        """Write a value if it differs from the last one written (no repeated notifications)."""
        if node.nodeid in self._written and self._written[node.nodeid] == value:
            return
        self._written[node.nodeid] = value
        dv = ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=self._clock.utcnow())
        await self._server.write_attribute_value(node.nodeid, dv)

    async def _publish(self, facts: Iterable[Fact]) -> None:
        nodes = self._node()
        for fact in facts:
            match fact:
                case ZoneChanged(zone_id, occupied, item_id):
                    zone = nodes.zones[zone_id]
                    await self._write(zone.occupied, occupied, ua.VariantType.Boolean)
                    await self._write(zone.item_id, item_id, _STRING)
                case ZoneMotionChanged(zone_id, running, speed):
                    zone = nodes.zones[zone_id]
                    await self._write(zone.running, running, ua.VariantType.Boolean)
                    await self._write(zone.speed_actual, speed, ua.VariantType.Double)
                case ZoneJamChanged(zone_id, jammed):
                    await self._write(nodes.zones[zone_id].jammed, jammed, ua.VariantType.Boolean)
                case ChuteChanged(chute_id, count, full, enabled, delivered):
                    chute = nodes.chutes[chute_id]
                    await self._write(chute.count, count, ua.VariantType.UInt32)
                    await self._write(chute.full, full, ua.VariantType.Boolean)
                    await self._write(chute.enabled, enabled, ua.VariantType.Boolean)
                    await self._write(chute.delivered, delivered, ua.VariantType.UInt32)
                case ItemRead():
                    await self._emit_scan(fact)
                case DivertFinished():
                    await self._emit_divert(fact)

    async def _emit_scan(self, fact: ItemRead) -> None:
        gen = self._scan_events[fact.scanner_id]
        ev = gen.event
        ev.ItemId = fact.item_id
        ev.Codes = list(fact.codes)
        ev.NoRead = fact.no_read
        ev.MultiRead = fact.multi_read
        ev.Severity = 100
        message = f"read {','.join(fact.codes)}" if fact.codes else "no read"
        await gen.trigger(time_attr=self._utc_at(fact.at), message=message)

    async def _emit_divert(self, fact: DivertFinished) -> None:
        gen = self._divert_events[fact.divert_id]
        ev = gen.event
        ev.ItemId = fact.item_id
        ev.ChuteId = fact.chute_id
        ev.DivertId = fact.divert_id
        ev.Success = fact.success
        ev.Sequence = fact.sequence
        ev.Severity = 100 if fact.success else 300
        message = f"{fact.item_id} -> {fact.chute_id}" if fact.success else "divert refused"
        await gen.trigger(time_attr=self._utc_at(fact.at), message=message)

"""The conveyor simulator's OPC UA methods and the client writes it listens to.

Each method callback checks its arguments, makes its change under the bindings' lock and
answers with output arguments or a bad status code: the PackML commands of the unit's state
machines, ``SetMachSpeed`` and ``SetUnitMode`` (``SetProduct``/``SetParameter`` are not
supported), a zone's ``Jog``, the
sorter's ``Divert``, ``Induct``, ``Tracking`` and ``Journal``. A client writing a chute's
``Enabled`` tells the motion model; a client writing the watchdog counter keeps the controller's
life sign alive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from asyncua import ua
from asyncua.common.callback import CallbackService, ServerItemCallback

from devices.opcua.packml import Level
from simulators.conveyor.bindings_state import (
    _BOOLEAN,
    _STRING,
    _UINT32,
    _UINT32_MAX,
    BindingsState,
    StopReason,
)
from simulators.conveyor.facts import Fact
from simulators.conveyor.motion import JogRefused, UnknownName
from simulators.conveyor.packml import InvalidTransition, PackMLCommand
from simulators.conveyor.packml_unit import PRODUCE
from simulators.opcua_nodes import MethodCallback, bad, double_args, string_args

log = logging.getLogger("simulators.conveyor.bindings")  # the bindings log under one name

_bad = bad
_string_args = string_args
_double_args = double_args


class BindingsMethods(BindingsState):
    """Answers the OPC UA methods and client writes (mixed into
    :class:`~simulators.conveyor.bindings.ConveyorBindings`)."""

    if TYPE_CHECKING:

        async def change(self, mutate: Callable[[float], list[Fact]]) -> None: ...

        async def induct(self, tote_id: str, zone_id: str) -> str: ...

        async def _retain(self) -> None: ...

        async def _watchdog_written(self, value: int) -> None: ...

    def _packml(self, name: str, level: Level) -> MethodCallback:
        """A command method of one of the unit's state machines (OPC 30050)."""
        command = PackMLCommand(name)

        async def call(parent: ua.NodeId, *args: Any) -> list[ua.Variant] | ua.StatusCode:
            if args:
                return _bad(ua.StatusCodes.BadTooManyArguments)
            async with self._lock:
                try:
                    state = self.machine.apply(command, level)
                except InvalidTransition as exc:
                    log.info(
                        "PackML command refused",
                        extra={"command": command.value, "state": exc.state.value},
                    )
                    return _bad(ua.StatusCodes.BadInvalidState)
                facts = self.model.set_producing(self.machine.producing, self._clock.now())
                await self._publish(facts)
                await self._write_state(StopReason.NONE)
                if self.watchdog_tripped:  # a client has decided what happens next
                    self.watchdog_tripped = False
                    await self._write(self._node().watchdog_tripped, False, ua.VariantType.Boolean)
                await self._retain()
            log.info("PackML state changed", extra={"command": command.value, "state": state.value})
            return []

        return call

    async def _set_mach_speed(
        self, parent: ua.NodeId, *args: Any
    ) -> list[ua.Variant] | ua.StatusCode:
        """``SetMachSpeed(RequestedMachineSpeed)``: the belts have a fixed-speed drive, so the
        only speed in MachSpeed's EURange is the belt speed."""
        values = _double_args(args, 1)
        if isinstance(values, ua.StatusCode):
            return values
        if not math.isclose(values[0], self._belt_speed, rel_tol=1e-6):
            return _bad(ua.StatusCodes.BadOutOfRange)
        return []

    async def _set_unit_mode(
        self, parent: ua.NodeId, *args: Any
    ) -> list[ua.Variant] | ua.StatusCode:
        """``SetUnitMode(RequestedMode)``: the loop knows one mode, Produce (1) of
        ProductionMaintenanceModeEnum; Maintenance and Manual are not supported."""
        if len(args) != 1:
            return _bad(
                ua.StatusCodes.BadArgumentsMissing
                if not args
                else ua.StatusCodes.BadTooManyArguments
            )
        mode = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        if isinstance(mode, bool) or not isinstance(mode, int):
            return _bad(ua.StatusCodes.BadInvalidArgument)
        if mode == PRODUCE:
            return []
        if mode in (2, 3):  # Maintenance, Manual
            return _bad(ua.StatusCodes.BadNotSupported)
        return _bad(ua.StatusCodes.BadOutOfRange)

    async def _not_supported(self, parent: ua.NodeId, *args: Any) -> ua.StatusCode:
        """``SetProduct``/``SetParameter``: a conveyor loop has no products or parameters."""
        return _bad(ua.StatusCodes.BadNotSupported)

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

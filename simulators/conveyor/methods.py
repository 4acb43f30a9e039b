"""The conveyor simulator's OPC UA methods and the client writes it listens to.

Each method callback checks its arguments, makes its change under the unit's lock and answers
with output arguments or a bad status code: the PackML commands of the unit's state machines,
``SetMachSpeed`` and ``SetUnitMode`` (``SetProduct``/``SetParameter`` are not supported), a
zone's ``Jog``, the sorter's ``Divert``, ``Induct``, ``Tracking`` and ``Journal``. A client
writing a chute's ``Enabled`` tells the motion model; a client writing the watchdog counter
keeps the controller's life sign alive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from asyncua import ua
from asyncua.common.callback import CallbackService, ServerItemCallback

from devices.opcua.packml import Level
from simulators.conveyor.address_space import ConveyorNodes, MethodCallbacks
from simulators.conveyor.facts import Fact
from simulators.conveyor.motion import JogRefused, UnknownName
from simulators.conveyor.packml import InvalidTransition, PackMLCommand
from simulators.conveyor.packml_unit import PRODUCE, PackMLCallbacks
from simulators.conveyor.publisher import BOOLEAN, STRING, UINT32, ConveyorPublisher
from simulators.conveyor.retention import ConveyorRetention
from simulators.conveyor.unit import ConveyorUnit, StopReason
from simulators.opcua_nodes import (
    MethodAnswer,
    MethodCallback,
    bad,
    double_args,
    string_args,
    uint32_arg,
)

log = logging.getLogger("simulators.conveyor.bindings")  # the bindings log under one name


class Changes(Protocol):
    """The changes a method makes through the bindings (under the lock, published)."""

    async def change(self, mutate: Callable[[float], list[Fact]]) -> None: ...

    async def induct(self, tote_id: str, zone_id: str) -> str: ...


class ConveyorMethods:
    """Answers the OPC UA methods and client writes of one conveyor unit."""

    def __init__(
        self,
        unit: ConveyorUnit,
        publisher: ConveyorPublisher,
        retention: ConveyorRetention,
        changes: Changes,
    ) -> None:
        self._unit = unit
        self._publisher = publisher
        self._retention = retention
        self._changes = changes
        self._enabled_nodes: dict[ua.NodeId, str] = {}

    def callbacks(self) -> MethodCallbacks:
        return MethodCallbacks(
            packml=PackMLCallbacks(
                command=self._packml,
                set_mach_speed=self._set_mach_speed,
                set_unit_mode=self._set_unit_mode,
                not_supported=self._not_supported,
            ),
            divert=self._divert,
            induct=self._induct,
            tracking=self._tracking,
            journal=self._journal,
            jog=self._jog,
        )

    def attach(self, nodes: ConveyorNodes) -> None:
        """Know the chutes' ``Enabled`` nodes, whose client writes :meth:`on_write` hears."""
        self._enabled_nodes = {c.enabled.nodeid: cid for cid, c in nodes.chutes.items()}

    def _packml(self, name: str, level: Level) -> MethodCallback:
        """A command method of one of the unit's state machines (OPC 30050)."""
        command = PackMLCommand(name)
        unit = self._unit

        async def call(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            if args:
                return bad(ua.StatusCodes.BadTooManyArguments)
            async with unit.lock:
                try:
                    state = unit.machine.apply(command, level)
                except InvalidTransition as exc:
                    log.info(
                        "PackML command refused",
                        extra={"command": command.value, "state": exc.state.value},
                    )
                    return bad(ua.StatusCodes.BadInvalidState)
                facts = unit.model.set_producing(unit.machine.producing, unit.clock.now())
                await self._publisher.publish(facts)
                await self._publisher.write_state(StopReason.NONE)
                if unit.watchdog.tripped:  # a client has decided what happens next
                    unit.watchdog.tripped = False
                    await self._publisher.write_tripped(False)
                await self._retention.retain()
            log.info("PackML state changed", extra={"command": command.value, "state": state.value})
            return []

        return call

    async def _set_mach_speed(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        """``SetMachSpeed(RequestedMachineSpeed)``: the belts have a fixed-speed drive, so the
        only speed in MachSpeed's EURange is the belt speed."""
        values = double_args(args, 1)
        if isinstance(values, ua.StatusCode):
            return values
        if not math.isclose(values[0], self._unit.belt_speed, rel_tol=1e-6):
            return bad(ua.StatusCodes.BadOutOfRange)
        return []

    async def _set_unit_mode(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        """``SetUnitMode(RequestedMode)``: the loop knows one mode, Produce (1) of
        ProductionMaintenanceModeEnum; Maintenance and Manual are not supported."""
        if len(args) != 1:
            return bad(
                ua.StatusCodes.BadArgumentsMissing
                if not args
                else ua.StatusCodes.BadTooManyArguments
            )
        mode = args[0].Value if isinstance(args[0], ua.Variant) else args[0]
        if isinstance(mode, bool) or not isinstance(mode, int):
            return bad(ua.StatusCodes.BadInvalidArgument)
        if mode == PRODUCE:
            return []
        if mode in (2, 3):  # Maintenance, Manual
            return bad(ua.StatusCodes.BadNotSupported)
        return bad(ua.StatusCodes.BadOutOfRange)

    async def _not_supported(self, parent: ua.NodeId, *args: Any) -> ua.StatusCode:
        """``SetProduct``/``SetParameter``: a conveyor loop has no products or parameters."""
        return bad(ua.StatusCodes.BadNotSupported)

    def _jog(self, zone_id: str) -> MethodCallback:
        unit = self._unit

        async def call(parent: ua.NodeId, *args: Any) -> MethodAnswer:
            values = double_args(args, 2)
            if isinstance(values, ua.StatusCode):
                return values
            speed, seconds = values
            async with unit.lock:
                try:
                    facts = unit.model.jog(zone_id, speed, seconds, unit.clock.now())
                except JogRefused as exc:
                    log.info("jog refused", extra={"zone": zone_id, "why": str(exc)})
                    return bad(ua.StatusCodes.BadInvalidState)
                except ValueError as exc:
                    log.info("jog refused", extra={"zone": zone_id, "why": str(exc)})
                    return bad(ua.StatusCodes.BadOutOfRange)
                await self._publisher.publish(facts)
            log.info("zone jogged", extra={"zone": zone_id, "speed": speed, "seconds": seconds})
            return []

        return call

    async def _divert(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        values = string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        item_id, chute_id = values
        try:
            self._unit.model.request_divert(item_id, chute_id)
        except UnknownName as exc:
            log.info("divert refused", extra={"item": item_id, "chute": chute_id, "why": str(exc)})
            return bad(ua.StatusCodes.BadInvalidArgument)
        return []

    async def _induct(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        values = string_args(args, 2)
        if isinstance(values, ua.StatusCode):
            return values
        try:
            item_id = await self._changes.induct(values[0], values[1])
        except UnknownName:
            return bad(ua.StatusCodes.BadInvalidArgument)
        return [ua.Variant(item_id, STRING)]

    async def _tracking(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        """Every item the loop knows, as parallel arrays."""
        if args:
            return bad(ua.StatusCodes.BadTooManyArguments)
        async with self._unit.lock:
            tracked = self._unit.model.tracking()
        return [
            ua.Variant([t.item_id for t in tracked], STRING),
            ua.Variant([t.tote_id for t in tracked], STRING),
            ua.Variant([t.zone_id for t in tracked], STRING),
            ua.Variant([t.on_belt for t in tracked], BOOLEAN),
            ua.Variant([t.requested for t in tracked], STRING),
        ]

    async def _journal(self, parent: ua.NodeId, *args: Any) -> MethodAnswer:
        """Divert journal entries after ``Since``, as parallel arrays, and the last sequence."""
        since = uint32_arg(args)
        if isinstance(since, ua.StatusCode):
            return since
        async with self._unit.lock:
            journal = self._unit.model.journal
            last, entries = journal.last, journal.since(since)
        return [
            ua.Variant(last, UINT32),
            ua.Variant([e.sequence for e in entries], UINT32),
            ua.Variant([e.item_id for e in entries], STRING),
            ua.Variant([e.tote_id for e in entries], STRING),
            ua.Variant([e.chute_id for e in entries], STRING),
            ua.Variant([e.ok for e in entries], BOOLEAN),
        ]

    async def on_write(self, event: ServerItemCallback, _: CallbackService) -> None:
        """A client wrote a chute's ``Enabled`` (tell the motion model) or the watchdog."""
        unit = self._unit
        results = event.response_params or []
        for write, status in zip(event.request_params.NodesToWrite, results, strict=False):
            if write.NodeId == unit.attached().watchdog.nodeid and status.is_good():
                async with unit.lock:
                    unit.watchdog.written(int(write.Value.Value.Value))
                continue
            chute_id = self._enabled_nodes.get(write.NodeId)
            if chute_id is None or not status.is_good():
                continue
            enabled = bool(write.Value.Value.Value)
            await self._changes.change(partial(unit.model.set_chute_enabled, chute_id, enabled))

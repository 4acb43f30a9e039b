"""What the conveyor simulator's OPC UA bindings share: the loop, its PackML machine, the
controller's watchdog, the one lock every change goes through and the nodes once built.

:class:`ConveyorUnit` is passed to each part of the bindings (publishing, methods, retained
state), so they work on one explicit state; the lock keeps the facts of one change in the
order they happened, whether the change came from a method call, a client write, the
scripting API or the motion tick.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import IntEnum

from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.conveyor.address_space import ConveyorNodes
from simulators.conveyor.motion import LoopModel
from simulators.conveyor.packml import PackMLMachine


class StopReason(IntEnum):
    """``Admin.StopReason`` IDs: why the unit last stopped its belts by itself (a client's
    command clears it)."""

    NONE = 0
    CONTROLLER_SILENT = 1  # the controller's watchdog counter stopped: held
    RESTARTED = 2  # came back from a restart with retained state: held

    @property
    def message(self) -> str:
        return STOP_MESSAGES[self]


STOP_MESSAGES = {
    StopReason.NONE: "",
    StopReason.CONTROLLER_SILENT: "controller watchdog expired",
    StopReason.RESTARTED: "restarted with retained state",
}


@dataclass
class ControllerWatchdog:
    """The controller's life sign: armed by its first write of the counter, expired after
    ``timeout`` wall seconds without a new value. ``tripped`` stays set until a client sends
    a PackML command."""

    timeout: float
    value: int | None = None
    at: float = 0.0  # wall clock (time.monotonic) of the last new value
    tripped: bool = False

    def written(self, value: int) -> None:
        if value != self.value:
            self.value, self.at = value, time.monotonic()

    def silent_for(self) -> float:
        return time.monotonic() - self.at

    def expired(self, producing: bool) -> bool:
        """Armed, not tripped yet, the belts produce and the counter has been silent too
        long."""
        return (
            self.value is not None
            and not self.tripped
            and producing
            and self.silent_for() > self.timeout
        )


@dataclass
class ConveyorUnit:
    conveyor_id: str
    belt_speed: float
    clock: Clock
    model: LoopModel
    machine: PackMLMachine
    watchdog: ControllerWatchdog
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    nodes: ConveyorNodes | None = None

    @classmethod
    def of(cls, config: LineConfig, clock: Clock, seed: int = 0) -> ConveyorUnit:
        conveyor = config.conveyor
        return cls(
            conveyor_id=conveyor.id,
            belt_speed=conveyor.belt_speed,
            clock=clock,
            model=LoopModel(conveyor, start=clock.now(), seed=seed),
            machine=PackMLMachine(),
            watchdog=ControllerWatchdog(conveyor.watchdog.timeout),
        )

    def attached(self) -> ConveyorNodes:
        if self.nodes is None:
            raise RuntimeError("bindings are not attached to an address space")
        return self.nodes

"""OPC UA bindings of the conveyor simulator: methods in, variable writes and events out.

:class:`ConveyorBindings` puts together the parts that share one :class:`ConveyorUnit` (the
motion model, the PackML machine, the controller's watchdog and the one lock every change goes
through): :class:`~simulators.conveyor.publisher.ConveyorPublisher` writes facts to the
address space, :class:`~simulators.conveyor.methods.ConveyorMethods` answers the OPC UA
methods and client writes, and :class:`~simulators.conveyor.retention.ConveyorRetention`
keeps the state file. This class runs the changes, the motion tick and the watchdog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from asyncua import Server
from asyncua.common.callback import CallbackType

from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.conveyor.address_space import ConveyorNodes, MethodCallbacks
from simulators.conveyor.facts import Fact
from simulators.conveyor.methods import ConveyorMethods
from simulators.conveyor.motion import LoopModel
from simulators.conveyor.packml import PackMLCommand, PackMLMachine
from simulators.conveyor.publisher import ConveyorPublisher
from simulators.conveyor.retained import RetainedState
from simulators.conveyor.retention import ConveyorRetention
from simulators.conveyor.unit import ConveyorUnit, StopReason
from simulators.opcua_server.writer import NodeWriter

log = logging.getLogger(__name__)


class ConveyorBindings:
    """Connects a :class:`~simulators.conveyor.motion.LoopModel` and a
    :class:`~simulators.conveyor.packml.PackMLMachine` to the address space of ``server``."""

    def __init__(
        self,
        server: Server,
        config: LineConfig,
        clock: Clock,
        seed: int = 0,
        state_file: Path | None = None,
    ) -> None:
        self._server = server
        self.unit = ConveyorUnit.of(config, clock, seed)
        self._publisher = ConveyorPublisher(self.unit, server, NodeWriter(server, clock))
        self._retention = ConveyorRetention(self.unit, self._publisher, state_file)
        self._methods = ConveyorMethods(self.unit, self._publisher, self._retention, self)

    @property
    def model(self) -> LoopModel:
        return self.unit.model

    @property
    def machine(self) -> PackMLMachine:
        return self.unit.machine

    @property
    def callbacks(self) -> MethodCallbacks:
        return self._methods.callbacks()

    @property
    def watchdog_value(self) -> int | None:
        return self.unit.watchdog.value

    @property
    def watchdog_tripped(self) -> bool:
        return self.unit.watchdog.tripped

    async def attach(self, nodes: ConveyorNodes) -> None:
        """Create the event generators and listen for client writes, once nodes exist."""
        self.unit.nodes = nodes
        await self._publisher.attach(nodes)
        await self._publisher.write_state(StopReason.NONE)
        self._methods.attach(nodes)
        self._server.subscribe_server_callback(CallbackType.PostWrite, self._methods.on_write)

    def detach(self) -> None:
        self._server.unsubscribe_server_callback(CallbackType.PostWrite, self._methods.on_write)

    async def restore(self, state: RetainedState) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line
        (:meth:`~simulators.conveyor.retention.ConveyorRetention.restore`)."""
        await self._retention.restore(state)

    # --- changes ---------------------------------------------------------------------------

    async def change(self, mutate: Callable[[float], list[Fact]]) -> None:
        """Run ``mutate(now)`` on the model and publish its facts, under the lock."""
        unit = self.unit
        async with unit.lock:
            await self._publisher.publish(mutate(unit.clock.now()))
            await self._retention.retain()

    async def tick(self) -> None:
        unit = self.unit
        async with unit.lock:
            now = unit.clock.now()
            await self._publisher.publish(unit.model.step(now))
            if unit.watchdog.expired(unit.machine.producing):
                await self._trip_watchdog(now)
            await self._retention.retain()

    async def _trip_watchdog(self, now: float) -> None:
        """The controller stopped writing its counter: hold the belts (a PLC's safe stop).
        ``WatchdogTripped`` stays set, and the unit held, until a client sends a PackML
        command (``Unhold``, ``Stop``, ...)."""
        unit = self.unit
        unit.watchdog.tripped = True
        unit.machine.apply(PackMLCommand.HOLD)
        await self._publisher.publish(unit.model.set_producing(unit.machine.producing, now))
        await self._publisher.write_state(StopReason.CONTROLLER_SILENT)
        await self._publisher.write_tripped(True)
        log.warning(
            "controller watchdog expired: belts held",
            extra={
                "conveyor": unit.conveyor_id,
                "silent_wall_seconds": round(unit.watchdog.silent_for(), 2),
                "timeout": unit.watchdog.timeout,
            },
        )

    async def induct(self, tote_id: str, zone_id: str) -> str:
        """Hand a tote to the loop; raises ``UnknownName`` for an unknown zone or empty id."""
        unit = self.unit
        async with unit.lock:
            item_id, facts = unit.model.induct(tote_id, zone_id, unit.clock.now())
            await self._publisher.publish(facts)
            await self._retention.retain()
        log.debug("tote inducted", extra={"tote_id": tote_id, "zone": zone_id, "item": item_id})
        return item_id

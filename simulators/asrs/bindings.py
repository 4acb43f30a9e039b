"""OPC UA bindings of the AS/RS simulator: methods in, variable writes and events out.

:class:`AsrsBindings` puts together the parts that share one
:class:`~simulators.asrs.cranes.AsrsCranes` (a :class:`~simulators.asrs.motion.CraneModel` per
aisle and the one lock every change goes through):
:class:`~simulators.asrs.publisher.AsrsPublisher` writes the cranes to the address space,
:class:`~simulators.asrs.methods.AsrsMethods` answers the OPC UA methods and
:class:`~simulators.asrs.retention.AsrsRetention` keeps the state file. This class runs the
changes and the motion tick, and hands delivered totes over.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from asyncua import Server

from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.asrs.address_space import AsrsCallbacks, AsrsNodes
from simulators.asrs.cranes import AsrsCranes, DeliveredHook, UnknownName
from simulators.asrs.methods import AsrsMethods
from simulators.asrs.motion import CraneModel
from simulators.asrs.motion_values import Accepted, Command, Fact, Refused, ToteDelivered
from simulators.asrs.publisher import AsrsPublisher
from simulators.asrs.retained import RetainedAsrs
from simulators.asrs.retention import AsrsRetention
from simulators.opcua_nodes import MethodCallback
from simulators.opcua_server.writer import NodeWriter

log = logging.getLogger(__name__)


class AsrsBindings:
    """Connects the cranes' models to the address space of ``server``."""

    def __init__(
        self,
        server: Server,
        config: LineConfig,
        clock: Clock,
        state_file: Path | None = None,
        on_delivered: DeliveredHook | None = None,
    ) -> None:
        self.state = AsrsCranes(config, clock)
        self._publisher = AsrsPublisher(self.state, server, NodeWriter(server, clock))
        self._retention = AsrsRetention(self.state, self._publisher, state_file)
        self._methods = AsrsMethods(self.state, self)
        self.on_delivered = on_delivered

    @property
    def cranes(self) -> dict[str, CraneModel]:
        return self.state.cranes

    @property
    def crane_aisle(self) -> dict[str, str]:
        return self.state.crane_aisle

    def crane(self, crane_or_aisle: str) -> CraneModel:
        return self.state.crane(crane_or_aisle)

    @property
    def callbacks(self) -> AsrsCallbacks:
        return self._methods.callbacks()

    async def attach(self, nodes: AsrsNodes) -> None:
        self.state.nodes = nodes
        await self._publisher.attach(nodes)

    def detach(self) -> None:
        """Nothing to let go of: the AS/RS listens to no client writes."""

    def retained(self) -> RetainedAsrs:
        return self._retention.retained()

    async def restore(self, state: RetainedAsrs) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line."""
        await self._retention.restore(state)

    # --- changes ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Advance every crane to now, publish what happened, hand delivered totes over."""
        async with self.state.lock:
            facts = self.state.step()
            await self._publisher.publish(facts)
            await self._retention.retain()
        await self._deliver(facts)

    async def change(self, mutate: Callable[[float], Any]) -> Any:
        """Run ``mutate(now)`` after advancing the cranes, then publish, under the lock."""
        state = self.state
        async with state.lock:
            facts = state.step()
            try:
                result = mutate(state.clock.now())
            finally:
                facts += state.step()
                await self._publisher.publish(facts)
                await self._retention.retain()
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

    def arrive(self, tote: str, aisle: str, now: float) -> None:
        self.state.arrive(tote, aisle, now)

    def block(self, location: str, blocked: bool) -> None:
        self.state.block(location, blocked)

    async def submit(self, aisle: str, command: Command) -> Accepted | Refused:
        cranes = self.state.cranes
        result: Accepted | Refused = await self.change(
            lambda now: cranes[aisle].submit(command, now)
        )
        extra = {"crane": cranes[aisle].crane_id, "command": command.command_id}
        if isinstance(result, Refused):
            log.info(
                "crane command refused",
                extra={**extra, "why": result.reason.value, "detail": result.detail},
            )
        elif not result.duplicate:
            log.info("crane command accepted", extra={**extra, "dual": command.dual})
        return result


__all__ = ["AsrsBindings", "DeliveredHook", "MethodCallback", "UnknownName"]

"""OPC UA bindings of the AS/RS simulator: methods in, variable writes and events out.

:class:`AsrsBindings` owns one :class:`~simulators.asrs.motion.CraneModel` per aisle. Every
change goes through one lock, so completion events leave in journal order and the variables
follow the model; variables are written only when their value changes. With a state file the
bindings keep the retentive state there (:mod:`simulators.asrs.retained`) right after every
change of what is retained.

The bindings are put together from one module per concept: this module has the changes and the
motion tick; :mod:`simulators.asrs.bindings_methods` answers the OPC UA methods;
:mod:`simulators.asrs.bindings_retained` keeps the state file; :mod:`simulators.asrs.bindings_state`
holds the state they share and publishes it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from routing.rack import BadLocation, parse_location
from simulators.asrs.address_space import AsrsCallbacks, AsrsNodes
from simulators.asrs.bindings_methods import BindingsMethods
from simulators.asrs.bindings_retained import BindingsRetained
from simulators.asrs.bindings_state import DeliveredHook, UnknownName
from simulators.asrs.motion_values import Accepted, Command, Fact, Refused, ToteDelivered
from simulators.opcua_nodes import MethodCallback, event_source

log = logging.getLogger(__name__)


class AsrsBindings(BindingsMethods, BindingsRetained):
    """Connects the cranes' models to the address space; the constructor is
    :class:`~simulators.asrs.bindings_state.BindingsState`'s."""

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
            self._events[aisle] = await event_source(
                self._server, nodes.completed_event_type, crane.crane
            )

    # --- changes ---------------------------------------------------------------------------

    async def tick(self) -> None:
        """Advance every crane to now, publish what happened, hand delivered totes over."""
        async with self._lock:
            facts = self._step()
            await self._publish(facts)
            await self._retain()
        await self._deliver(facts)

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


__all__ = ["AsrsBindings", "DeliveredHook", "MethodCallback", "UnknownName"]

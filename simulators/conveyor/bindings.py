"""OPC UA bindings of the conveyor simulator: methods in, variable writes and events out.

:class:`ConveyorBindings` owns the motion model and the PackML machine. Every change goes through
one lock, so the facts of one change are written to the address space (and events fired) in the
order they happened, whether the change came from a method call, a client write, the scripting
API or the motion tick. Variables are written only when their value changes.

With a state file the bindings also keep the unit's retentive state there
(:mod:`simulators.conveyor.retained`): right after every change of what the loop holds or of the
PackML state, and every :data:`~simulators.conveyor.bindings_retained.RETAIN_WALL_SECONDS`
while items move.

The bindings are put together from one module per concept: this module has the changes, the
motion tick and the controller's watchdog; :mod:`simulators.conveyor.bindings_methods` answers
the OPC UA methods and client writes; :mod:`simulators.conveyor.bindings_retained` keeps the
state file; :mod:`simulators.conveyor.bindings_state` holds the state they share and publishes
the model's facts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from asyncua import ua
from asyncua.common.callback import CallbackType

from simulators.conveyor.address_space import ConveyorNodes, MethodCallbacks
from simulators.conveyor.bindings_methods import BindingsMethods
from simulators.conveyor.bindings_retained import BindingsRetained
from simulators.conveyor.bindings_state import StopReason
from simulators.conveyor.facts import Fact
from simulators.conveyor.packml import PackMLCommand
from simulators.conveyor.packml_unit import PackMLCallbacks
from simulators.opcua_nodes import event_source

log = logging.getLogger(__name__)


class ConveyorBindings(BindingsMethods, BindingsRetained):
    """Connects a :class:`~simulators.conveyor.motion.LoopModel` and a
    :class:`~simulators.conveyor.packml.PackMLMachine` to the address space; the constructor
    is :class:`~simulators.conveyor.bindings_state.BindingsState`'s."""

    @property
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

    async def attach(self, nodes: ConveyorNodes) -> None:
        """Create the event generators and listen for client writes, once nodes exist."""
        self._nodes = nodes
        for scanner_id, node in nodes.scanners.items():
            self._scan_events[scanner_id] = await event_source(
                self._server, nodes.scan_event_type, node
            )
        for divert_id, node in nodes.diverts.items():
            self._divert_events[divert_id] = await event_source(
                self._server, nodes.divert_event_type, node
            )
        await self._write_state(StopReason.NONE)
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

    async def _trip_watchdog(self, now: float) -> None:
        """The controller stopped writing its counter: hold the belts (a PLC's safe stop).
        ``WatchdogTripped`` stays set, and the unit held, until a client sends a PackML
        command (``Unhold``, ``Stop``, ...)."""
        self.watchdog_tripped = True
        self.machine.apply(PackMLCommand.HOLD)
        await self._publish(self.model.set_producing(self.machine.producing, now))
        await self._write_state(StopReason.CONTROLLER_SILENT)
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

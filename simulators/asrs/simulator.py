"""The AS/RS simulator: a real asyncua server publishing the cranes of one line.

``async with AsrsSimulator(config, clock) as sim:`` starts the server on
``config.asrs.opcua.endpoint`` (or the endpoint given) and one background task, ``asrs.motion``,
that advances the cranes every :data:`DEFAULT_TICK_WALL_SECONDS` of wall time (the position
variables follow at that rate while a crane moves). Cranes move by :mod:`routing.crane`, so a
command takes exactly the cycle time ``linectl asrs estimate`` computes.

The Python API mirrors the ``Simulation`` object: :meth:`AsrsSimulator.arrive_at_pd` sets a
returning tote down at an aisle's P&D input, :meth:`AsrsSimulator.set_fault` /
:meth:`AsrsSimulator.clear_fault` and :meth:`AsrsSimulator.block_location` script faults.
``on_delivered(tote, aisle)`` (sync or async) is called for every retrieved tote set down at
the P&D output, the hand-over to the conveyor at the aisle's ``pd_zone``.

With a ``state_file`` the simulator keeps the retentive state there, as a PLC does across a
power cycle (:mod:`simulators.asrs.retained`), and takes it over on start.

Security: ``asrs.opcua.security`` ``None`` only, for now: anonymous sessions only, as in the
conveyor simulator's demo mode (:mod:`simulators.opcua_security`); a Basic256Sha256 line is
refused at construction with a clear message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from asyncua import Server

from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.asrs.address_space import build_address_space
from simulators.asrs.bindings import AsrsBindings, DeliveredHook, UnknownName
from simulators.asrs.motion import CraneModel
from simulators.asrs.motion_values import Accepted, Command, Kind, Refused, Transport
from simulators.asrs.retained import RetainedAsrs, RetainedStateError, read_state
from simulators.opcua_security import ServerIdentity
from simulators.opcua_server.host import ServerHost

log = logging.getLogger(__name__)

DEFAULT_TICK_WALL_SECONDS = 0.02


class AsrsSimulator:
    """Every aisle's crane, rack and P&D point, served over OPC UA."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        endpoint: str | None = None,
        *,
        tick_wall_seconds: float = DEFAULT_TICK_WALL_SECONDS,
        state_file: Path | None = None,
        on_delivered: DeliveredHook | None = None,
    ) -> None:
        if config.asrs.opcua.security != "None":
            raise ValueError(
                f"the AS/RS simulator serves security None only, not "
                f"{config.asrs.opcua.security} (asrs.opcua.security)"
            )
        if not config.asrs.aisles:
            raise ValueError("the line has no AS/RS aisles (asrs.aisles)")
        self._config = config
        self._clock = clock
        self._endpoint = endpoint or config.asrs.opcua.endpoint
        self._state_file = state_file
        self._on_delivered = on_delivered
        self._host: ServerHost[AsrsBindings] = ServerHost(
            "AS/RS", clock, tick_wall_seconds, "asrs.motion", log
        )

    @property
    def endpoint(self) -> str:
        return self._endpoint

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start serving; raises RetainedStateError when ``state_file`` cannot be taken over."""
        if self._host.running:
            raise RuntimeError("AS/RS simulator already started")
        retained = read_state(self._state_file) if self._state_file is not None else None
        identity = ServerIdentity(
            name="linectl AS/RS simulator",
            application_uri="urn:linectl:asrs-simulator",
            product_uri="urn:linectl:simulators:asrs",
            product_name="linectl AS/RS simulator",
        )
        # security None: one endpoint, anonymous sessions only
        bindings = await self._host.start(
            self._config.asrs.opcua,
            self._endpoint,
            identity,
            None,
            lambda server: self._bind(server, retained),
        )
        log.info(
            "AS/RS simulator listening",
            extra={"endpoint": self._endpoint, "cranes": list(bindings.crane_aisle)},
        )

    async def _bind(self, server: Server, retained: RetainedAsrs | None) -> AsrsBindings:
        """The address space of the line's cranes, bound to their models (taken over from
        ``retained``, when given), with the start state published."""
        bindings = AsrsBindings(
            server, self._config, self._clock, self._state_file, self._on_delivered
        )
        nodes = await build_address_space(server, self._config, bindings.callbacks)
        await bindings.attach(nodes)
        if retained is not None:
            try:
                await bindings.restore(retained)
            except ValueError as exc:
                raise RetainedStateError(f"{self._state_file}: {exc}") from None
        await bindings.tick()  # publish the start state (and write the state file)
        return bindings

    async def stop(self) -> None:
        """Stop the motion task and the server; continues past a failing step."""
        await self._host.stop()

    async def __aenter__(self) -> AsrsSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _running(self) -> AsrsBindings:
        return self._host.bound

    # --- the physical hand-over from the conveyor ---------------------------------------------

    async def arrive_at_pd(self, tote: str, aisle: str) -> None:
        """A tote set down at the aisle's P&D input; ValueError for an unknown aisle, an empty
        id or a tote already in the AS/RS."""
        b = self._running()
        await b.change(lambda now: b.arrive(tote, aisle, now))

    # --- commands in-process (the same as the crane methods) -----------------------------------

    async def store(
        self, aisle: str, command_id: str, tote: str, location: str
    ) -> Accepted | Refused:
        return await self._running().submit(
            aisle, Command(command_id, store=Transport(Kind.STORE, tote, location))
        )

    async def retrieve(
        self, aisle: str, command_id: str, tote: str, location: str
    ) -> Accepted | Refused:
        return await self._running().submit(
            aisle, Command(command_id, retrieve=Transport(Kind.RETRIEVE, tote, location))
        )

    # --- scripting (tests, commissioning) -----------------------------------------------------

    async def set_fault(self, crane: str, text: str) -> None:
        """The crane (id or aisle) stops where it is; its current command stays pending."""
        b = self._running()
        model = b.crane(crane)
        await b.change(lambda now: model.set_fault(text, now))

    async def clear_fault(self, crane: str) -> None:
        b = self._running()
        await b.change(b.crane(crane).clear_fault)

    async def block_location(self, location: str, blocked: bool = True) -> None:
        b = self._running()
        await b.change(lambda now: b.block(location, blocked))

    def crane(self, crane: str) -> CraneModel:
        """The model of a crane (id or aisle), for reading its state in tests."""
        return self._running().crane(crane)

    def contents(self) -> dict[str, str]:
        """Every stored tote of every aisle: location -> tote."""
        return {
            loc: tote for m in self._running().cranes.values() for loc, tote in m.contents.items()
        }

    def set_on_delivered(self, hook: DeliveredHook | None) -> None:
        self._on_delivered = hook
        if self._host.running:
            self._host.bound.on_delivered = hook


__all__ = ["AsrsSimulator", "UnknownName"]

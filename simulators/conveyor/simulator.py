"""The conveyor simulator: a real asyncua server publishing the conveyor model of one line.

``async with ConveyorSimulator(config, clock) as sim:`` starts the server on
``config.conveyor.opcua.endpoint`` (or the endpoint given) and one background task,
``conveyor[<id>].motion``, that advances the motion model every few milliseconds of wall time.
The scripting methods (no-read rate, chute full or disabled, jams) are for tests and
commissioning; :meth:`ConveyorSimulator.induct` is the in-process stand-in for a robot dropping a
tote (the same as the ``Simulation.Induct`` method over OPC UA).

With a ``state_file`` the simulator keeps the unit's retentive state in that file, as a PLC
keeps it across a power cycle (:mod:`simulators.conveyor.retained`), and takes it over on start:
a simulator killed and started again with the same file has the same totes on the belt, the
same chute counts and the same divert journal. Pending ``Divert`` requests are not retained.

When ``conveyor.opcua.security`` is ``Basic256Sha256`` the server offers only
Basic256Sha256/SignAndEncrypt, presents the certificate and key it is given, admits sessions
only over that channel, only from a trusted client certificate (those in ``trusted_clients``,
else the line's own ``conveyor.opcua.certificate``) and only with the configured user name and
password. With security None it admits anonymous sessions only
(:mod:`simulators.opcua_security`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from asyncua import Server

from devices.opcua.security import SERVER_APPLICATION_URI
from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.conveyor.address_space import build_address_space
from simulators.conveyor.bindings import ConveyorBindings
from simulators.conveyor.facts import ChuteChanged
from simulators.conveyor.motion import TrackedItem
from simulators.conveyor.packml import PackMLState
from simulators.conveyor.retained import RetainedState, RetainedStateError, read_state
from simulators.opcua_security import ServerIdentity, refuse_unsafe, server_keys
from simulators.opcua_server.host import ServerHost

log = logging.getLogger(__name__)

DEFAULT_TICK_WALL_SECONDS = 0.005


class ConveyorSimulator:
    """One conveyor loop with its scanner and sorter, served over OPC UA.

    ``certificate`` and ``private_key`` (PEM or DER files) are the server's own, needed when
    the line's security is Basic256Sha256; ``trusted_clients`` is a folder of the client
    certificates it admits (default: the line's ``conveyor.opcua.certificate`` only). Raises
    ValueError for security settings it cannot serve safely. :meth:`start` raises
    :class:`~simulators.conveyor.retained.RetainedStateError` when ``state_file`` exists but
    cannot be taken over.
    """

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        endpoint: str | None = None,
        *,
        seed: int = 0,
        tick_wall_seconds: float = DEFAULT_TICK_WALL_SECONDS,
        certificate: Path | None = None,
        private_key: Path | None = None,
        state_file: Path | None = None,
        trusted_clients: Path | None = None,
    ) -> None:
        opcua = config.conveyor.opcua
        self._keys = server_keys(opcua, certificate, private_key, trusted_clients)
        refuse_unsafe(opcua, self._keys)
        self._config = config
        self._clock = clock
        self._endpoint = endpoint or opcua.endpoint
        self._seed = seed
        self._state_file = state_file
        self._host: ServerHost[ConveyorBindings] = ServerHost(
            "conveyor",
            clock,
            tick_wall_seconds,
            f"conveyor[{config.conveyor.id}].motion",
            log,
            {"conveyor": config.conveyor.id},
        )

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def conveyor_id(self) -> str:
        return self._config.conveyor.id

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._host.running:
            raise RuntimeError("conveyor simulator already started")
        opcua = self._config.conveyor.opcua
        retained = read_state(self._state_file) if self._state_file is not None else None
        await self._host.start(
            opcua,
            self._endpoint,
            self._identity(),
            self._keys,
            lambda server: self._bind(server, retained),
        )
        log.info(
            "conveyor simulator listening",
            extra={
                "conveyor": self.conveyor_id,
                "endpoint": self._endpoint,
                "security": opcua.security,
            },
        )

    async def _bind(self, server: Server, retained: RetainedState | None) -> ConveyorBindings:
        """The address space of the line's conveyor, bound to its model (taken over from
        ``retained``, when given)."""
        bindings = ConveyorBindings(
            server, self._config, self._clock, seed=self._seed, state_file=self._state_file
        )
        nodes = await build_address_space(server, self._config, bindings.callbacks)
        await bindings.attach(nodes)
        if retained is not None:
            try:
                await bindings.restore(retained)
            except ValueError as exc:
                bindings.detach()
                raise RetainedStateError(f"{self._state_file}: {exc}") from None
        return bindings

    def _identity(self) -> ServerIdentity:
        return ServerIdentity(
            name=f"linectl conveyor simulator {self.conveyor_id}",
            application_uri=SERVER_APPLICATION_URI,  # as in the certificate of opcua certs
            product_uri="urn:linectl:simulators:conveyor",
            product_name="linectl conveyor simulator",
        )

    async def stop(self) -> None:
        """Stop the motion task and the server; continues past a failing step."""
        await self._host.stop()

    async def __aenter__(self) -> ConveyorSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _running(self) -> ConveyorBindings:
        return self._host.bound

    # --- the physical hand-over from a robot --------------------------------------------------

    async def induct(self, tote_id: str, zone_id: str) -> str:
        """A tote dropped onto ``zone_id``; returns the tracking id the conveyor gives it.

        Raises ``ValueError`` for an unknown zone or an empty tote id.
        """
        return await self._running().induct(tote_id, zone_id)

    # --- scripting (tests, commissioning) -----------------------------------------------------

    @property
    def state(self) -> PackMLState:
        return self._running().machine.state

    @property
    def watchdog_value(self) -> int | None:
        """The controller's last watchdog counter value, None before its first write."""
        return self._running().watchdog_value

    @property
    def watchdog_tripped(self) -> bool:
        """The controller's watchdog counter went silent and the belts were held."""
        return self._running().watchdog_tripped

    def set_no_read_rate(self, rate: float) -> None:
        self._running().model.rates.no_read = _rate(rate)

    def set_multi_read_rate(self, rate: float) -> None:
        self._running().model.rates.multi_read = _rate(rate)

    async def set_chute_full(self, chute_id: str, full: bool) -> None:
        """Force the chute's full sensor on, or release it."""
        b = self._running()
        await b.change(lambda now: b.model.set_chute_full(chute_id, full, now))

    async def set_chute_enabled(self, chute_id: str, enabled: bool) -> None:
        b = self._running()
        await b.change(lambda now: b.model.set_chute_enabled(chute_id, enabled, now))

    async def set_zone_jammed(self, zone_id: str, jammed: bool) -> None:
        """A jam holds the zone and the ``conveyor.jam_hold_zones`` zones before it until it
        is cleared; the other zones run on."""
        b = self._running()
        await b.change(lambda now: b.model.set_jammed(zone_id, jammed, now))

    def chute(self, chute_id: str) -> ChuteChanged:
        """Current count, full, enabled and delivered of a chute."""
        return self._running().model.chute(chute_id)

    def item_position(self, item_id: str) -> float | None:
        """Front position (m along the loop) of an item on the belt, None if not on it."""
        return self._running().model.item_position(item_id)

    def tracking(self) -> list[TrackedItem]:
        """Every item the loop knows (as the sorter's ``Tracking`` method reports them)."""
        return self._running().model.tracking()

    def zone_running(self, zone_id: str) -> bool:
        """The zone's belt runs (not stopped by the PackML state or held by a jam)."""
        return self._running().model.zone_running(zone_id)


def _rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate!r}")
    return rate

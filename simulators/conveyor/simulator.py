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

import asyncio
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
from simulators.conveyor.retained import RetainedStateError, read_state
from simulators.opcua_security import (
    ServerIdentity,
    ServerKeys,
    TrustList,
    refuse_unsafe,
    secured_server,
)

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
        self._keys = _server_keys(config, certificate, private_key, trusted_clients)
        refuse_unsafe(config.conveyor.opcua, self._keys)
        self._config = config
        self._clock = clock
        self._endpoint = endpoint or config.conveyor.opcua.endpoint
        self._seed = seed
        self._tick_wall = tick_wall_seconds
        self._state_file = state_file
        self._server: Server | None = None
        self._bindings: ConveyorBindings | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def conveyor_id(self) -> str:
        return self._config.conveyor.id

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("conveyor simulator already started")
        opcua = self._config.conveyor.opcua
        retained = read_state(self._state_file) if self._state_file is not None else None
        server = await secured_server(opcua, self._endpoint, self._identity(), self._keys)
        # the standard clock task holds stop() for up to a second; line time is ours anyway
        server.disable_clock(True)
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
        await server.start()
        self._server, self._bindings = server, bindings
        self._task = asyncio.create_task(
            self._motion(), name=f"conveyor[{self.conveyor_id}].motion"
        )
        log.info(
            "conveyor simulator listening",
            extra={
                "conveyor": self.conveyor_id,
                "endpoint": self._endpoint,
                "security": opcua.security,
            },
        )

    def _identity(self) -> ServerIdentity:
        return ServerIdentity(
            name=f"linectl conveyor simulator {self.conveyor_id}",
            application_uri=SERVER_APPLICATION_URI,  # as in the certificate of opcua certs
            product_uri="urn:linectl:simulators:conveyor",
            product_name="linectl conveyor simulator",
        )

    async def stop(self) -> None:
        """Stop the motion task and the server; continues past a failing step."""
        task, self._task = self._task, None
        server, self._server = self._server, None
        bindings, self._bindings = self._bindings, None
        try:
            if task is not None:
                task.cancel()
                await asyncio.wait([task])
                if not task.cancelled() and task.exception() is not None:
                    log.error(
                        "conveyor motion task had failed",
                        exc_info=task.exception(),
                        extra={"conveyor": self.conveyor_id},
                    )
        finally:
            if bindings is not None:
                bindings.detach()
            if server is not None:
                await server.stop()
                log.info("conveyor simulator stopped", extra={"conveyor": self.conveyor_id})

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

    async def _motion(self) -> None:
        bindings = self._running()
        line_tick = self._tick_wall * self._clock.time_scale
        while True:
            await self._clock.sleep(line_tick)
            await bindings.tick()

    def _running(self) -> ConveyorBindings:
        if self._bindings is None:
            raise RuntimeError("conveyor simulator is not running")
        return self._bindings

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


def _server_keys(
    config: LineConfig,
    certificate: Path | None,
    private_key: Path | None,
    trusted_clients: Path | None,
) -> ServerKeys | None:
    """The server's keys and trust list for a Basic256Sha256 line, None for security None."""
    opcua = config.conveyor.opcua
    if opcua.security == "None":
        return None
    if certificate is None or private_key is None:
        raise ValueError(
            f"security {opcua.security} needs the server's certificate and private key"
        )
    if trusted_clients is not None:
        trusted = TrustList.from_folder(trusted_clients)
    elif opcua.certificate is not None:
        trusted = TrustList.from_file(Path(opcua.certificate))
    else:
        raise ValueError("no client certificate to trust: give a trust folder")
    return ServerKeys(certificate, private_key, trusted)


def _rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate!r}")
    return rate

"""A whole simulated line: MQTT broker, conveyor/sorter and AS/RS OPC UA servers, robot fleet.

Used by ``linectl demo`` and ``linectl run --simulate``. Every simulator gets a free loopback
port, and the returned line file points the controller at them, so several simulated lines (or
one beside a real broker on 1883) can run on one machine.

The physical links between the simulators: a robot's drop at an induction puts the tote on the
belt; a tote the cranes set down at an aisle's P&D output is put on the belt at the aisle's
``pd_zone``; a tote a station sends back (:meth:`SimulatedLine.return_tote`) rides the return
conveyor for ``RETURN_SECONDS`` of line time and is set down at the aisle's P&D input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.asrs import AsrsSimulator
from simulators.broker import LocalBroker, free_port, local_broker
from simulators.conveyor import ConveyorSimulator
from simulators.robots import RobotFleetSimulator
from simulators.robots.profile import STRICT, VehicleProfile

log = logging.getLogger(__name__)

RETURN_SECONDS = 45.0  # line seconds on the return conveyor from a station to a P&D input


@dataclass
class SimulatedLine:
    config: LineConfig  # the line file pointed at the simulators
    conveyor: ConveyorSimulator
    robots: RobotFleetSimulator
    mqtt_url: str
    devices: LineDevices
    # the broker the line started for itself (mosquitto or embedded); None on a given broker
    own_broker: LocalBroker | None = None

    @property
    def asrs(self) -> AsrsSimulator | None:
        """None when the line has no AS/RS."""
        return self.devices.asrs

    async def return_tote(self, tote: str, aisle: str) -> None:
        """A station put ``tote`` on the return conveyor to ``aisle``'s P&D input."""
        await self.devices.return_tote(tote, aisle)


def with_endpoints(
    cfg: LineConfig, mqtt_url: str, opcua_endpoint: str, asrs_endpoint: str | None = None
) -> LineConfig:
    conveyor = cfg.conveyor.model_copy(
        update={"opcua": cfg.conveyor.opcua.model_copy(update={"endpoint": opcua_endpoint})}
    )
    mqtt = cfg.mqtt.model_copy(update={"url": mqtt_url})
    update: dict[str, object] = {"conveyor": conveyor, "mqtt": mqtt}
    if asrs_endpoint is not None:
        opcua = cfg.asrs.opcua.model_copy(update={"endpoint": asrs_endpoint})
        update["asrs"] = cfg.asrs.model_copy(update={"opcua": opcua})
    return cfg.model_copy(update=update)


@dataclass
class LineDevices:
    """The conveyor and AS/RS simulators of a line, and the physical links between them."""

    config: LineConfig
    conveyor: ConveyorSimulator
    asrs: AsrsSimulator | None
    _inductions: dict[str, str]
    _returns: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)

    async def hand_over(self, serial: str, node_id: str, load_id: str | None) -> None:
        """The physical hand-over: a tote a robot dropped at an induction lands on the belt."""
        if load_id and node_id in self._inductions:
            await self.conveyor.induct(load_id, self._inductions[node_id])

    async def return_tote(self, tote: str, aisle: str) -> None:
        """A station put ``tote`` on the return conveyor to ``aisle``'s P&D input."""
        self._returns.put_nowait((tote, aisle))

    async def return_conveyor(self, clock: Clock) -> None:
        """Carry returned totes to their P&D input, each after ``RETURN_SECONDS``."""

        async def carry(tote: str, aisle: str) -> None:
            await clock.sleep(RETURN_SECONDS)
            if self.asrs is None:
                return
            try:
                await self.asrs.arrive_at_pd(tote, aisle)
            except (ValueError, RuntimeError) as exc:  # logged; the line goes on
                log.error(
                    "returned tote not set down at the P&D input",
                    extra={"tote": tote, "aisle": aisle, "error": repr(exc)},
                )

        async with asyncio.TaskGroup() as tg:
            while True:
                tote, aisle = await self._returns.get()
                tg.create_task(carry(tote, aisle), name=f"sim.return[{tote}]")


@contextlib.asynccontextmanager
async def line_devices(cfg: LineConfig, clock: Clock) -> AsyncIterator[LineDevices]:
    """Start the conveyor and AS/RS simulators at the endpoints ``cfg`` names (see
    :func:`with_endpoints`); a tote the cranes set down at an aisle's P&D output goes onto the
    belt at the aisle's ``pd_zone``."""
    async with contextlib.AsyncExitStack() as stack:
        conveyor = await stack.enter_async_context(ConveyorSimulator(cfg, clock))
        asrs: AsrsSimulator | None = None
        if cfg.asrs.aisles:
            pd_zones = {a.id: a.pd_zone for a in cfg.asrs.aisles}

            async def delivered(tote: str, aisle: str) -> None:
                """A retrieved tote set down at the P&D output goes onto the conveyor."""
                zone = pd_zones.get(aisle)
                if zone is not None:
                    await conveyor.induct(tote, zone)

            asrs = await stack.enter_async_context(
                AsrsSimulator(cfg, clock, on_delivered=delivered)
            )
        inductions = {i.node: i.zone for i in cfg.robots.inductions}
        yield LineDevices(cfg, conveyor, asrs, inductions)


def free_endpoints(cfg: LineConfig, broker_url: str) -> LineConfig:
    """``cfg`` pointed at ``broker_url`` and at free loopback ports for the OPC UA servers."""
    return with_endpoints(
        cfg,
        broker_url,
        f"opc.tcp://127.0.0.1:{free_port()}/linectl/",
        f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/" if cfg.asrs.aisles else None,
    )


@contextlib.asynccontextmanager
async def simulated_line(
    cfg: LineConfig,
    clock: Clock,
    broker_url: str | None = None,
    robot_profile: VehicleProfile = STRICT,
    own_broker: LocalBroker = LocalBroker.EMBEDDED,
) -> AsyncIterator[SimulatedLine]:
    """Start the simulators; the robot fleet runs in a task owned by this context, its robots
    as strict as ``robot_profile`` says. Without ``broker_url`` the line starts a broker of its
    own on loopback, of the kind ``own_broker`` asks for (:func:`simulators.broker.local_broker`).
    """
    started: LocalBroker | None = None
    async with contextlib.AsyncExitStack() as stack:
        if broker_url is None:
            broker = await stack.enter_async_context(local_broker(own_broker))
            broker_url, started = broker.url, broker.kind
            # a broker of the line's own is anonymous plain MQTT on loopback: the line's login
            # and TLS settings belong to its site broker
            anonymous = {"username": None, "password": None, "password_file": None, "tls": None}
            cfg = cfg.model_copy(update={"mqtt": cfg.mqtt.model_copy(update=anonymous)})
        cfg = free_endpoints(cfg, broker_url)
        devices = await stack.enter_async_context(line_devices(cfg, clock))
        robots = RobotFleetSimulator(
            cfg, clock, broker_url, on_drop=devices.hand_over, profile=robot_profile
        )
        line = SimulatedLine(cfg, devices.conveyor, robots, broker_url, devices, own_broker=started)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(robots.run(), name="sim.robots"),
                tg.create_task(devices.return_conveyor(clock), name="sim.return-conveyor"),
            ]
            try:
                yield line
            finally:
                for task in tasks:
                    task.cancel()

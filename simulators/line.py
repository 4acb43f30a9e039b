"""A whole simulated line: MQTT broker, conveyor/sorter and AS/RS OPC UA servers, robot fleet.

Used by ``linectl demo`` and ``linectl run --simulate``. Every simulator gets a free loopback
port, and the returned line file points the controller at them, so several simulated lines (or
one beside a real broker on 1883) can run on one machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from controller.clock import Clock
from controller.config.model import LineConfig
from simulators.asrs import AsrsSimulator
from simulators.broker import EmbeddedBroker, free_port
from simulators.conveyor import ConveyorSimulator
from simulators.robots import RobotFleetSimulator


@dataclass
class SimulatedLine:
    config: LineConfig  # the line file pointed at the simulators
    conveyor: ConveyorSimulator
    robots: RobotFleetSimulator
    mqtt_url: str
    asrs: AsrsSimulator | None = None  # None when the line has no AS/RS


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


@contextlib.asynccontextmanager
async def simulated_line(
    cfg: LineConfig, clock: Clock, broker_url: str | None = None
) -> AsyncIterator[SimulatedLine]:
    """Start the simulators; the robot fleet runs in a task owned by this context."""
    async with contextlib.AsyncExitStack() as stack:
        if broker_url is None:
            broker = await stack.enter_async_context(EmbeddedBroker())
            broker_url = broker.url
        cfg = with_endpoints(
            cfg,
            broker_url,
            f"opc.tcp://127.0.0.1:{free_port()}/linectl/",
            f"opc.tcp://127.0.0.1:{free_port()}/linectl/asrs/" if cfg.asrs.aisles else None,
        )
        conveyor = await stack.enter_async_context(ConveyorSimulator(cfg, clock))
        inductions = {i.node: i.zone for i in cfg.robots.inductions}
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

        async def hand_over(serial: str, node_id: str, load_id: str | None) -> None:
            """The physical hand-over: a tote dropped at an induction node lands on the belt."""
            if load_id and node_id in inductions:
                await conveyor.induct(load_id, inductions[node_id])

        robots = RobotFleetSimulator(cfg, clock, broker_url, on_drop=hand_over)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(robots.run(), name="sim.robots")
            try:
                yield SimulatedLine(cfg, conveyor, robots, broker_url, asrs)
            finally:
                task.cancel()

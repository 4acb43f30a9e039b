"""A whole simulated line: MQTT broker, conveyor/sorter OPC UA server and robot fleet.

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
from simulators.broker import EmbeddedBroker, free_port
from simulators.conveyor import ConveyorSimulator
from simulators.robots import RobotFleetSimulator


@dataclass
class SimulatedLine:
    config: LineConfig  # the line file pointed at the simulators
    conveyor: ConveyorSimulator
    robots: RobotFleetSimulator
    mqtt_url: str


def with_endpoints(cfg: LineConfig, mqtt_url: str, opcua_endpoint: str) -> LineConfig:
    conveyor = cfg.conveyor.model_copy(
        update={"opcua": cfg.conveyor.opcua.model_copy(update={"endpoint": opcua_endpoint})}
    )
    mqtt = cfg.mqtt.model_copy(update={"url": mqtt_url})
    return cfg.model_copy(update={"conveyor": conveyor, "mqtt": mqtt})


@contextlib.asynccontextmanager
async def simulated_line(
    cfg: LineConfig, clock: Clock, broker_url: str | None = None
) -> AsyncIterator[SimulatedLine]:
    """Start the simulators; the robot fleet runs in a task owned by this context."""
    async with contextlib.AsyncExitStack() as stack:
        if broker_url is None:
            broker = await stack.enter_async_context(EmbeddedBroker())
            broker_url = broker.url
        cfg = with_endpoints(cfg, broker_url, f"opc.tcp://127.0.0.1:{free_port()}/linectl/")
        conveyor = await stack.enter_async_context(ConveyorSimulator(cfg, clock))
        inductions = {i.node: i.zone for i in cfg.robots.inductions}

        async def hand_over(serial: str, node_id: str, load_id: str | None) -> None:
            """The physical hand-over: a tote dropped at an induction node lands on the belt."""
            if load_id and node_id in inductions:
                await conveyor.induct(load_id, inductions[node_id])

        robots = RobotFleetSimulator(cfg, clock, broker_url, on_drop=hand_over)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(robots.run(), name="sim.robots")
            try:
                yield SimulatedLine(cfg, conveyor, robots, broker_url)
            finally:
                task.cancel()

"""The robot fleet simulator: every configured robot as its own VDA 5050 MQTT peer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from controller.clock import Clock
from controller.config.model import LineConfig
from simulators.robots.peer import RobotPeer
from simulators.robots.vehicle import SimulatedRobot

log = logging.getLogger(__name__)

DropHook = Callable[[str, str, str | None], Awaitable[None]]


class RobotFleetSimulator:
    """Runs one :class:`SimulatedRobot` per robot in ``config.robots.fleet``.

    ``on_drop(serial, node_id, load_id)`` is awaited after every finished ``drop``, so a line
    simulation can put the tote onto the conveyor.
    """

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        mqtt_url: str,
        interface_name: str | None = None,
        on_drop: DropHook | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.mqtt_url = mqtt_url
        self.interface_name = interface_name or config.mqtt.interface_name
        self.robots: dict[str, SimulatedRobot] = {
            r.serial: SimulatedRobot(config, r, clock, on_drop) for r in config.robots.fleet
        }

    async def run(self) -> None:
        """Run every robot until cancelled (one named task per robot)."""
        log.info(
            "robot fleet simulator starting",
            extra={"robots": len(self.robots), "interface_name": self.interface_name},
        )
        async with asyncio.TaskGroup() as tg:
            for serial, robot in self.robots.items():
                tg.create_task(self._run_robot(robot), name=f"robot[{serial}]")

    async def _run_robot(self, robot: SimulatedRobot) -> None:
        peer = RobotPeer(robot, self.mqtt_url, self.interface_name)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(robot.drive(), name=f"robot[{robot.serial}].drive")
            tg.create_task(peer.run(), name=f"robot[{robot.serial}].mqtt")

    def fail_next_action(self, serial: str) -> None:
        """Scripting hook for tests: the next action ``serial`` starts fails."""
        self.robots[serial].fail_next_action()

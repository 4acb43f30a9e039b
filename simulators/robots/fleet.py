"""The robot fleet simulator: every configured robot as its own VDA 5050 MQTT peer, collision
detection over the whole fleet, and the fault-injection API tests and fault scripts use."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from devices.vda5050.broker import BrokerSettings, BrokerSettingsError, Login, broker_settings
from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.robots.collisions import Collision, CollisionMonitor
from simulators.robots.peer import RobotPeer
from simulators.robots.profile import STRICT, VehicleProfile
from simulators.robots.script import ScriptedFault, play
from simulators.robots.state import INJECTED
from simulators.robots.vehicle import SimulatedRobot

log = logging.getLogger(__name__)

DropHook = Callable[[str, str, str | None], Awaitable[None]]


class RobotFleetSimulator:
    """Runs one :class:`SimulatedRobot` per robot in ``config.robots.fleet``.

    ``on_drop(serial, node_id, load_id)`` is awaited after every finished ``drop``, so a line
    simulation can put the tote onto the conveyor. ``profile`` says what the robots accept and
    how they stop on a cancel (:mod:`simulators.robots.profile`); strict by default.

    Faults take effect at once and may be injected before or while the fleet runs. Durations
    are in line seconds of the fleet's clock.

    Every robot connects with the line's broker settings (``config.mqtt``: login and TLS) at
    ``mqtt_url``, or, given ``logins``, each with its own login (every robot needs one; see
    :mod:`simulators.robots.logins`). Files are read here: a problem raises
    :class:`devices.vda5050.broker.BrokerSettingsError`.
    """

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        mqtt_url: str,
        interface_name: str | None = None,
        on_drop: DropHook | None = None,
        logins: Mapping[str, Login] | None = None,
        profile: VehicleProfile = STRICT,
    ) -> None:
        self.config = config
        self.profile = profile
        self.clock = clock
        self.mqtt_url = mqtt_url
        self.interface_name = interface_name or config.mqtt.interface_name
        self.monitor = CollisionMonitor(clock, self._collision_warnings)
        self.robots: dict[str, SimulatedRobot] = {}
        self.peers: dict[str, RobotPeer] = {}
        line_login = broker_settings(config.mqtt, mqtt_url)
        for r in config.robots.fleet:
            robot = SimulatedRobot(config, r, clock, on_drop, profile)
            robot.on_move = self.monitor.move
            robot.collision_warnings = self.monitor.warnings
            self.monitor.move(r.serial, robot.place())
            self.robots[r.serial] = robot
            broker = _robot_login(line_login, config, r.serial, logins)
            self.peers[r.serial] = RobotPeer(robot, broker, self.interface_name)

    @property
    def logins(self) -> dict[str, str]:
        """The user name each robot logs in with (``(anonymous)`` without one)."""
        return {serial: peer.broker.who for serial, peer in self.peers.items()}

    async def run(self, script: Sequence[ScriptedFault] = ()) -> None:
        """Run every robot until cancelled (named tasks per robot), and play ``script``."""
        log.info(
            "robot fleet simulator starting",
            extra={
                "robots": len(self.robots),
                "interface_name": self.interface_name,
                "scripted_faults": len(script),
                "broker": next(iter(self.peers.values())).broker.url if self.peers else None,
                "profile": self.profile.name.value,
                "stop_on_cancel": self.profile.stop_on_cancel.value,
            },
        )
        async with asyncio.TaskGroup() as tg:
            for serial, robot in self.robots.items():
                tg.create_task(robot.run(), name=f"robot[{serial}]")
                tg.create_task(self.peers[serial].run(), name=f"robot[{serial}].mqtt")
            if script:
                tg.create_task(play(self, script, self.clock), name="robots.fault-script")

    # --- collisions -------------------------------------------------------------------------

    @property
    def collisions(self) -> list[Collision]:
        """Every collision incident so far, in the order they started."""
        return list(self.monitor.incidents)

    def _collision_warnings(self, serial: str) -> None:
        self.robots[serial].collisions_changed()

    # --- fault injection --------------------------------------------------------------------

    def _robot(self, serial: str) -> SimulatedRobot:
        robot = self.robots.get(serial)
        if robot is None:
            raise KeyError(f"no robot {serial!r} in the fleet ({', '.join(self.robots)})")
        return robot

    def drop_connection(self, serial: str, for_seconds: float) -> None:
        """The robot's MQTT connection dies uncleanly: the broker publishes its last will
        (``CONNECTIONBROKEN``, retained). After ``for_seconds`` it reconnects and publishes
        ``ONLINE`` (spec 6.14). The robot itself carries on with its order meanwhile."""
        self._robot(serial)
        self.peers[serial].drop_connection(for_seconds)

    def restore_connection(self, serial: str) -> None:
        """End a :meth:`drop_connection` early (the robot reconnects within a second)."""
        self._robot(serial)
        self.peers[serial].link_cut.lift()

    def freeze_state(self, serial: str, for_seconds: float) -> None:
        """The vehicle controller hangs for ``for_seconds``: the robot stays connected but
        publishes no ``state`` or ``visualization``, handles no message (they wait), and stops
        where it is, mid-edge if need be. Afterwards it handles what arrived and drives on."""
        self._robot(serial).freeze(for_seconds)

    def unfreeze_state(self, serial: str) -> None:
        """End a :meth:`freeze_state` early."""
        self._robot(serial).unfreeze()

    def fatal_error(
        self,
        serial: str,
        error_type: str = "vehicleFault",
        description: str = "injected fatal error",
    ) -> None:
        """Report a FATAL entry of ``error_type`` in ``errors`` (spec 6.10.5); the robot stops
        until :meth:`clear_error`."""
        self._robot(serial).fatal_error(error_type, description)

    def clear_error(self, serial: str, error_type: str | None = None) -> None:
        """Remove injected FATAL errors (of ``error_type``, or all); the robot drives on."""
        self._robot(serial).clear_error(error_type)

    def fail_next_action(self, serial: str) -> None:
        """The next action ``serial`` starts (of any type) fails."""
        self._robot(serial).fail_next_action()

    def fail_action(self, serial: str, action_type: str, result: str = INJECTED) -> None:
        """The next action of ``action_type`` (``pick``, ``drop``) ``serial`` starts fails,
        with ``result`` as its ``resultDescription`` (e.g. the model's shortage code, for a pick
        that found too few units). Calling it twice fails the next two."""
        self._robot(serial).fail_action(action_type, result)

    def set_battery(self, serial: str, percent: float) -> None:
        """Set the charge (0..100 %). Below 10 % the robot reports a ``batteryLow`` WARNING; at
        0 % a ``batteryEmpty`` FATAL error, and it stops."""
        self._robot(serial).set_battery(percent)

    def set_operating_mode(self, serial: str, mode: str) -> None:
        """Report ``mode`` (AUTOMATIC, SEMIAUTOMATIC, MANUAL, SERVICE, TEACHIN) in state.
        Entering or leaving a mode in which master control is not in control (MANUAL, SERVICE,
        TEACHIN) clears the current order; orders received in such a mode are rejected."""
        self._robot(serial).set_operating_mode(mode)


def _robot_login(
    line_login: BrokerSettings,
    config: LineConfig,
    serial: str,
    logins: Mapping[str, Login] | None,
) -> BrokerSettings:
    if logins is None:
        return line_login
    login = logins.get(serial)
    if login is None:
        raise BrokerSettingsError(f"robot {serial} has no login of its own")
    return line_login.with_login(login, config.mqtt)

"""One simulated picking robot: its state, how it takes orders and instant actions, and how it
drives. No MQTT here: :mod:`simulators.robots.peer` carries the messages.

The robot drives node to node in line time (``length / min(model speed, edge maxSpeed)`` per
edge), updating ``lastNodeId``/``lastNodeSequenceId``, ``nodeStates``/``edgeStates`` and its pose
as it goes, and runs each node's actions in order with the duration of the model's action
template (WAITING -> RUNNING -> FINISHED). ``changed`` is set whenever something the state
message reports has changed.

The robot does not move while it is paused, while its vehicle controller is frozen, or while it
has a FATAL error (an injected one, or an empty battery); it stops where it is, mid-edge if need
be, and drives on once the cause is gone. ``startCharging`` works only on a charger node.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from devices.vda5050.messages import ActionState, ErrorEntry, Load, Pose, StateBody
from kernel.clock import Clock
from kernel.config.model import LineConfig, Robot, RobotModel
from simulators.robots.battery import Battery
from simulators.robots.capabilities import Capabilities
from simulators.robots.collisions import Place
from simulators.robots.driving import DRIVE_STEP, Driver
from simulators.robots.orders import OrderIntake
from simulators.robots.profile import STRICT, VehicleProfile
from simulators.robots.state import INJECTED, DropHook, MoveHook, RobotState
from simulators.robots.timed import TimedFault

__all__ = ["DRIVE_STEP", "SimulatedRobot"]

JsonDict = dict[str, Any]


class SimulatedRobot:
    """One robot: a :class:`RobotState` (``state``), the :class:`OrderIntake` that takes what
    master control sends into it and the :class:`Driver` that executes it."""

    def __init__(
        self,
        config: LineConfig,
        robot: Robot,
        clock: Clock,
        on_drop: DropHook | None = None,
        profile: VehicleProfile = STRICT,
    ) -> None:
        self.state = RobotState(config, robot, clock, on_drop, profile)
        self._orders = OrderIntake(self.state)
        self._driver = Driver(self.state, self._orders)

    # --- what master control sends ----------------------------------------------------------

    def handle_order(self, order: JsonDict) -> None:
        """Take a schema-valid order (or reject it)."""
        self._orders.handle_order(order)

    def handle_instant_actions(self, message: JsonDict) -> None:
        """Take a schema-valid instantActions message (spec 6.9)."""
        self._orders.handle_instant_actions(message)

    def set_operating_mode(self, mode: str) -> None:
        """Switch the operating mode (spec 6.10.6, table 1)."""
        self._orders.set_operating_mode(mode)

    def reject(self, error: ErrorEntry) -> None:
        """Report a rejected order or instant action (spec 6.6.4)."""
        self.state.reject(error)

    async def run(self) -> None:
        """Drive and keep the battery until cancelled."""
        await self._driver.run()

    # --- what the robot is and reports ------------------------------------------------------

    @property
    def serial(self) -> str:
        return self.state.serial

    @property
    def robot(self) -> Robot:
        return self.state.robot

    @property
    def model(self) -> RobotModel:
        return self.state.model

    @property
    def clock(self) -> Clock:
        return self.state.clock

    @property
    def profile(self) -> VehicleProfile:
        """What the robot accepts and how it stops on a cancel."""
        return self.state.profile

    @profile.setter
    def profile(self, profile: VehicleProfile) -> None:
        self.state.profile = profile

    @property
    def capabilities(self) -> Capabilities:
        return self.state.capabilities

    @property
    def changed(self) -> asyncio.Event:
        """Set whenever something the state message reports has changed."""
        return self.state.changed

    @property
    def factsheet_requested(self) -> asyncio.Event:
        return self.state.factsheet_requested

    @property
    def frozen(self) -> TimedFault:
        """The vehicle controller hangs while this fault is active."""
        return self.state.frozen

    @property
    def on_move(self) -> MoveHook | None:
        return self.state.on_move

    @on_move.setter
    def on_move(self, hook: MoveHook | None) -> None:
        self.state.on_move = hook

    @property
    def collision_warnings(self) -> Callable[[str], list[ErrorEntry]] | None:
        return self.state.collision_warnings

    @collision_warnings.setter
    def collision_warnings(self, warnings: Callable[[str], list[ErrorEntry]] | None) -> None:
        self.state.collision_warnings = warnings

    @property
    def x(self) -> float:
        return self.state.x

    @x.setter
    def x(self, x: float) -> None:
        self.state.x = x

    @property
    def y(self) -> float:
        return self.state.y

    @y.setter
    def y(self, y: float) -> None:
        self.state.y = y

    @property
    def driving(self) -> bool:
        return self.state.driving

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def last_node_id(self) -> str:
        return self.state.last_node_id

    @property
    def last_node_seq(self) -> int:
        return self.state.last_node_seq

    @property
    def order_id(self) -> str:
        return self.state.order_id

    @property
    def order_update_id(self) -> int:
        return self.state.order_update_id

    @property
    def actions(self) -> dict[str, ActionState]:
        return self.state.actions

    @property
    def loads(self) -> dict[str, Load]:
        return self.state.loads

    @property
    def battery(self) -> Battery:
        return self.state.battery

    def pose(self) -> Pose:
        return self.state.pose()

    def place(self) -> Place:
        return self.state.place()

    def velocity_vector(self) -> tuple[float, float, float]:
        return self.state.velocity_vector()

    def state_body(self) -> StateBody:
        return self.state.state_body()

    def all_errors(self) -> list[ErrorEntry]:
        return self.state.all_errors()

    def fatal(self) -> bool:
        return self.state.fatal()

    def executing(self) -> bool:
        return self.state.executing()

    # --- injected faults and scripted conditions --------------------------------------------

    def fail_next_action(self) -> None:
        """The next action the robot starts fails."""
        self.state.fail_next_action()

    def fail_action(self, action_type: str, result: str = INJECTED) -> None:
        """The next action of ``action_type`` the robot starts fails with ``result``."""
        self.state.fail_action(action_type, result)

    def freeze(self, for_seconds: float) -> None:
        """The vehicle controller hangs for ``for_seconds`` line seconds."""
        self.state.freeze(for_seconds)

    def unfreeze(self) -> None:
        self.state.unfreeze()

    def fatal_error(self, error_type: str, description: str) -> None:
        """Report a FATAL error (spec 6.10.5); the robot stops until it is cleared."""
        self.state.fatal_error(error_type, description)

    def clear_error(self, error_type: str | None = None) -> None:
        """Remove FATAL errors (of ``error_type``, or all); the robot may move again."""
        self.state.clear_error(error_type)

    def set_battery(self, percent: float) -> None:
        self.state.set_battery(percent)

    def collisions_changed(self) -> None:
        self.state.collisions_changed()

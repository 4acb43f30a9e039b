"""What one simulated robot is and reports: its position, order progress, loads, battery,
operating mode and errors, and the faults a test or a fault script injects into it.

:class:`RobotState` builds the body of the robot's ``state`` message. It is the one state the
robot's behaviour shares: :class:`~simulators.robots.orders.OrderIntake` takes orders and
instant actions, :class:`~simulators.robots.driving.Driver` drives and runs actions, and
:class:`~simulators.robots.vehicle.SimulatedRobot` puts them together.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from devices.vda5050.messages import (
    ActionState,
    EdgeState,
    ErrorEntry,
    Load,
    NodeState,
    Pose,
    StateBody,
)
from kernel.clock import Clock
from kernel.config.model import LineConfig, Robot, RobotModel
from simulators.robots.battery import Battery
from simulators.robots.capabilities import Capabilities, capabilities
from simulators.robots.collisions import Place
from simulators.robots.profile import STRICT, VehicleProfile
from simulators.robots.timed import TimedFault

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
DropHook = Callable[[str, str, str | None], Awaitable[None]]
MoveHook = Callable[[str, Place], None]
TERMINAL = frozenset({"FINISHED", "FAILED"})
INJECTED = "injected failure"  # the resultDescription of an injected failure
OPERATING_MODES = frozenset({"AUTOMATIC", "SEMIAUTOMATIC", "MANUAL", "SERVICE", "TEACHIN"})
MAX_INSTANT_WARNINGS = 8  # refused instant actions reported at once; the oldest go first


class RobotState:
    """One robot's state and the faults injected into it."""

    def __init__(
        self,
        config: LineConfig,
        robot: Robot,
        clock: Clock,
        on_drop: DropHook | None = None,
        profile: VehicleProfile = STRICT,
    ) -> None:
        self.config = config
        self.robot = robot
        self.model: RobotModel = config.robots.models[robot.model]
        self.clock = clock
        self.profile = profile
        self.capabilities: Capabilities = capabilities(self.model)
        self.on_drop = on_drop
        self.on_move: MoveHook | None = None
        home = config.node(robot.home)
        self.map_id = config.node_map_id(home)
        self.node_positions = {
            n.id: (n.x, n.y) for n in config.robots.nodes if config.node_map_id(n) == self.map_id
        }
        self.chargers = frozenset(c.node for c in config.robots.chargers)
        self.x, self.y, self.theta = home.x, home.y, 0.0
        self.order_id = ""
        self.order_update_id = 0
        self.order_content: JsonDict | None = None  # of the message accepted last
        self.last_node_id = robot.home
        self.last_node_seq = 0
        self.nodes: deque[JsonDict] = deque()
        self.edges: deque[JsonDict] = deque()
        self.actions: dict[str, ActionState] = {}
        self.errors: list[ErrorEntry] = []
        self.collision_warnings: Callable[[str], list[ErrorEntry]] | None = None
        self.loads: dict[str, Load] = {}
        self.driving = False
        self.paused = False
        self.battery = Battery()
        self.operating_mode = "AUTOMATIC"
        self.velocity = 0.0
        self.frozen = TimedFault(clock)
        self.changed = asyncio.Event()
        self.factsheet_requested = asyncio.Event()
        self.work = asyncio.Event()
        self.wake = asyncio.Event()  # something that held the robot still may have gone
        self.cancel_action_id: str | None = None
        self.abort_reason: str | None = None
        self.busy = False
        self.fail_next = False
        self.fail_types: list[tuple[str, str]] = []  # (action type, result reported)

    @property
    def serial(self) -> str:
        return self.robot.serial

    # --- what the robot reports -------------------------------------------------------------

    def pose(self) -> Pose:
        return Pose(self.x, self.y, self.theta, self.map_id)

    def place(self) -> Place:
        return Place.node(self.last_node_id)

    def velocity_vector(self) -> tuple[float, float, float]:
        return (self.velocity * math.cos(self.theta), self.velocity * math.sin(self.theta), 0.0)

    def all_errors(self) -> list[ErrorEntry]:
        """Order and action warnings, injected errors, battery and collision entries."""
        out = list(self.errors)
        if self.battery.empty:
            out.append(ErrorEntry("batteryEmpty", "FATAL", "battery is empty"))
        elif self.battery.low:
            out.append(
                ErrorEntry("batteryLow", "WARNING", f"battery at {self.battery.charge:.1f} %")
            )
        if self.collision_warnings is not None:
            out += self.collision_warnings(self.serial)
        return out

    def fatal(self) -> bool:
        return self.battery.empty or any(e.level == "FATAL" for e in self.errors)

    def state_body(self) -> StateBody:
        return StateBody(
            order_id=self.order_id,
            order_update_id=self.order_update_id,
            last_node_id=self.last_node_id,
            last_node_sequence_id=self.last_node_seq,
            node_states=[node_state(n) for n in self.nodes],
            edge_states=[
                EdgeState(e["edgeId"], e["sequenceId"], e["released"]) for e in self.edges
            ],
            action_states=list(self.actions.values()),
            driving=self.driving,
            paused=self.paused,
            pose=self.pose(),
            velocity=self.velocity_vector(),
            loads=list(self.loads.values()),
            battery_charge=round(self.battery.charge, 3),
            charging=self.battery.charging,
            operating_mode=self.operating_mode,
            errors=self.all_errors(),
            map_ids=(self.map_id,),
        )

    def touch(self) -> None:
        self.changed.set()

    def executing(self) -> bool:
        return bool(self.nodes) or any(a.status not in TERMINAL for a in self.actions.values())

    # --- rejections -------------------------------------------------------------------------

    def reject(self, error: ErrorEntry) -> None:
        """Report a rejected order (spec 6.6.4) until a new order is accepted; it replaces an
        earlier order rejection of the same type."""
        if _about_instant_actions(error):
            self.reject_instant(error)
            return
        self.errors = [
            e for e in self.errors if e.error_type != error.error_type or _about_instant_actions(e)
        ] + [error]
        log.info(
            "order rejected",
            extra={"serial": self.serial, "error_type": error.error_type, "why": error.description},
        )
        self.touch()

    def reject_instant(self, error: ErrorEntry) -> None:
        """Report a refused instant action until a new order is accepted."""
        instant = [e for e in self.errors if _about_instant_actions(e)]
        drop = instant[: max(0, len(instant) + 1 - MAX_INSTANT_WARNINGS)]
        self.errors = [e for e in self.errors if not any(e is d for d in drop)] + [error]
        log.info(
            "instant action rejected",
            extra={
                "serial": self.serial,
                "error_type": error.error_type,
                "why": error.description,
                "action_id": dict(error.references).get("actionId"),
            },
        )
        self.touch()

    # --- injected faults and scripted conditions --------------------------------------------

    def fail_next_action(self) -> None:
        """The next action the robot starts fails."""
        self.fail_next = True

    def fail_action(self, action_type: str, result: str = INJECTED) -> None:
        """The next action of ``action_type`` (``pick``, ``drop``) the robot starts fails,
        reporting ``result`` as its ``resultDescription`` (a shortage code, for instance)."""
        self.fail_types.append((action_type, result))

    def freeze(self, for_seconds: float) -> None:
        """The vehicle controller hangs for ``for_seconds`` line seconds: no state, no
        visualization, no message handled, no motion."""
        self.frozen.start(for_seconds)
        log.warning(
            "vehicle controller frozen", extra={"serial": self.serial, "line_seconds": for_seconds}
        )

    def unfreeze(self) -> None:
        self.frozen.lift()
        self.wake.set()
        self.touch()

    def fatal_error(self, error_type: str, description: str) -> None:
        """Report a FATAL error (spec 6.10.5); the robot stops until it is cleared."""
        self.errors = [e for e in self.errors if e.error_type != error_type]
        self.errors.append(ErrorEntry(error_type, "FATAL", description))
        log.warning("fatal error", extra={"serial": self.serial, "error_type": error_type})
        self.touch()

    def clear_error(self, error_type: str | None = None) -> None:
        """Remove FATAL errors (of ``error_type``, or all); the robot may move again."""
        self.errors = [
            e
            for e in self.errors
            if e.level != "FATAL" or (error_type is not None and e.error_type != error_type)
        ]
        log.info("fatal error cleared", extra={"serial": self.serial, "error_type": error_type})
        self.wake.set()
        self.touch()

    def set_battery(self, percent: float) -> None:
        self.battery.set(percent)
        self.wake.set()
        self.touch()

    def collisions_changed(self) -> None:
        self.touch()

    def moved(self, place: Place) -> None:
        if self.on_move is not None:
            self.on_move(self.serial, place)

    def warn(self, error_type: str, description: str, action_id: str) -> None:
        self.errors.append(
            ErrorEntry(error_type, "WARNING", description, (("actionId", action_id),))
        )

    def stopping(self) -> bool:
        return self.cancel_action_id is not None or self.abort_reason is not None


def node_state(node: JsonDict) -> NodeState:
    """A ``nodeStates`` entry of an order node still ahead."""
    pos = node.get("nodePosition")
    if pos is None:
        return NodeState(node["nodeId"], node["sequenceId"], node["released"])
    return NodeState(
        node["nodeId"], node["sequenceId"], node["released"], pos["x"], pos["y"], pos["mapId"]
    )


def _about_instant_actions(error: ErrorEntry) -> bool:
    return ("topic", "instantActions") in error.references

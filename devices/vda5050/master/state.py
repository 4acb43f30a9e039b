"""What VDA 5050 master control knows of its fleet and its broker link, in one place.

:class:`MasterState` is made once per master control and handed to each of its parts, so they
share the robots' trackers and message builders, the broker client while connected and the
controller's event queue explicitly, in one object, instead of through a common base class.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiomqtt

from devices.base import DeviceEvent
from devices.errors import DeviceUnavailable
from devices.vda5050.guard import GuardSettings, OrderGuard
from devices.vda5050.messages import MessageBuilder
from devices.vda5050.tracker import RobotTracker
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

WATCH_INTERVAL = 1.0  # line seconds between availability checks (and looks for orders to resend)


@dataclass
class MasterState:
    """A tracker and a message builder per configured robot, and the link to the outside."""

    clock: Clock
    metrics: Metrics
    interface_name: str
    trackers: dict[str, RobotTracker]
    builders: dict[str, MessageBuilder]
    client: aiomqtt.Client | None = None  # while connected to the broker
    events: asyncio.Queue[DeviceEvent] | None = None  # once master control runs
    # every message to a robot passes it (a controller with a standby: only under a lease)
    fence: Fence = field(default_factory=Fence.unfenced)

    @classmethod
    def for_fleet(
        cls, config: LineConfig, clock: Clock, metrics: Metrics, interface_name: str
    ) -> MasterState:
        """A tracker (with its order guard) and a message builder for each robot in
        ``config.robots.fleet``."""
        trackers: dict[str, RobotTracker] = {}
        builders: dict[str, MessageBuilder] = {}
        area = config.robots
        nodes = {n.id: (n.x, n.y, config.node_map_id(n)) for n in area.nodes}
        settings = GuardSettings(
            area.max_orders_per_minute,
            area.rejection_backoff,
            area.rejection_backoff_max,
            area.max_rejections,
            area.cancel_attempts,
        )
        for robot in area.fleet:
            model = area.models[robot.model]
            trackers[robot.serial] = RobotTracker(
                robot,
                model,
                clock,
                nodes=nodes,
                guard=OrderGuard(settings),
                action_deadline=area.action_deadline,
                metrics=metrics,
            )
            builders[robot.serial] = MessageBuilder(
                robot.version, model.manufacturer, robot.serial, clock
            )
        return cls(clock, metrics, interface_name, trackers, builders)

    def tracker(self, serial: str) -> RobotTracker:
        """The robot's tracker; DeviceUnavailable for a serial not in the fleet."""
        tracker = self.trackers.get(serial)
        if tracker is None:
            raise DeviceUnavailable(f"robot {serial!r} is not configured")
        return tracker

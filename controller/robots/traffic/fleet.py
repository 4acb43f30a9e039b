"""Traffic control: robot orders released node by node, so no two robots meet on a node.

:class:`TrafficFleet` stands between the controller and the robot fleet. The dispatcher gives it
whole trips as before (``send_order``); it sends each as a VDA 5050 order whose *base* holds
only the nodes reserved for the robot and whose *horizon* holds the rest of the way (spec
6.6.1), and extends the base with order updates (spec 6.6.2) as the pure planner in
:mod:`routing.traffic` grants further nodes. The planner's decisions land on the robots:

* a release extends the robot's base (``send_order_update``; an update the robot has not yet
  confirmed holds back the next one, which follows on a later tick);
* a re-route replaces the horizon; the trip's actions move with their stops;
* an evacuation sends an idle robot that stands in the way to a parking node, as an errand
  (the dispatcher sees the robot busy until it arrives);
* waits are kept for ``GET /v1/line`` and the metrics, and a robot waiting longer than
  ``traffic.wait_warning`` line seconds is logged once.

Robot positions come from the state messages (``lastNodeId``): each tick, robots that reached a
node of their base free the nodes behind them, and a round is planned when anything changed. A
robot is known to traffic control once it has reported a node; one that reports a node held by
another robot, or a node off its base, is logged and kept where it was last known until its
order ends. An order that ends (finished, cancelled, rejected) frees the robot's base except the
node it stands on.

With ``traffic.enabled`` off every call goes straight to the fleet: trips are released whole,
for fleets whose own fleet manager keeps robots apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence

from controller.robots.traffic.deadlocks import Deadlocks
from controller.robots.traffic.orders import TrafficOrders
from controller.robots.traffic.positions import RobotPositions
from controller.robots.traffic.rounds import TrafficRounds
from controller.robots.traffic.state import Job, TrafficFleetState, WaitInfo
from devices import base as dev
from devices.errors import CommandRejected
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing import traffic
from routing.roadmap import Roadmap

__all__ = ["TrafficFleet", "WaitInfo"]


class TrafficFleet:
    """A :class:`devices.base.RobotFleet` that keeps robots apart on the roadmap.

    Its parts share one :class:`~controller.robots.traffic.state.TrafficFleetState` and work
    under its lock: ``positions`` takes in where the robots stand, ``orders`` sends their
    orders and order updates, ``deadlocks`` has a stuck robot give way, and ``rounds`` plans
    and sends each round."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        on_errand: Callable[[str, str], None],
        on_deadlock: Callable[[str, str], Awaitable[None]],
    ) -> None:
        """``on_errand(job id, serial)``: an evacuation was sent; ``on_deadlock(serial, why)``:
        cancel the robot's trip and queue its orders again."""
        self.shared = TrafficFleetState.for_line(config, clock, metrics, fleet)
        self.positions = RobotPositions(self.shared)
        self.orders = TrafficOrders(self.shared, self.positions, on_errand)
        self.deadlocks = Deadlocks(self.shared, on_deadlock)
        self.rounds = TrafficRounds(self.shared, self.positions, self.orders, self.deadlocks)

    # --- what callers read and set ----------------------------------------------------------

    @property
    def enabled(self) -> bool:
        return self.shared.settings.enabled

    @property
    def roadmap(self) -> Roadmap:
        return self.shared.roadmap

    @property
    def state(self) -> traffic.TrafficState:
        """The planner's state: every known robot's route and reservations."""
        return self.shared.planner

    @property
    def jobs(self) -> dict[str, Job]:
        """Robot -> the order traffic control follows for it."""
        return self.shared.jobs

    @property
    def held(self) -> Callable[[str], bool]:
        """Robots traffic control must not send anywhere for now (being taken over at start)."""
        return self.shared.held

    @held.setter
    def held(self, held: Callable[[str], bool]) -> None:
        self.shared.held = held

    @property
    def unrecorded(self) -> Callable[[str], bool]:
        """Robots whose last reports are not recorded yet: traffic control sends them no new
        order (it would erase what the robot remembers of its last one)."""
        return self.shared.unrecorded

    @unrecorded.setter
    def unrecorded(self, unrecorded: Callable[[str], bool]) -> None:
        self.shared.unrecorded = unrecorded

    # --- RobotFleet -------------------------------------------------------------------------

    async def run(self, events: asyncio.Queue[dev.DeviceEvent]) -> None:
        """Run the fleet; watch its events (an order that ends frees the robot's way) and
        plan traffic rounds until cancelled."""
        fleet = self.shared.fleet
        if not self.enabled:
            await fleet.run(events)
            return
        inner: asyncio.Queue[dev.DeviceEvent] = asyncio.Queue()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(fleet.run(inner), name="traffic.fleet")
            tg.create_task(self._pump(inner, events), name="traffic.events")
            tg.create_task(self.rounds.loop(), name="traffic.rounds")

    async def send_order(self, serial: str, order: dev.RobotOrder) -> None:
        """Start a trip: the robot's order goes out at once with as much of the way released
        as traffic allows (at least the node it stands on) and the rest as horizon."""
        if not self.enabled:
            await self.shared.fleet.send_order(serial, order)
            return
        async with self.shared.lock:
            self.positions.sync()
            self.orders.start(serial, order)
            await self.rounds.round(first=serial)

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[dev.RouteNode],
        edges: Sequence[dev.RouteEdge],
    ) -> int:
        if self.enabled:
            raise CommandRejected("order updates are made by traffic control")
        return await self.shared.fleet.send_order_update(serial, order_id, nodes, edges)

    async def send_instant_actions(self, serial: str, actions: Sequence[dev.RobotAction]) -> None:
        await self.shared.fleet.send_instant_actions(serial, actions)

    async def cancel_order(self, serial: str) -> str:
        """Cancel the robot's order; its base is no longer extended (the robot stops on it)."""
        action_id = await self.shared.fleet.cancel_order(serial)
        job = self.shared.jobs.get(serial)
        if job is not None:
            job.cancelled = True
        return action_id

    def snapshot(self) -> dict[str, dev.RobotSnapshot]:
        return self.shared.fleet.snapshot()

    def robot_positions(self) -> dict[str, dev.RobotPosition]:
        return self.shared.fleet.robot_positions()

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, dev.RobotSnapshot]:
        return self.shared.fleet.snapshot_of(serials)

    def accepts_trips(self, serial: str) -> bool:
        """Whether the robot may be given a trip now (False for a while after it gave way)."""
        return self.deadlocks.accepts_trips(serial)

    def waiting(self, serial: str) -> bool:
        """Whether the robot stands waiting for a node another robot holds (traffic control's
        own waits, resolved by its deadlock and stall handling)."""
        return serial in self.shared.waits

    # --- what traffic control shows ---------------------------------------------------------

    def view(self, serial: str) -> dict[str, object] | None:
        """The robot's reservations and what it waits for, for ``GET /v1/line``."""
        if not self.enabled:
            return None
        try:
            plan = self.shared.planner.robot(serial)
        except KeyError:
            return {"known": False}
        wait = self.shared.waits.get(serial)
        return {
            "known": True,
            "base": list(plan.base),
            "horizon": list(plan.horizon),
            "waiting_for": None
            if wait is None
            else {
                "node": wait.node,
                "holder": wait.holder,
                "seconds": round(self.shared.clock.now() - wait.since, 1),
            },
        }

    # --- the event watch --------------------------------------------------------------------

    async def _pump(
        self, inner: asyncio.Queue[dev.DeviceEvent], outer: asyncio.Queue[dev.DeviceEvent]
    ) -> None:
        while True:
            event = await inner.get()
            if isinstance(event, dev.RobotOrderFinished):
                async with self.shared.lock:
                    # on its way to be recorded before the robot counts as free
                    outer.put_nowait(event)
                    self._order_ended(event.serial, event.order_id)
            else:
                outer.put_nowait(event)

    def _order_ended(self, serial: str, order_id: str) -> None:
        """An order that ends (finished, cancelled, rejected) frees the robot's base except the
        node it stands on."""
        shared = self.shared
        job = shared.jobs.get(serial)
        if job is None or job.order_id != order_id:
            return
        del shared.jobs[serial]
        self.deadlocks.trip_ended(serial)
        self.positions.sync()
        node = shared.planner.robot(serial).node if serial in shared.planner.serials() else None
        if node is not None:
            self.positions.place(serial, node)
        shared.dirty = True

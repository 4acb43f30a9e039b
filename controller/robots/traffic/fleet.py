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
from collections.abc import Sequence

from controller.robots.traffic.orders import _stops
from controller.robots.traffic.rounds import TrafficRounds
from controller.robots.traffic.state import WaitInfo
from devices import base as dev
from devices.errors import CommandRejected
from routing import traffic

__all__ = ["TrafficFleet", "WaitInfo"]


class TrafficFleet(TrafficRounds):
    """A :class:`devices.base.RobotFleet` that keeps robots apart on the roadmap."""

    # --- RobotFleet -------------------------------------------------------------------------

    async def run(self, events: asyncio.Queue[dev.DeviceEvent]) -> None:
        """Run the fleet; watch its events (an order that ends frees the robot's way) and
        plan traffic rounds until cancelled."""
        if not self.enabled:
            await self._fleet.run(events)
            return
        inner: asyncio.Queue[dev.DeviceEvent] = asyncio.Queue()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._fleet.run(inner), name="traffic.fleet")
            tg.create_task(self._pump(inner, events), name="traffic.events")
            tg.create_task(self._loop(), name="traffic.rounds")

    async def send_order(self, serial: str, order: dev.RobotOrder) -> None:
        """Start a trip: the robot's order goes out at once with as much of the way released
        as traffic allows (at least the node it stands on) and the rest as horizon."""
        if not self.enabled:
            await self._fleet.send_order(serial, order)
            return
        async with self._lock:
            self._sync()
            job = self._start(serial, order)
            self.state = traffic.start_trip(
                self.state, serial, job.ids(), _stops(job.nodes), priority=0
            )
            await self._round(first=serial)

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[dev.RouteNode],
        edges: Sequence[dev.RouteEdge],
    ) -> int:
        if self.enabled:
            raise CommandRejected("order updates are made by traffic control")
        return await self._fleet.send_order_update(serial, order_id, nodes, edges)

    async def send_instant_actions(self, serial: str, actions: Sequence[dev.RobotAction]) -> None:
        await self._fleet.send_instant_actions(serial, actions)

    async def cancel_order(self, serial: str) -> str:
        """Cancel the robot's order; its base is no longer extended (the robot stops on it)."""
        action_id = await self._fleet.cancel_order(serial)
        job = self.jobs.get(serial)
        if job is not None:
            job.cancelled = True
        return action_id

    def snapshot(self) -> dict[str, dev.RobotSnapshot]:
        return self._fleet.snapshot()

    def accepts_trips(self, serial: str) -> bool:
        """Whether the robot may be given a trip now (False for a while after it gave way)."""
        until = self._resting.get(serial)
        if until is None:
            return True
        if self._clock.now() >= until:
            del self._resting[serial]
            return True
        return False

    def waiting(self, serial: str) -> bool:
        """Whether the robot stands waiting for a node another robot holds (traffic control's
        own waits, resolved by its deadlock and stall handling)."""
        return serial in self.waits

    # --- what traffic control shows ---------------------------------------------------------

    def view(self, serial: str) -> dict[str, object] | None:
        """The robot's reservations and what it waits for, for ``GET /v1/line``."""
        if not self.enabled:
            return None
        try:
            plan = self.state.robot(serial)
        except KeyError:
            return {"known": False}
        wait = self.waits.get(serial)
        return {
            "known": True,
            "base": list(plan.base),
            "horizon": list(plan.horizon),
            "waiting_for": None
            if wait is None
            else {
                "node": wait.node,
                "holder": wait.holder,
                "seconds": round(self._clock.now() - wait.since, 1),
            },
        }

    # --- the event watch --------------------------------------------------------------------

    async def _pump(
        self, inner: asyncio.Queue[dev.DeviceEvent], outer: asyncio.Queue[dev.DeviceEvent]
    ) -> None:
        while True:
            event = await inner.get()
            if isinstance(event, dev.RobotOrderFinished):
                async with self._lock:
                    self._order_ended(event.serial, event.order_id)
            await outer.put(event)

    def _order_ended(self, serial: str, order_id: str) -> None:
        job = self.jobs.get(serial)
        if job is None or job.order_id != order_id:
            return
        del self.jobs[serial]
        self._best.pop(serial, None)
        if self._giving_way.pop(serial, None) is not None:
            self._resting[serial] = self._clock.now() + self._deadlock_after
        self._sync()
        node = self.state.robot(serial).node if serial in self.state.serials() else None
        if node is not None:
            self._place(serial, node)
        self._dirty = True

"""Traffic control's rounds: robot positions taken in, the planner run, waits and deadlocks.

Each tick the robots' reported nodes go into the planner's state; a round is planned when
anything changed (at least every :data:`REPLAN_EVERY` line seconds while robots move), its
releases, re-routes and evacuations are sent, long waits are logged once, and robots stuck on
each other give way.
"""

from __future__ import annotations

import logging

from controller.robots.traffic.deadlocks import Deadlocks
from controller.robots.traffic.orders import TrafficOrders
from controller.robots.traffic.positions import RobotPositions
from controller.robots.traffic.state import TrafficFleetState, WaitInfo
from routing import traffic

log = logging.getLogger("controller.robots.traffic.fleet")  # traffic control logs under one name

REPLAN_EVERY = 1.0  # line seconds: a round is planned at least this often while robots move


class TrafficRounds:
    """The planning rounds: what the planner decides goes to the robots, in a fixed order."""

    def __init__(
        self,
        shared: TrafficFleetState,
        positions: RobotPositions,
        orders: TrafficOrders,
        deadlocks: Deadlocks,
    ) -> None:
        self.shared = shared
        self.positions = positions
        self.orders = orders
        self.deadlocks = deadlocks

    async def loop(self) -> None:
        """Plan a round on every tick something changed (or one is due); otherwise send only
        the order updates held back on an earlier tick. Runs until cancelled."""
        shared = self.shared
        while True:
            await shared.clock.sleep(shared.settings.tick)
            async with shared.lock:
                moved = self.positions.sync()
                due = shared.jobs and shared.clock.now() - shared.last_round >= REPLAN_EVERY
                if moved or due or shared.dirty:
                    await self.round()
                else:
                    await self.orders.send_updates()  # those held back on an earlier tick

    async def round(self, first: str | None = None) -> None:
        """Plan one round and send what it decided, right after the robots' positions were
        taken in (``positions.sync``, in the same step). ``first``: the robot whose new order
        is sent in this round; a failure to send it is raised (and its trip dropped)."""
        shared = self.shared
        before = shared.planner
        result = traffic.plan(shared.roadmap, before, shared.policy, self._staying())
        shared.planner = result.state
        shared.last_round = shared.clock.now()
        shared.dirty = False
        self._record(result)
        for reroute in result.reroutes:
            self.orders.replan(before, reroute.serial)
        # the robots to move away as the round saw them, taken in the same step as the
        # positions (before anything is sent)
        seen = shared.fleet.snapshot_of(e.serial for e in result.evacuations)
        for evacuation in result.evacuations:
            await self.orders.evacuate(evacuation, seen.get(evacuation.serial))
        await self.deadlocks.end_deadlock()
        if first is not None:
            job = shared.jobs[first]
            try:
                await shared.fleet.send_order(first, self.orders.first_order(first, job))
            except BaseException:
                del shared.jobs[first]
                self.positions.stay(first)
                raise
        await self.orders.send_updates()

    def _staying(self) -> list[str]:
        """Robots at the end of their route whose order has not ended (an action there, such
        as a drop, is still running): they may not be sent out of the way."""
        planner = self.shared.planner
        known = set(planner.serials())
        return [s for s in self.shared.jobs if s in known and planner.robot(s).idle]

    def _record(self, result: traffic.TrafficPlan) -> None:
        """The round's metrics, and its waits kept for the view (a long one logged once)."""
        shared = self.shared
        metrics = shared.metrics
        now = shared.clock.now()
        released = sum(len(r.nodes) for r in result.releases)
        if released:
            metrics.traffic_released_nodes.inc(released)
        for reroute in result.reroutes:
            metrics.traffic_reroutes.labels(reroute.reason.value).inc()
        waits: dict[str, WaitInfo] = {}
        for w in result.waits:
            old = shared.waits.get(w.serial)
            at = result.state.robot(w.serial).node
            since = old.since if old is not None and old.at == at else now
            waits[w.serial] = WaitInfo(w.node, w.holder, at, since)
            long_waits = shared.logged.long_waits
            if now - since >= shared.settings.wait_warning and w.serial not in long_waits:
                long_waits.add(w.serial)
                log.warning(
                    "robot waits for a node held by another robot",
                    extra={
                        "robot": w.serial,
                        "node": w.node,
                        "holder": w.holder,
                        "seconds": round(now - since, 1),
                        "route": list(result.state.robot(w.serial).route[:12]),
                        "released": result.state.robot(w.serial).released,
                    },
                )
        for serial in set(shared.waits) - set(waits):
            if serial in shared.logged.long_waits:
                shared.logged.long_waits.discard(serial)
                log.info("robot moves on after a long wait", extra={"robot": serial})
        shared.waits = waits
        metrics.traffic_waiting.set(len(waits))

"""Traffic control's rounds: robot positions taken in, the planner run, waits and deadlocks.

Each tick the robots' reported nodes go into the planner's state; a round is planned when
anything changed (at least every :data:`REPLAN_EVERY` line seconds while robots move), its
releases, re-routes and evacuations are sent, long waits are logged once, and robots stuck on
each other give way. Part of :class:`controller.robots.traffic.fleet.TrafficFleet`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.robots.traffic.orders import TrafficOrders
from controller.robots.traffic.state import WaitInfo, log
from devices import base as dev
from devices.errors import DeviceError
from routing import traffic

REPLAN_EVERY = 1.0  # line seconds: a round is planned at least this often while robots move


class TrafficRounds(TrafficOrders):
    """The planning rounds and what they decide beyond orders: waits, deadlocks, stalls."""

    # --- rounds -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self._clock.sleep(self._tick)
            async with self._lock:
                moved = self._sync()
                due = self.jobs and self._clock.now() - self._last_round >= REPLAN_EVERY
                if moved or due or self._dirty:
                    await self._round()
                else:
                    await self._send_updates()  # those held back on an earlier tick

    def _sync(self) -> bool:
        """Take the robots' reported nodes into the state; True if anything changed."""
        changed = False
        known = set(self.state.serials())
        for serial, snap in self._fleet.snapshot().items():
            node = snap.last_node_id
            if not node or not self.roadmap.has(node):
                continue
            if serial not in known:
                changed |= self._place(serial, node)
                continue
            plan = self.state.robot(serial)
            if node == plan.node:
                continue
            try:
                self.state = traffic.advance(self.state, {serial: node})
                self._notes.off_base.discard(serial)
                changed = True
            except ValueError:
                if plan.idle and serial not in self.jobs:
                    changed |= self._place(serial, node)  # moved by hand while idle
                elif serial not in self._notes.off_base:
                    self._notes.off_base.add(serial)
                    log.error(
                        "robot reported a node off its released route",
                        extra={"robot": serial, "node": node, "base": list(plan.base)},
                    )
        return changed

    async def _round(self, first: str | None = None) -> None:
        """Plan one round and send what it decided. ``first``: the robot whose new order is
        sent in this round; a failure to send it is raised (and its trip dropped)."""
        before = self.state
        result = traffic.plan(self.roadmap, before, self.policy)
        self.state = result.state
        self._last_round = self._clock.now()
        self._dirty = False
        self._record(result)
        for reroute in result.reroutes:
            self._replan(before, reroute.serial)
        for evacuation in result.evacuations:
            await self._evacuate(evacuation)
        await self._end_deadlock()
        if first is not None:
            job = self.jobs[first]
            try:
                await self._fleet.send_order(first, self._order(first, job))
            except BaseException:
                del self.jobs[first]
                self._place(first, self.state.robot(first).node)
                raise
        await self._send_updates()

    async def _send_updates(self) -> None:
        for serial in list(self.jobs):
            if serial in self.jobs and self._needs_update(serial):
                await self._update(serial)

    def _record(self, result: traffic.TrafficPlan) -> None:
        now = self._clock.now()
        released = sum(len(r.nodes) for r in result.releases)
        if released:
            self._metrics.traffic_released_nodes.inc(released)
        for reroute in result.reroutes:
            self._metrics.traffic_reroutes.labels(reroute.reason.value).inc()
        waits: dict[str, WaitInfo] = {}
        for w in result.waits:
            old = self.waits.get(w.serial)
            at = result.state.robot(w.serial).node
            since = old.since if old is not None and old.at == at else now
            waits[w.serial] = WaitInfo(w.node, w.holder, at, since)
            if now - since >= self._wait_warning and w.serial not in self._notes.long_waits:
                self._notes.long_waits.add(w.serial)
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
        for serial in set(self.waits) - set(waits):
            if serial in self._notes.long_waits:
                self._notes.long_waits.discard(serial)
                log.info("robot moves on after a long wait", extra={"robot": serial})
        self.waits = waits
        self._metrics.traffic_waiting.set(len(waits))

    async def _end_deadlock(self) -> None:
        """Robots stuck in something the planner does not resolve: waiting on each other in a
        cycle for ``deadlock_after`` line seconds, or a robot whose way has not got shorter for
        ``stall_after`` (it keeps stepping aside and coming back). One trip is cancelled (see
        ``routing.traffic.yielding_robot``); standing idle, that robot is moved out of the way
        like any parked robot, and its orders go to the queue again. At most one trip per
        ``deadlock_after``."""
        now = self._clock.now()
        for serial, since in list(self._giving_way.items()):
            if now - since >= 2 * self._deadlock_after:
                # its order never ended (robot gone?): do not let it block the next one
                del self._giving_way[serial]
        if self._giving_way or now - self._last_give_way < self._deadlock_after:
            return
        snapshots = self._fleet.snapshot()
        stuck = [
            s
            for _, s in sorted((w.since, s) for s, w in self.waits.items())
            if now - self.waits[s].since >= self._deadlock_after
        ]
        stuck += [s for s in self.stalled(snapshots) if s not in stuck]
        choice = traffic.yielding_robot(
            {s: traffic.Wait(s, w.node, w.holder) for s, w in self.waits.items()},
            stuck,
            {s for s in self.jobs if s in snapshots and snapshots[s].available},
            {r.serial: r.priority for r in self.state.robots},
        )
        if choice is not None:
            await self._give_way(*choice)

    def stalled(self, snapshots: Mapping[str, dev.RobotSnapshot]) -> list[str]:
        """Robots with a trip whose way left has not got shorter for ``stall_after``. A robot
        paused by an operator, or at the end of its way (working there), is not stalled."""
        now = self._clock.now()
        out = []
        for serial in self.jobs:
            left = len(self.state.robot(serial).route)
            snap = snapshots.get(serial)
            best = self._best.get(serial)
            if best is None or left < best[0] or left == 1 or (snap is not None and snap.paused):
                self._best[serial] = best = (left, now)
            if now - best[1] >= self._stall_after:
                out.append(serial)
        return out

    async def _give_way(self, victim: str, involved: Sequence[str]) -> None:
        self._giving_way[victim] = self._clock.now()
        self._last_give_way = self._clock.now()
        self._metrics.traffic_deadlocks.inc()
        why = f"traffic deadlock between {', '.join(sorted(involved))}"
        log.warning(
            "deadlock: cancelling one robot's trip so the others can pass",
            extra={"robot": victim, "involved": sorted(involved)},
        )
        try:
            await self._on_deadlock(victim, why)
        except DeviceError as exc:
            self._giving_way.pop(victim, None)
            log.warning(
                "deadlock: the trip could not be cancelled",
                extra={"robot": victim, "error": str(exc)},
            )

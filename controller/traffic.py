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
import dataclasses
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from controller import topology
from controller.clock import Clock
from controller.config.model import LineConfig
from controller.metrics import Metrics
from devices import base as dev
from devices.errors import CommandRejected, DeviceError, DeviceUnavailable
from routing import traffic
from routing.roadmap import Roadmap

log = logging.getLogger(__name__)

REPLAN_EVERY = 1.0  # line seconds: a round is planned at least this often while robots move


@dataclasses.dataclass
class _Job:
    """A robot order under traffic control: its whole route as it stands now."""

    order_id: str
    nodes: list[dev.RouteNode]  # from the node the robot stood on when the order was sent
    sent_base: int  # nodes[:sent_base] were sent released
    sent_horizon: tuple[str, ...]  # node ids of the horizon in the newest message sent
    cancelled: bool = False  # cancelOrder sent: nothing more is sent for it

    def ids(self) -> tuple[str, ...]:
        return tuple(n.node_id for n in self.nodes)


@dataclasses.dataclass(frozen=True)
class WaitInfo:
    node: str  # waited for
    holder: str
    at: str  # where the robot stands
    since: float  # waiting without moving since (line seconds), whatever node it waits for


@dataclasses.dataclass
class _Notes:
    """What has been logged once and must not be logged again until it changes."""

    conflicts: set[str] = dataclasses.field(default_factory=set)
    off_base: set[str] = dataclasses.field(default_factory=set)
    long_waits: set[str] = dataclasses.field(default_factory=set)


class TrafficFleet:
    """A :class:`devices.base.RobotFleet` that keeps robots apart on the roadmap."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        fleet: dev.RobotFleet,
        on_errand: Callable[[str, str], None],
        on_deadlock: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._fleet = fleet
        self._clock = clock
        self._metrics = metrics
        self._on_errand = on_errand  # (job id, serial): an evacuation was sent
        self._on_deadlock = on_deadlock  # (serial, why): cancel the robot's trip, requeue
        settings = config.robots.traffic
        self.enabled = settings.enabled
        self._tick = settings.tick
        self._wait_warning = settings.wait_warning
        self._deadlock_after = settings.deadlock_after
        self._stall_after = settings.stall_after
        self._best: dict[str, tuple[int, float]] = {}  # job: (shortest way left, reached at)
        # robots whose trip was cancelled to end a deadlock -> line time of the cancel
        self._giving_way: dict[str, float] = {}
        self._last_give_way = float("-inf")
        # robots that gave way stay out of work this long, so that they can be moved aside
        # instead of being sent straight back into the same jam
        self._resting: dict[str, float] = {}
        self.roadmap: Roadmap = topology.roadmap(config)
        self.policy = traffic.TrafficPolicy(
            parking=tuple(settings.parking or [r.home for r in config.robots.fleet]),
            lookahead=settings.lookahead,
            detour_ratio=settings.detour_ratio,
            detour_slack=settings.detour_slack,
        )
        self.state = traffic.TrafficState()
        self.jobs: dict[str, _Job] = {}
        self.waits: dict[str, WaitInfo] = {}
        self._lock = asyncio.Lock()
        self._dirty = True
        self._last_round = float("-inf")
        self._notes = _Notes()

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

    def _place(self, serial: str, node: str) -> bool:
        placed = traffic.place(self.state, serial, node)
        if isinstance(placed, traffic.Conflict):
            if serial not in self._notes.conflicts:
                self._notes.conflicts.add(serial)
                log.error(
                    "robot reports a node reserved for another robot; not used until it moves",
                    extra={"robot": serial, "node": node, "holder": placed.holder},
                )
            return False
        self._notes.conflicts.discard(serial)
        self.state = placed
        return True

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

    # --- orders -----------------------------------------------------------------------------

    def _start(self, serial: str, order: dev.RobotOrder) -> _Job:
        if serial in self.jobs:
            raise DeviceUnavailable(f"robot {serial} still drives its previous order")
        try:
            plan = self.state.robot(serial)
        except KeyError:
            raise DeviceUnavailable(
                f"robot {serial} has not reported a free node to traffic control yet"
            ) from None
        if not plan.idle:
            raise DeviceUnavailable(f"robot {serial} is moving out of another robot's way")
        if not order.nodes or order.nodes[0].node_id != plan.node:
            start = order.nodes[0].node_id if order.nodes else None
            raise DeviceUnavailable(
                f"robot {serial} stands on {plan.node}; the order starts at {start}"
            )
        job = _Job(order.order_id, list(order.nodes), 0, ())
        self.jobs[serial] = job
        return job

    def _order(self, serial: str, job: _Job) -> dev.RobotOrder:
        """The whole order as it goes out first: base, then horizon."""
        base_end = self._base_end(serial, job)
        nodes = [_released(n, i < base_end) for i, n in enumerate(job.nodes)]
        job.sent_base, job.sent_horizon = base_end, job.ids()[base_end:]
        return dev.RobotOrder(job.order_id, tuple(nodes), self._edges(nodes))

    def _base_end(self, serial: str, job: _Job) -> int:
        plan = self.state.robot(serial)
        passed = len(job.nodes) - len(plan.route)
        return passed + plan.released

    def _needs_update(self, serial: str) -> bool:
        job = self.jobs[serial]
        if job.cancelled:
            return False
        base_end = self._base_end(serial, job)
        return job.sent_base > 0 and (
            base_end != job.sent_base or job.ids()[base_end:] != job.sent_horizon
        )

    async def _update(self, serial: str) -> None:
        """Send the robot's new base nodes and its horizon as one order update."""
        job = self.jobs[serial]
        base_end = self._base_end(serial, job)
        start = job.sent_base - 1  # the stitching node: the last base node sent
        nodes = [_released(n, i < base_end) for i, n in enumerate(job.nodes) if i > start]
        path = [job.nodes[start], *nodes]
        edges = self._edges(path)
        try:
            await self._fleet.send_order_update(serial, job.order_id, nodes, edges)
        except CommandRejected as exc:
            log.debug("order update held back", extra={"robot": serial, "why": str(exc)})
            return
        except DeviceError as exc:
            log.debug("order update not sent", extra={"robot": serial, "error": str(exc)})
            return
        job.sent_base, job.sent_horizon = base_end, job.ids()[base_end:]

    def _replan(self, before: traffic.TrafficState, serial: str) -> None:
        """The robot's horizon changed: rebuild its route, moving each action to its stop.

        A re-route replaces the way from the decision point to the next stop and keeps the
        route after it, so actions (all at stops beyond the base) keep their distance from the
        end of the route."""
        job = self.jobs.get(serial)
        if job is None:
            return
        old = before.robot(serial)
        new = self.state.robot(serial)
        passed = len(job.nodes) - len(old.route)
        old_nodes = job.nodes[passed:]
        shift = len(new.route) - len(old.route)
        rebuilt: list[dev.RouteNode] = []
        for j, node_id in enumerate(new.route):
            i = j - shift
            if j < old.released:
                rebuilt.append(old_nodes[j])
            elif i >= old.released and old_nodes[i].node_id == node_id:
                rebuilt.append(old_nodes[i])
            else:
                rebuilt.append(self._bare(node_id))
        kept = {id(n) for n in rebuilt}
        for lost in [n for n in old_nodes if n.actions and id(n) not in kept]:
            # not expected from the planner (actions sit on stops past the decision point);
            # the actions are kept, at the node's first visit in the new horizon
            j = next(
                (
                    j
                    for j in range(old.released, len(rebuilt))
                    if rebuilt[j].node_id == lost.node_id and not rebuilt[j].actions
                ),
                len(rebuilt) - 1,
            )
            log.error(
                "re-route moved a stop; its actions follow the node",
                extra={"robot": serial, "node": lost.node_id, "now_at": rebuilt[j].node_id},
            )
            target = rebuilt[j]
            rebuilt[j] = dataclasses.replace(target, actions=target.actions + lost.actions)
        job.nodes = job.nodes[:passed] + rebuilt

    async def _evacuate(self, evacuation: traffic.Evacuation) -> None:
        serial = evacuation.serial
        snap = self._fleet.snapshot().get(serial)
        refused = None
        if serial in self.jobs:
            refused = "its order is not finished"
        elif snap is None or not snap.available:
            refused = "robot not available"
        elif snap.charging:
            refused = "robot is charging"
        if refused is None:
            job_id = f"evacuate-{uuid.uuid4().hex[:12]}"
            nodes = [self._bare(n) for n in evacuation.route]
            job = _Job(job_id, nodes, 0, ())
            self.jobs[serial] = job
            try:
                await self._fleet.send_order(serial, self._order(serial, job))
            except DeviceError as exc:
                del self.jobs[serial]
                refused = str(exc)
            else:
                self._on_errand(job_id, serial)
                self._metrics.traffic_evacuations.inc()
                log.info(
                    "robot sent out of the way",
                    extra={
                        "robot": serial,
                        "to": evacuation.route[-1],
                        "making_way_for": evacuation.making_way_for,
                    },
                )
                return
        log.debug("evacuation not sent", extra={"robot": serial, "why": refused})
        self._place(serial, self.state.robot(serial).node)

    def _bare(self, node_id: str) -> dev.RouteNode:
        n = self.roadmap.node(node_id)
        return dev.RouteNode(node_id, n.x, n.y, n.map_id)

    def _edges(self, path: Sequence[dev.RouteNode]) -> tuple[dev.RouteEdge, ...]:
        return tuple(
            dev.RouteEdge(
                a.node_id,
                b.node_id,
                self.roadmap.length(a.node_id, b.node_id),
                self.roadmap.edge(a.node_id, b.node_id).max_speed,
                released=b.released,
            )
            for a, b in itertools.pairwise(path)
        )


def _released(node: dev.RouteNode, released: bool) -> dev.RouteNode:
    return node if node.released == released else dataclasses.replace(node, released=released)


def _stops(nodes: Sequence[dev.RouteNode]) -> tuple[int, ...]:
    """Route indices where the robot stops for actions (the last node always counts)."""
    return tuple(i for i, n in enumerate(nodes) if i >= 1 and n.actions)

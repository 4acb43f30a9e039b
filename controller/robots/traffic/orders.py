"""Traffic control's robot orders: how a trip goes out as base and horizon and grows by updates.

The first order of a trip, the order updates that extend its base as nodes are released, a
re-route's new horizon with the trip's actions kept at their stops, and the evacuation errands
that move an idle robot out of the way.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import uuid
from collections.abc import Callable, Sequence

from controller.robots.traffic.positions import RobotPositions
from controller.robots.traffic.state import Job, TrafficFleetState
from devices import base as dev
from devices.errors import CommandRejected, DeviceError, DeviceUnavailable
from routing import traffic

log = logging.getLogger("controller.robots.traffic.fleet")  # traffic control logs under one name


class TrafficOrders:
    """Building and sending the robots' orders and order updates under traffic control."""

    def __init__(
        self,
        shared: TrafficFleetState,
        positions: RobotPositions,
        on_errand: Callable[[str, str], None],
    ) -> None:
        self.shared = shared
        self.positions = positions
        self.on_errand = on_errand  # (job id, serial): an evacuation was sent

    def start(self, serial: str, order: dev.RobotOrder) -> Job:
        """Take the robot's new trip under traffic control (not sent yet): refused unless the
        robot stands idle, known, on the order's first node."""
        shared = self.shared
        if serial in shared.jobs:
            raise DeviceUnavailable(f"robot {serial} still drives its previous order")
        try:
            plan = shared.planner.robot(serial)
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
        # kept as horizon: a message releases its base nodes (only they are copied each time)
        job = Job(order.order_id, [_released(n, False) for n in order.nodes], 0, ())
        shared.jobs[serial] = job
        shared.planner = traffic.start_trip(
            shared.planner, serial, job.ids(), _stops(job.nodes), priority=0
        )
        return job

    def first_order(self, serial: str, job: Job) -> dev.RobotOrder:
        """The whole order as it goes out first: base, then horizon."""
        base_end = self._base_end(serial, job)
        nodes = [_released(n, i < base_end) for i, n in enumerate(job.nodes)]
        job.sent_base, job.sent_horizon = base_end, job.ids()[base_end:]
        return dev.RobotOrder(job.order_id, tuple(nodes), self._edges(nodes))

    async def send_updates(self) -> None:
        """Send every robot whose base or horizon changed since its last message an update."""
        for serial in list(self.shared.jobs):
            if serial in self.shared.jobs and self._needs_update(serial):
                await self._update(serial)

    def _base_end(self, serial: str, job: Job) -> int:
        plan = self.shared.planner.robot(serial)
        passed = len(job.nodes) - len(plan.route)
        return passed + plan.released

    def _needs_update(self, serial: str) -> bool:
        job = self.shared.jobs[serial]
        if job.cancelled or job.sent_base <= 0:
            return False
        base_end = self._base_end(serial, job)
        if base_end != job.sent_base:
            return True
        horizon, nodes = job.sent_horizon, job.nodes
        return len(nodes) - base_end != len(horizon) or any(
            nodes[base_end + i].node_id != node_id for i, node_id in enumerate(horizon)
        )

    async def _update(self, serial: str) -> None:
        """Send the robot's new base nodes and its horizon as one order update."""
        job = self.shared.jobs[serial]
        base_end = self._base_end(serial, job)
        start = job.sent_base - 1  # the stitching node: the last base node sent
        nodes = [_released(n, i < base_end) for i, n in enumerate(job.nodes) if i > start]
        path = [job.nodes[start], *nodes]
        edges = self._edges(path)
        try:
            await self.shared.fleet.send_order_update(serial, job.order_id, nodes, edges)
        except CommandRejected as exc:
            log.debug("order update held back", extra={"robot": serial, "why": str(exc)})
            return
        except DeviceError as exc:
            log.debug("order update not sent", extra={"robot": serial, "error": str(exc)})
            return
        job.sent_base, job.sent_horizon = base_end, job.ids()[base_end:]

    def replan(self, before: traffic.TrafficState, serial: str) -> None:
        """The robot's horizon changed: rebuild its route, moving each action to its stop.

        A re-route replaces the way from the decision point to the next stop and keeps the
        route after it, so actions (all at stops beyond the base) keep their distance from the
        end of the route."""
        job = self.shared.jobs.get(serial)
        if job is None:
            return
        old = before.robot(serial)
        new = self.shared.planner.robot(serial)
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

    async def evacuate(
        self, evacuation: traffic.Evacuation, snap: dev.RobotSnapshot | None
    ) -> None:
        """Send an idle robot that stands in the way to a parking node, as an errand; a robot
        that may not go stays where it is. ``snap``: the robot's snapshot (None: unknown)."""
        shared = self.shared
        serial = evacuation.serial
        refused = None
        if serial in shared.jobs:
            refused = "its order is not finished"
        elif snap is None or not snap.available:
            refused = "robot not available"
        elif snap.order_hold is not None:
            refused = snap.order_hold
        elif snap.charging:
            refused = "robot is charging"
        elif shared.held(serial):
            refused = "robot is being taken over"
        elif shared.unrecorded(serial):
            refused = "its last reports are not recorded yet"
        if refused is None:
            job_id = f"evacuate-{uuid.uuid4().hex[:12]}"
            nodes = [self._bare(n) for n in evacuation.route]
            job = Job(job_id, nodes, 0, ())
            shared.jobs[serial] = job
            try:
                await shared.fleet.send_order(serial, self.first_order(serial, job))
            except DeviceError as exc:
                del shared.jobs[serial]
                refused = str(exc)
            else:
                self.on_errand(job_id, serial)
                shared.metrics.traffic_evacuations.inc()
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
        self.positions.stay(serial)

    def _bare(self, node_id: str) -> dev.RouteNode:
        """A node without actions, as horizon."""
        n = self.shared.roadmap.node(node_id)
        return dev.RouteNode(node_id, n.x, n.y, n.map_id, released=False)

    def _edges(self, path: Sequence[dev.RouteNode]) -> tuple[dev.RouteEdge, ...]:
        return tuple(
            dev.RouteEdge(
                a.node_id,
                b.node_id,
                self.shared.roadmap.length(a.node_id, b.node_id),
                self.shared.roadmap.edge(a.node_id, b.node_id).max_speed,
                released=b.released,
            )
            for a, b in itertools.pairwise(path)
        )


def _released(node: dev.RouteNode, released: bool) -> dev.RouteNode:
    return node if node.released == released else dataclasses.replace(node, released=released)


def _stops(nodes: Sequence[dev.RouteNode]) -> tuple[int, ...]:
    """Route indices where the robot stops for actions (the last node always counts)."""
    return tuple(i for i, n in enumerate(nodes) if i >= 1 and n.actions)

"""Traffic control's robot orders: how a trip goes out as base and horizon and grows by updates.

The first order of a trip, the order updates that extend its base as nodes are released, a
re-route's new horizon with the trip's actions kept at their stops, and the evacuation errands
that move an idle robot out of the way. Part of
:class:`controller.robots.traffic.fleet.TrafficFleet`.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import Sequence

from controller.robots.traffic.state import TrafficFleetState, _Job, log
from devices import base as dev
from devices.errors import CommandRejected, DeviceError, DeviceUnavailable
from routing import traffic


class TrafficOrders(TrafficFleetState):
    """Building and sending the robots' orders and order updates under traffic control."""

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
        elif snap.order_hold is not None:
            refused = snap.order_hold
        elif snap.charging:
            refused = "robot is charging"
        elif self.held(serial):
            refused = "robot is being taken over"
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

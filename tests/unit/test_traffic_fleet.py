"""TrafficFleet's seam to the robot fleet: what goes out as base and horizon, and when.

The fleet here is a recording fake (robots report the node they stand on; orders and updates
are recorded); the planner and TrafficFleet are the real ones, on the reference map.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from controller.robots.traffic.fleet import TrafficFleet
from devices import base as dev
from devices.errors import CommandRejected, DeviceUnavailable
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

TICK = 0.2  # the reference line's traffic.tick


@dataclass
class Update:
    order_id: str
    nodes: list[dev.RouteNode]
    edges: list[dev.RouteEdge]


@dataclass
class FakeFleet:
    """Robots standing where the test puts them; every order and update sent is recorded."""

    nodes: dict[str, str]  # serial -> node it reports
    orders: list[tuple[str, dev.RobotOrder]] = field(default_factory=list)
    updates: list[tuple[str, Update]] = field(default_factory=list)
    refuse_orders: bool = False
    hold_back_updates: int = 0  # this many updates are refused as not yet confirmed
    cancels: list[str] = field(default_factory=list)
    poses: dict[str, tuple[float, float]] = field(default_factory=dict)  # driving, at x, y

    async def run(self, events: asyncio.Queue[dev.DeviceEvent]) -> None:
        await asyncio.Event().wait()

    async def send_order(self, serial: str, order: dev.RobotOrder) -> None:
        if self.refuse_orders:
            raise DeviceUnavailable(f"robot {serial} is not available: test")
        self.orders.append((serial, order))

    async def send_order_update(
        self,
        serial: str,
        order_id: str,
        nodes: Sequence[dev.RouteNode],
        edges: Sequence[dev.RouteEdge],
    ) -> int:
        if self.hold_back_updates:
            self.hold_back_updates -= 1
            raise CommandRejected("previous update not yet confirmed")
        self.updates.append((serial, Update(order_id, list(nodes), list(edges))))
        return len(self.updates)

    async def send_instant_actions(self, serial: str, actions: Sequence[dev.RobotAction]) -> None:
        raise AssertionError("not expected")

    async def cancel_order(self, serial: str) -> str:
        self.cancels.append(serial)
        return f"cancel-{len(self.cancels)}"

    def robot_positions(self) -> dict[str, dev.RobotPosition]:
        return dev.positions_of(self.snapshot())

    def snapshot_of(self, serials: Iterable[str]) -> dict[str, dev.RobotSnapshot]:
        return dev.snapshots_in(self.snapshot(), serials)

    def snapshot(self) -> dict[str, dev.RobotSnapshot]:
        return {
            serial: dev.RobotSnapshot(
                serial=serial,
                manufacturer="test",
                version="2.0.0",
                connection="ONLINE",
                operating_mode="AUTOMATIC",
                last_node_id=node,
                x=self.poses.get(serial, (0.0, 0.0))[0],
                y=self.poses.get(serial, (0.0, 0.0))[1],
                driving=serial in self.poses,
                order_id=None,
                battery=100.0,
                errors=(),
                state_age=0.0,
                available=True,
                charging=False,
            )
            for serial, node in self.nodes.items()
        }


def with_traffic(config: LineConfig, **settings: object) -> LineConfig:
    """``config`` with ``robots.traffic`` settings changed."""
    traffic = config.robots.traffic.model_copy(update=settings)
    return config.model_copy(
        update={"robots": config.robots.model_copy(update={"traffic": traffic})}
    )


def _traffic(config: LineConfig, fleet: FakeFleet, clock: ManualClock) -> TrafficFleet:
    async def on_deadlock(serial: str, why: str) -> None:
        raise AssertionError(f"unexpected deadlock: {serial}: {why}")

    return TrafficFleet(config, clock, Metrics(), fleet, lambda job, serial: None, on_deadlock)


@contextlib.asynccontextmanager
async def running(traffic: TrafficFleet, clock: ManualClock) -> AsyncIterator[None]:
    """Run traffic control until its round loop sleeps on the clock (ticks are then whole)."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(traffic.run(asyncio.Queue()))
        for _ in range(100):
            if clock.pending:
                break
            await asyncio.sleep(0)
        assert clock.pending, "the round loop did not start"
        try:
            yield
        finally:
            task.cancel()


def order(traffic: TrafficFleet, order_id: str, path: list[str], pick_at: str) -> dev.RobotOrder:
    pick = dev.RobotAction(f"{order_id}-pick", "pick", "HARD", ())
    nodes = []
    for node_id in path:
        n = traffic.roadmap.node(node_id)
        actions = (pick,) if node_id == pick_at else ()
        nodes.append(dev.RouteNode(node_id, n.x, n.y, n.map_id, actions))
    edges = tuple(
        dev.RouteEdge(a, b, traffic.roadmap.length(a, b)) for a, b in itertools.pairwise(path)
    )
    return dev.RobotOrder(order_id, tuple(nodes), edges)


def assert_edges_follow_end_nodes(
    path: Sequence[dev.RouteNode], edges: Sequence[dev.RouteEdge]
) -> None:
    assert [(e.start, e.end) for e in edges] == [
        (a.node_id, b.node_id) for a, b in itertools.pairwise(path)
    ]
    assert [e.released for e in edges] == [b.released for b in path[1:]]


def released_prefix(nodes: Sequence[dev.RouteNode]) -> int:
    """How many nodes are released; they must all come before the horizon."""
    flags = [n.released for n in nodes]
    k = flags.index(False) if False in flags else len(flags)
    assert not any(flags[k:]), flags
    return k


LONG = ["P2", "G10", "G11", "G12", "G13", "G14", "G24", "G34", "G44"]


async def test_first_order_releases_the_planners_base_only(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2"})
    traffic = _traffic(reference_line, fleet, manual_clock)
    async with running(traffic, manual_clock):
        await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))

    [(serial, sent)] = fleet.orders
    assert serial == "R02" and [n.node_id for n in sent.nodes] == LONG
    base = traffic.state.robot("R02").base
    k = released_prefix(sent.nodes)
    assert [n.node_id for n in sent.nodes[:k]] == list(base)
    assert 1 < k < len(LONG)  # a part released, the rest as horizon
    assert_edges_follow_end_nodes(sent.nodes, sent.edges)
    assert sent.nodes[-1].actions[0].action_id == "t1-pick"  # actions travel with the horizon
    view = traffic.view("R02")
    assert view is not None
    assert view["base"] == list(base) and view["base"] + view["horizon"] == LONG  # type: ignore[operator]


async def test_base_grows_by_updates_that_stitch_on_the_last_base_node(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2"})
    traffic = _traffic(reference_line, fleet, manual_clock)
    async with running(traffic, manual_clock):
        await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))
        first = fleet.orders[0][1]
        last_base = first.nodes[released_prefix(first.nodes) - 1].node_id
        # the robot drives to the end of its base
        fleet.nodes["R02"] = last_base
        await manual_clock.advance(TICK)

    assert fleet.updates, "no order update after the robot reached its decision point"
    serial, update = fleet.updates[0]
    assert serial == "R02" and update.order_id == "t1"
    # the update carries the nodes after the stitching node: new base, then the horizon
    assert update.edges[0].start == last_base
    path = [first.nodes[LONG.index(last_base)], *update.nodes]
    assert [n.node_id for n in path] == LONG[LONG.index(last_base) :]
    assert released_prefix(update.nodes) >= 1
    assert_edges_follow_end_nodes(path, update.edges)
    assert (
        traffic.state.robot("R02").base[-1]
        == update.nodes[released_prefix(update.nodes) - 1].node_id
    )


async def test_update_held_back_by_the_fleet_is_sent_on_a_later_tick(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2"}, hold_back_updates=1)
    traffic = _traffic(reference_line, fleet, manual_clock)
    async with running(traffic, manual_clock):
        await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))
        first = fleet.orders[0][1]
        fleet.nodes["R02"] = first.nodes[released_prefix(first.nodes) - 1].node_id
        await manual_clock.advance(TICK)
        assert fleet.hold_back_updates == 0 and fleet.updates == []
        await manual_clock.advance(TICK)
    assert len(fleet.updates) == 1


async def test_order_for_a_busy_or_misplaced_robot_is_refused_and_sends_nothing(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2", "R03": "P3"})
    traffic = _traffic(reference_line, fleet, manual_clock)
    async with running(traffic, manual_clock):
        with pytest.raises(DeviceUnavailable, match="not reported"):
            await traffic.send_order("R04", order(traffic, "x", ["P4", "G30"], pick_at="G30"))
        with pytest.raises(DeviceUnavailable, match="stands on P3"):
            await traffic.send_order("R03", order(traffic, "y", ["P2", "G10"], pick_at="G10"))
        await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))
        state = traffic.state
        with pytest.raises(DeviceUnavailable, match="previous order"):
            await traffic.send_order("R02", order(traffic, "t2", ["P2", "P3"], pick_at="P3"))
        assert traffic.state == state
    assert [o.order_id for _, o in fleet.orders] == ["t1"]
    assert traffic.jobs["R02"].order_id == "t1"
    assert "R03" not in traffic.jobs and "R04" not in traffic.jobs


async def test_order_the_fleet_refuses_frees_the_reserved_way(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2"}, refuse_orders=True)
    traffic = _traffic(reference_line, fleet, manual_clock)
    async with running(traffic, manual_clock):
        with pytest.raises(DeviceUnavailable):
            await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))
    assert traffic.jobs == {}
    plan = traffic.state.robot("R02")
    assert plan.idle and plan.node == "P2"
    assert traffic.state.reservations.holders == {"P2": "R02"}


async def test_order_updates_from_outside_are_refused(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2"})
    traffic = _traffic(reference_line, fleet, manual_clock)
    with pytest.raises(CommandRejected):
        await traffic.send_order_update("R02", "t1", [], [])
    assert fleet.updates == []


async def test_disabled_traffic_control_passes_orders_whole(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2"})
    traffic = _traffic(with_traffic(reference_line, enabled=False), fleet, manual_clock)
    whole = order(traffic, "t1", LONG, pick_at="G44")
    await traffic.send_order("R02", whole)
    assert fleet.orders == [("R02", whole)]
    assert traffic.view("R02") is None


async def test_a_cancelled_order_gets_no_more_updates(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3: the robot keeps a cancelled order's ids, so an update stitching on where it
    stopped would start the order again: after cancelOrder nothing more is sent for it."""
    fleet = FakeFleet({"R02": "P2"})
    traffic = _traffic(reference_line, fleet, manual_clock)
    async with running(traffic, manual_clock):
        await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))
        first = fleet.orders[0][1]
        await traffic.cancel_order("R02")
        fleet.nodes["R02"] = first.nodes[released_prefix(first.nodes) - 1].node_id
        await manual_clock.advance(TICK)
        await manual_clock.advance(TICK)
    assert fleet.cancels == ["R02"]
    assert fleet.updates == []


@pytest.mark.parametrize("clearance", [1.0, None])
async def test_a_robot_driving_clear_of_its_node_frees_it_before_reaching_the_next(
    reference_line: LineConfig, manual_clock: ManualClock, clearance: float | None
) -> None:
    fleet = FakeFleet({"R02": "P2"})
    traffic = _traffic(with_traffic(reference_line, clearance=clearance), fleet, manual_clock)
    p2, g10 = traffic.roadmap.node("P2"), traffic.roadmap.node("G10")  # G10 is 2 m north
    async with running(traffic, manual_clock):
        await traffic.send_order("R02", order(traffic, "t1", LONG, pick_at="G44"))
        assert traffic.state.reservations.holder("P2") == "R02"
        # on the edge to G10, still within the clearance of P2
        fleet.poses["R02"] = (p2.x, p2.y + 0.6)
        await manual_clock.advance(TICK)
        assert traffic.state.reservations.holder("P2") == "R02"
        # clear of P2: freed before G10 is reached, unless only arriving frees a node
        fleet.poses["R02"] = (p2.x, p2.y + 1.2)
        await manual_clock.advance(TICK)
        robot = traffic.state.robot("R02")
        assert robot.node == "P2" and robot.base[1] == "G10"
        freed = clearance is not None
        assert (traffic.state.reservations.holder("P2") is None) is freed
        assert robot.left is freed
        # arriving at G10 is taken in as before
        fleet.nodes["R02"], fleet.poses["R02"] = "G10", (g10.x, g10.y)
        await manual_clock.advance(TICK)
        robot = traffic.state.robot("R02")
        assert robot.node == "G10" and not robot.left
        assert traffic.state.reservations.holder("G10") == "R02"
        assert traffic.state.reservations.holder("P2") is None


async def test_robots_reaching_their_decision_points_on_one_tick_all_move_on_and_get_updates(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    fleet = FakeFleet({"R02": "P2", "R04": "P4"})
    traffic = _traffic(reference_line, fleet, manual_clock)
    trips = {"R02": LONG, "R04": ["P4", "G30", "G40", "G50", "G51", "G52", "G53"]}
    async with running(traffic, manual_clock):
        for serial, path in trips.items():
            await traffic.send_order(serial, order(traffic, f"t-{serial}", path, path[-1]))
        reached = {}
        for serial, sent in fleet.orders:
            reached[serial] = sent.nodes[released_prefix(sent.nodes) - 1].node_id
            assert reached[serial] != trips[serial][0]
        fleet.nodes.update(reached)  # both drive to the end of their base in one tick
        await manual_clock.advance(TICK)

    for serial, node in reached.items():
        robot = traffic.state.robot(serial)
        assert robot.node == node and robot.route == tuple(
            trips[serial][trips[serial].index(node) :]
        )
        assert traffic.state.reservations.holder(trips[serial][0]) is None  # home freed
    assert sorted(serial for serial, _ in fleet.updates) == ["R02", "R04"]
    for serial, update in fleet.updates:
        assert update.edges[0].start == reached[serial]

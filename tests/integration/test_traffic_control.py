"""Traffic control against the real broker and the robot fleet simulator.

Each test runs the simulator (every robot of the reference line) and a real master control
wrapped in :class:`controller.robots.traffic.fleet.TrafficFleet` on the test's own interface name,
with a fast scaled clock. A separate MQTT client records every order message on the wire, so the
tests see what the robots were actually sent: a base, a horizon, and order updates growing the base.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import pytest

from controller.robots.traffic.fleet import TrafficFleet
from devices import base as dev
from devices.errors import DeviceUnavailable
from devices.vda5050 import schema
from devices.vda5050.link import broker_address
from devices.vda5050.master.control import VdaMasterControl
from devices.vda5050.topics import split
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from routing.roadmap import Roadmap
from simulators.robots import RobotFleetSimulator

pytestmark = pytest.mark.integration
TIME_SCALE = 80.0
WAIT = 15.0  # wall seconds
POLL = 0.005  # wall seconds between looks at a condition polled with a deadline


def trip(
    config: LineConfig,
    roadmap: Roadmap,
    serial: str,
    order_id: str,
    path: list[str],
    pick_at: str | None = None,
) -> dev.RobotOrder:
    """A trip along ``path`` built like the dispatcher builds one: a ``pick`` at ``pick_at``
    (if given) and a ``drop`` at the last node, each with the robot model's parameters."""
    model = config.robot_model(serial)
    actions: dict[int, tuple[dev.RobotAction, ...]] = {}
    if pick_at is not None:
        params = (*model.pick.parameters.items(), ("loadId", f"TOTE-{order_id}"))
        actions[path.index(pick_at)] = (
            dev.RobotAction(f"{order_id}-pick", "pick", model.pick.blocking_type, params),
        )
        params = (*model.drop.parameters.items(), ("loadId", f"TOTE-{order_id}"))
        actions[len(path) - 1] = (
            dev.RobotAction(f"{order_id}-drop", "drop", model.drop.blocking_type, params),
        )
    nodes = []
    for i, node_id in enumerate(path):
        n = roadmap.node(node_id)
        nodes.append(dev.RouteNode(node_id, n.x, n.y, n.map_id, actions.get(i, ())))
    edges = tuple(
        dev.RouteEdge(a, b, roadmap.length(a, b), roadmap.edge(a, b).max_speed)
        for a, b in itertools.pairwise(path)
    )
    return dev.RobotOrder(order_id, tuple(nodes), edges)


@dataclass
class Line:
    config: LineConfig
    sim: RobotFleetSimulator
    master: VdaMasterControl
    traffic: TrafficFleet
    events: asyncio.Queue[dev.DeviceEvent]
    orders: list[tuple[str, dict[str, Any]]]  # (serial, payload) of every order message
    errands: list[tuple[str, str]] = field(default_factory=list)  # (job id, serial)
    deadlocks: list[tuple[str, str]] = field(default_factory=list)  # (serial, why)
    seen: list[dev.DeviceEvent] = field(default_factory=list)

    def order(
        self, serial: str, order_id: str, path: list[str], pick_at: str | None = None
    ) -> dev.RobotOrder:
        return trip(self.config, self.traffic.roadmap, serial, order_id, path, pick_at)

    async def next_event(self) -> dev.DeviceEvent:
        async with asyncio.timeout(WAIT):
            event = await self.events.get()
        self.seen.append(event)
        return event

    async def until_finished(self, order_ids: set[str]) -> None:
        waiting = set(order_ids) - self.finished()
        while waiting:
            event = await self.next_event()
            if isinstance(event, dev.RobotOrderFinished):
                waiting.discard(event.order_id)

    def finished(self) -> set[str]:
        return {e.order_id for e in self.seen if isinstance(e, dev.RobotOrderFinished)}

    async def until(self, what: str, condition: Callable[[], bool]) -> None:
        """Poll ``condition`` (events keep being collected meanwhile) until it holds."""
        try:
            async with asyncio.timeout(WAIT):
                while not condition():
                    while not self.events.empty():
                        self.seen.append(self.events.get_nowait())
                    await asyncio.sleep(POLL)
        except TimeoutError:
            raise AssertionError(f"timed out waiting until {what}") from None

    async def ready(self, serials: set[str]) -> None:
        """Wait until the robots are available and known to traffic control."""

        def known() -> bool:
            snapshot = self.traffic.snapshot()
            return all(
                snapshot[s].available and (self.traffic.view(s) or {}).get("known") for s in serials
            )

        await self.until(f"{sorted(serials)} are available to traffic control", known)

    def orders_of(self, order_id: str) -> list[dict[str, Any]]:
        return [p for _, p in self.orders if p["orderId"] == order_id]


@contextlib.asynccontextmanager
async def running_line(
    config: LineConfig, mqtt_url: str, interface_name: str, time_scale: float = TIME_SCALE
) -> AsyncIterator[Line]:
    clock = ScaledClock(time_scale)
    metrics = Metrics()
    sim = RobotFleetSimulator(config, clock, mqtt_url, interface_name)
    master = VdaMasterControl(config, clock, metrics, mqtt_url, interface_name)
    errands: list[tuple[str, str]] = []
    deadlocks: list[tuple[str, str]] = []

    def on_errand(job_id: str, serial: str) -> None:
        errands.append((job_id, serial))

    async def on_deadlock(serial: str, why: str) -> None:
        deadlocks.append((serial, why))

    traffic = TrafficFleet(config, clock, metrics, master, on_errand, on_deadlock)
    orders: list[tuple[str, dict[str, Any]]] = []
    line = Line(config, sim, master, traffic, asyncio.Queue(), orders, errands, deadlocks)
    address = broker_address(mqtt_url)

    async def sniff(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            parts = split(message.topic.value)
            assert parts is not None and isinstance(message.payload, bytes)
            orders.append((parts.serial, json.loads(message.payload)))

    async with aiomqtt.Client(address.host, address.port) as sniffer:
        await sniffer.subscribe(f"{interface_name}/+/+/+/order", qos=1)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(sniff(sniffer), name="test.sniffer"),
                tg.create_task(sim.run(), name="test.robots"),
                tg.create_task(traffic.run(line.events), name="test.traffic"),
            ]
            try:
                yield line
            finally:
                for task in tasks:
                    task.cancel()


def assert_valid_orders(line: Line) -> None:
    versions = {r.serial: r.version for r in line.config.robots.fleet}
    assert line.orders, "no order message was captured"
    for serial, payload in line.orders:
        errors = schema.validate(versions[serial], "order", payload)
        assert errors == [], (serial, payload["orderId"], payload["orderUpdateId"], errors)


def horizon_sent(payloads: list[dict[str, Any]]) -> bool:
    return any(not n["released"] for p in payloads for n in p["nodes"])


# --- two robots through one aisle in opposite directions -----------------------------------


async def test_robots_cross_one_aisle_head_on_without_collision(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.ready({"R02", "R03"})
        # R02 goes up aisle 1 (G10..G14) and on over the top; R03 comes up aisle 2, crosses
        # the top the other way and goes down aisle 1 against R02
        up = line.order(
            "R02", "up", ["P2", "G10", "G11", "G12", "G13", "G14", "G24", "G34"], pick_at="G12"
        )
        down = line.order(
            "R03",
            "down",
            ["P3", "G20", "G21", "G22", "G23", "G24", "G14", "G13", "G12", "G11", "G10", "P2"],
            pick_at="G13",
        )
        await line.traffic.send_order("R02", up)
        await line.traffic.send_order("R03", down)
        await line.until_finished({"up", "down"})

        assert line.sim.collisions == []
        assert line.deadlocks == []
        assert line.errands == []
        snapshot = line.traffic.snapshot()
        assert snapshot["R02"].last_node_id == "G34"
        assert snapshot["R03"].last_node_id == "P2"
        for serial, order_id in (("R02", "up"), ("R03", "down")):
            actions = [
                e.action_type
                for e in line.seen
                if isinstance(e, dev.RobotActionFinished) and e.order_id == order_id
            ]
            assert actions == ["pick", "drop"], (serial, line.seen)
            sent = line.orders_of(order_id)
            assert horizon_sent(sent), f"{order_id} went out released whole"
            assert max(p["orderUpdateId"] for p in sent) > 0, f"{order_id} got no order update"
            tracked = line.master._state.trackers[serial].base
            assert tracked is not None and tracked.order_id == order_id
            assert tracked.update_id > 0
            # the first message releases only a part of the way; the updates stitch on
            first = sent[0]
            assert first["orderUpdateId"] == 0 and first["nodes"][0]["released"]
            assert not all(n["released"] for n in first["nodes"])
        assert_valid_orders(line)
        # both robots' jobs ended: traffic control keeps nothing for them
        assert line.traffic.jobs == {}


# --- an idle robot in the way is sent to parking -------------------------------------------


async def test_idle_robot_in_the_way_is_evacuated(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    # no detour around an idle robot is accepted, so the blocker must move
    traffic_settings = reference_line.robots.traffic.model_copy(
        update={"detour_ratio": 1.0, "detour_slack": 0.0}
    )
    robots = reference_line.robots.model_copy(update={"traffic": traffic_settings})
    config = reference_line.model_copy(update={"robots": robots})
    async with running_line(config, mqtt_url, interface_name) as line:
        await line.ready({"R02", "R03"})
        # R03 parks itself in aisle 2 and stays there idle
        await line.traffic.send_order("R03", line.order("R03", "park", ["P3", "G20", "G21"]))
        await line.until_finished({"park"})
        await line.until("R03 is idle on G21", lambda: line.traffic.jobs.get("R03") is None)
        assert line.traffic.snapshot()["R03"].last_node_id == "G21"

        # R02's pick lies beyond R03 in the same aisle
        await line.traffic.send_order(
            "R02",
            line.order("R02", "through", ["P2", "G10", "G20", "G21", "G22"], pick_at="G22"),
        )
        await line.until_finished({"through"})

        assert [serial for _, serial in line.errands] == ["R03"], line.errands
        errand_id = line.errands[0][0]
        await line.until_finished({errand_id})
        parked = line.traffic.snapshot()["R03"].last_node_id
        assert parked in {r.home for r in config.robots.fleet}, parked
        assert line.sim.collisions == []
        assert line.deadlocks == []
        assert line.traffic.snapshot()["R02"].last_node_id == "G22"
        assert_valid_orders(line)


async def test_an_idle_robot_whose_reports_are_not_recorded_yet_is_not_moved(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    """A new order would erase what the robot remembers of its last one: while the controller
    has not recorded the robot's last reports, traffic control leaves it where it is."""
    traffic_settings = reference_line.robots.traffic.model_copy(
        update={"detour_ratio": 1.0, "detour_slack": 0.0}
    )
    robots = reference_line.robots.model_copy(update={"traffic": traffic_settings})
    config = reference_line.model_copy(update={"robots": robots})
    unrecorded = {"R03"}
    async with running_line(config, mqtt_url, interface_name) as line:
        line.traffic.unrecorded = lambda serial: serial in unrecorded
        await line.ready({"R02", "R03"})
        await line.traffic.send_order("R03", line.order("R03", "park", ["P3", "G20", "G21"]))
        await line.until_finished({"park"})
        await line.until("R03 is idle on G21", lambda: line.traffic.jobs.get("R03") is None)
        await line.traffic.send_order(
            "R02",
            line.order("R02", "through", ["P2", "G10", "G20", "G21", "G22"], pick_at="G22"),
        )

        def waits_for_r03() -> bool:
            view = line.traffic.view("R02") or {}
            waiting = view.get("waiting_for")
            return isinstance(waiting, dict) and waiting.get("holder") == "R03"

        await line.until("R02 waits for R03", waits_for_r03)
        await asyncio.sleep(1.0)  # traffic rounds go by: R03 stays
        assert line.errands == []
        assert line.traffic.snapshot()["R03"].last_node_id == "G21"

        unrecorded.clear()  # its reports are recorded: now it may be moved
        await line.until_finished({"through"})
        assert [serial for _, serial in line.errands] == ["R03"], line.errands
        assert line.sim.collisions == []


# --- a robot that still drives is not given another trip -----------------------------------


async def test_second_order_to_a_driving_robot_is_refused_and_changes_nothing(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    # a slower clock: the second order must reach the robot while the first still runs, and at
    # x80 the whole trip can be over before a loaded machine gets to send it
    async with running_line(reference_line, mqtt_url, interface_name, time_scale=10) as line:
        await line.ready({"R02"})
        first = line.order("R02", "first", ["P2", "G10", "G11", "G12"], pick_at="G12")
        await line.traffic.send_order("R02", first)
        await line.until("R02 has left P2", lambda: line.traffic.snapshot()["R02"].driving)
        job = line.traffic.jobs["R02"]
        nodes_before = list(job.nodes)

        second = line.order("R02", "second", [job.nodes[0].node_id, "G10", "P2"])
        with pytest.raises(DeviceUnavailable):
            await line.traffic.send_order("R02", second)

        assert line.traffic.jobs["R02"] is job
        assert job.order_id == "first" and job.nodes == nodes_before
        assert line.traffic.state.robot("R02").route[-1] == "G12"
        await line.until_finished({"first"})
        assert line.traffic.snapshot()["R02"].last_node_id == "G12"
        assert line.orders_of("second") == []
        tracked = line.master._state.trackers["R02"].base
        assert tracked is not None and tracked.order_id == "first"
        assert "second" not in line.finished()
        assert_valid_orders(line)


# --- what traffic control shows ------------------------------------------------------------


async def test_view_shows_base_and_horizon_while_driving(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.ready({"R02"})
        assert line.traffic.view("R99") == {"known": False}
        idle = line.traffic.view("R02")
        assert idle == {"known": True, "base": ["P2"], "horizon": [], "waiting_for": None}

        path = ["P2", "G10", "G11", "G12", "G13", "G14", "G24", "G34", "G44", "G54"]
        await line.traffic.send_order("R02", line.order("R02", "long", path, pick_at="G54"))
        views: list[dict[str, object]] = []

        def driving_with_horizon() -> bool:
            view = line.traffic.view("R02")
            assert view is not None
            views.append(view)
            return bool(view["horizon"]) and len(view["base"]) > 1  # type: ignore[arg-type]

        await line.until("R02 drives with a horizon", driving_with_horizon)
        view = views[-1]
        base, horizon = view["base"], view["horizon"]
        assert isinstance(base, list) and isinstance(horizon, list)
        # base then horizon is the rest of the route, from the node the robot stands on
        route = base + horizon
        assert route == path[path.index(route[0]) :]
        assert route[-1] == "G54"
        assert view["waiting_for"] is None

        await line.until_finished({"long"})
        assert line.traffic.view("R02") == {
            "known": True,
            "base": ["G54"],
            "horizon": [],
            "waiting_for": None,
        }
        assert line.sim.collisions == []
        assert_valid_orders(line)


# --- tours that pass a node twice, to one shared induction ---------------------------------


async def test_tours_back_out_of_aisles_to_one_induction(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    """Dispatcher-shaped tours: into an aisle to pick, back out the same way, and on to the
    same induction node; the first robot there is moved out of the second one's way."""
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.ready({"R01", "R02"})
        roadmap = line.traffic.roadmap
        # R02 first: R01's tour passes P2, and an idle R02 there would be moved away at once
        tours = {
            "R02": ("tour-r02", roadmap.tour("P2", ["G11", "IND1"]), "G11"),
            "R01": ("tour-r01", roadmap.tour("P1", ["G01", "IND1"]), "G01"),
        }
        for serial, (order_id, path, pick_at) in tours.items():
            assert path.count(path[1]) == 2  # the tour passes its first aisle node twice
            await line.traffic.send_order(serial, line.order(serial, order_id, path, pick_at))
        await line.until_finished({"tour-r01", "tour-r02"})
        for order_id in ("tour-r01", "tour-r02"):
            actions = [
                e.action_type
                for e in line.seen
                if isinstance(e, dev.RobotActionFinished) and e.order_id == order_id
            ]
            assert actions == ["pick", "drop"], (order_id, line.seen)
        at_induction = [
            s for s, snap in line.traffic.snapshot().items() if snap.last_node_id == "IND1"
        ]
        assert len(at_induction) == 1, at_induction
        # the robot that arrived first was sent out of the way
        assert [serial for _, serial in line.errands] == [
            s for s in ("R01", "R02") if s not in at_induction
        ]
        assert line.sim.collisions == []
        assert line.deadlocks == []
        assert_valid_orders(line)

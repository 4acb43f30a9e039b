"""Master control and the robot fleet simulator against the real broker.

Each test runs the simulator (every robot of the reference line, its own MQTT client each) and
the master control on the test's own interface name, with a fast scaled clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiomqtt
import pytest

from devices.base import (
    DeviceEvent,
    RobotAction,
    RobotActionFinished,
    RobotAvailability,
    RobotOrder,
    RobotOrderFinished,
    RouteEdge,
    RouteNode,
)
from devices.vda5050 import schema
from devices.vda5050.link import broker_address
from devices.vda5050.master.control import VdaMasterControl
from devices.vda5050.messages import MessageBuilder
from devices.vda5050.topics import split
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from simulators.robots import RobotFleetSimulator
from simulators.robots.profile import STRICT, VehicleProfile

pytestmark = pytest.mark.integration
TIME_SCALE = 80.0
WAIT = 10.0  # wall seconds


def trip(
    config: LineConfig, serial: str, order_id: str, path: list[str], pick_at: str, load_id: str
) -> RobotOrder:
    """A trip along ``path``: ``pick`` at node ``pick_at``, ``drop`` at the last node, with the
    parameters of the robot model's templates plus the load id."""
    model = config.robot_model(serial)
    pick_index, drop_index = path.index(pick_at), len(path) - 1
    nodes = []
    for i, node_id in enumerate(path):
        n = config.node(node_id)
        actions: tuple[RobotAction, ...] = ()
        if i == pick_index:
            params = (*model.pick.parameters.items(), ("loadId", load_id))
            actions = (RobotAction(f"{order_id}-pick", "pick", model.pick.blocking_type, params),)
        elif i == drop_index:
            params = (*model.drop.parameters.items(), ("loadId", load_id))
            actions = (RobotAction(f"{order_id}-drop", "drop", model.drop.blocking_type, params),)
        nodes.append(RouteNode(node_id, n.x, n.y, config.node_map_id(n), actions))
    edges = []
    for a, b in itertools.pairwise(path):
        na, nb = config.node(a), config.node(b)
        edges.append(RouteEdge(a, b, math.hypot(nb.x - na.x, nb.y - na.y)))
    return RobotOrder(order_id, tuple(nodes), tuple(edges))


@dataclass
class Line:
    sim: RobotFleetSimulator
    master: VdaMasterControl
    events: asyncio.Queue[DeviceEvent]
    metrics: Metrics
    drops: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def next_event(self) -> DeviceEvent:
        async with asyncio.timeout(WAIT):
            return await self.events.get()

    async def until_available(self, serials: set[str]) -> None:
        waiting = set(serials)
        while waiting:
            event = await self.next_event()
            if isinstance(event, RobotAvailability) and event.available:
                waiting.discard(event.serial)

    async def until_finished(self, order_ids: set[str]) -> list[DeviceEvent]:
        seen: list[DeviceEvent] = []
        waiting = set(order_ids)
        while waiting:
            event = await self.next_event()
            seen.append(event)
            if isinstance(event, RobotOrderFinished):
                waiting.discard(event.order_id)
        return seen


@contextlib.asynccontextmanager
async def running_line(
    config: LineConfig,
    mqtt_url: str,
    interface_name: str,
    *,
    profile: VehicleProfile = STRICT,
    time_scale: float = TIME_SCALE,
) -> AsyncIterator[Line]:
    clock = ScaledClock(time_scale)
    metrics = Metrics()
    drops: list[tuple[str, str, str | None]] = []

    async def on_drop(serial: str, node_id: str, load_id: str | None) -> None:
        drops.append((serial, node_id, load_id))

    sim = RobotFleetSimulator(
        config, clock, mqtt_url, interface_name, on_drop=on_drop, profile=profile
    )
    master = VdaMasterControl(config, clock, metrics, mqtt_url, interface_name)
    line = Line(sim, master, asyncio.Queue(), metrics, drops)
    async with asyncio.TaskGroup() as tg:
        sim_task = tg.create_task(sim.run(), name="test.robots")
        master_task = tg.create_task(master.run(line.events), name="test.master")
        try:
            yield line
        finally:
            master_task.cancel()
            sim_task.cancel()


def _orders(config: LineConfig) -> dict[str, RobotOrder]:
    return {
        "R01": trip(
            config,
            "R01",
            "trip-r01",
            ["P1", "G00", "G01", "G00", "P1", "P2", "IND1"],
            "G01",
            "TOTE-1",
        ),
        "R02": trip(
            config, "R02", "trip-r02", ["P2", "G10", "G11", "G10", "P2", "IND1"], "G11", "TOTE-2"
        ),
    }


async def test_trip_with_pick_and_drop_for_each_version(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    assert {r.serial: r.version for r in reference_line.robots.fleet}["R01"] == "2.0.0"
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01", "R02"})
        for serial, order in _orders(reference_line).items():
            await line.master.send_order(serial, order)
        events = await line.until_finished({"trip-r01", "trip-r02"})
        for serial in ("R01", "R02"):
            mine = [e for e in events if getattr(e, "serial", None) == serial]
            kinds = [
                e.action_type if isinstance(e, RobotActionFinished) else type(e).__name__
                for e in mine
                if isinstance(e, RobotActionFinished | RobotOrderFinished)
            ]
            assert kinds == ["pick", "drop", "RobotOrderFinished"], mine
        assert sorted(line.drops) == [("R01", "IND1", "TOTE-1"), ("R02", "IND1", "TOTE-2")]
        snapshot = line.master.snapshot()
        assert snapshot["R01"].last_node_id == "IND1"
        assert snapshot["R02"].last_node_id == "IND1"
        assert (snapshot["R02"].x, snapshot["R02"].y) == (6.0, -5.0)
        assert snapshot["R01"].available and snapshot["R01"].order_id == "trip-r01"


async def test_every_message_on_the_wire_validates(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    versions = {r.serial: r.version for r in reference_line.robots.fleet}
    address = broker_address(mqtt_url)
    seen: list[tuple[str, bytes, bool]] = []

    async def sniff(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            seen.append((message.topic.value, message.payload, message.retain))

    async with aiomqtt.Client(address.host, address.port) as sniffer:
        await sniffer.subscribe(f"{interface_name}/#", qos=1)
        async with asyncio.TaskGroup() as tg:
            sniff_task = tg.create_task(sniff(sniffer), name="test.sniffer")
            async with running_line(reference_line, mqtt_url, interface_name) as line:
                await line.until_available({"R01", "R02"})
                for serial, order in _orders(reference_line).items():
                    await line.master.send_order(serial, order)
                await line.until_finished({"trip-r01", "trip-r02"})
            sniff_task.cancel()
        # a late subscriber gets the retained connection and factsheet messages
        async with aiomqtt.Client(address.host, address.port) as late:
            await late.subscribe(f"{interface_name}/+/+/+/connection", qos=1)
            retained: dict[str, str] = {}
            async with asyncio.timeout(WAIT):
                async for message in late.messages:
                    assert isinstance(message.payload, bytes) and message.retain
                    seen.append((message.topic.value, message.payload, True))
                    retained[message.topic.value] = json.loads(message.payload)["connectionState"]
                    if len(retained) == len(versions):
                        break
            assert set(retained.values()) == {"OFFLINE"}

    kinds: set[str] = set()
    for full_topic, payload, _ in seen:
        parts = split(full_topic)
        assert parts is not None, full_topic
        parsed = schema.parse(versions[parts.serial], parts.subtopic, payload)
        assert parsed.ok, (full_topic, parsed.errors)
        kinds.add(parts.subtopic)
    assert {"state", "order", "connection", "factsheet", "visualization"} <= kinds


async def test_malformed_state_is_counted_dropped_and_harmless(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    address = broker_address(mqtt_url)
    state_topic = f"{interface_name}/v2/linectl-sim/R01/state"
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        builder = MessageBuilder("2.0.0", "linectl-sim", "R01", ScaledClock())
        invalid_state = builder.state(line.sim.robots["R01"].state_body())
        invalid_state["driving"] = "yes"
        del invalid_state["batteryState"]
        async with aiomqtt.Client(address.host, address.port) as intruder:
            await intruder.publish(state_topic, b"{not json", qos=1)
            await intruder.publish(state_topic, json.dumps(invalid_state), qos=1)
            await intruder.publish(f"{interface_name}/v2/linectl-sim/R99/state", b"{}", qos=1)
        await line.master.send_order("R01", _orders(reference_line)["R01"])
        await line.until_finished({"trip-r01"})
        registry = line.metrics.registry

        def count(result: str) -> float | None:
            return registry.get_sample_value(
                "linectl_mqtt_messages_total",
                {"direction": "in", "topic": "state", "result": result},
            )

        assert count("invalid") == 2
        assert count("unknown_robot") == 1
        assert (count("ok") or 0) > 0
        assert line.master.snapshot()["R01"].available

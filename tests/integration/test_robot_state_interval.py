"""How often a simulated robot speaks (spec 6.10, 6.13): a state on every change and else at
the latest every ``STATE_INTERVAL`` line seconds (every ``DRIVING_STATE_INTERVAL`` while it
drives), a visualization only while its pose changes; its factsheet says so."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime

import aiomqtt
import pytest

from devices.vda5050.link import broker_address
from devices.vda5050.topics import split
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.robots import RobotFleetSimulator
from simulators.robots.peer import DRIVING_STATE_INTERVAL, STATE_INTERVAL, VISUALIZATION_INTERVAL
from tests.integration.test_vda5050_fleet import running_line, trip

pytestmark = pytest.mark.integration

TIME_SCALE = 20.0
WATCH = 4 * STATE_INTERVAL  # line seconds


async def test_an_idle_robot_states_every_interval_and_shows_no_motion(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    one = reference_line.robots.model_copy(update={"fleet": reference_line.robots.fleet[:1]})
    cfg = reference_line.model_copy(update={"robots": one})
    clock = ScaledClock(TIME_SCALE)
    address = broker_address(mqtt_url)
    sim = RobotFleetSimulator(cfg, clock, mqtt_url, interface_name)
    heard: dict[str, list[float]] = {"state": [], "visualization": []}
    factsheet: dict[str, object] = {}
    async with aiomqtt.Client(address.host, address.port) as watcher, asyncio.TaskGroup() as tg:
        await watcher.subscribe(f"{interface_name}/+/+/+/+")
        robots = tg.create_task(sim.run())
        try:
            async with asyncio.timeout(WATCH / TIME_SCALE + 10):
                async for message in watcher.messages:
                    parts = split(message.topic.value)
                    assert parts is not None and isinstance(message.payload, bytes)
                    if parts.subtopic == "factsheet":
                        factsheet = json.loads(message.payload)
                    if parts.subtopic in heard:
                        heard[parts.subtopic].append(clock.now())
                    if heard["state"] and clock.now() - heard["state"][0] >= WATCH:
                        break
        finally:
            robots.cancel()
    states = heard["state"]
    gaps = [b - a for a, b in itertools.pairwise(states)]
    assert len(states) >= 4, states
    # nothing changed: no state before the interval is over, and none much after it
    assert min(gaps) >= 0.9 * STATE_INTERVAL, gaps
    assert max(gaps) <= 2 * STATE_INTERVAL, gaps
    # the pose once when it connected, then nothing: the robot stands still
    assert len(heard["visualization"]) == 1, heard["visualization"]
    timing = factsheet["protocolLimits"]["timing"]  # type: ignore[index]
    assert timing["defaultStateInterval"] == STATE_INTERVAL
    assert timing["visualizationInterval"] == VISUALIZATION_INTERVAL


async def test_a_driving_robot_states_every_node_and_shows_its_motion(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    address = broker_address(mqtt_url)
    nodes: list[str] = []
    shown = 0
    # the robot's own timestamps of the states it sent while driving between two nodes
    between: list[tuple[str, datetime]] = []
    async with (
        running_line(reference_line, mqtt_url, interface_name) as line,
        aiomqtt.Client(address.host, address.port) as watcher,
    ):
        await line.until_available({"R01"})
        await watcher.subscribe(f"{interface_name}/+/+/R01/+")
        route = ["P1", "G00", "G01", "G00", "P1", "P2", "IND1"]
        await line.master.send_order("R01", trip(reference_line, "R01", "t1", route, "G01", "T1"))
        async with asyncio.timeout(30):
            async for message in watcher.messages:
                parts = split(message.topic.value)
                assert parts is not None and isinstance(message.payload, bytes)
                if parts.subtopic == "visualization":
                    shown += 1
                if parts.subtopic != "state":
                    continue
                state = json.loads(message.payload)
                if state["orderId"] == "t1" and state["driving"]:
                    at = datetime.fromisoformat(state["timestamp"].replace("Z", "+00:00"))
                    between.append((state["lastNodeId"], at))
                if state["orderId"] == "t1" and (not nodes or nodes[-1] != state["lastNodeId"]):
                    nodes.append(state["lastNodeId"])
                if state["orderId"] == "t1" and not state["nodeStates"]:
                    break
    # states as the nodes are passed, far more often than the interval (the trip takes about
    # 16 line seconds); two passes in a row may share a state
    left = iter(route)
    assert all(node in left for node in nodes), nodes
    assert len(nodes) >= 5 and nodes[-1] == "IND1", nodes
    assert shown >= len(route) - 1  # the pose at least once per edge driven
    # on each edge (3-4.5 m at 1.5 m/s) a state about every second while it drives
    for _, run in itertools.groupby(between, key=lambda s: s[0]):
        times = [at for _, at in run]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert all(gap <= 1.5 * DRIVING_STATE_INTERVAL for gap in gaps), gaps
    assert len(between) >= 2 * (len(route) - 1), between

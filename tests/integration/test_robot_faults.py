"""Faults injected into the robot fleet simulator, observed through the broker by the real
master control: a broken connection, a frozen vehicle controller, FATAL errors, MANUAL mode,
battery and charging, failing actions, and collisions."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import pytest

from devices.base import (
    DeviceEvent,
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotAvailability,
    RobotOrder,
    RouteEdge,
    RouteNode,
)
from devices.vda5050.link import broker_address
from kernel.config.model import LineConfig
from simulators.robots.vehicle import DRIVE_STEP
from tests.integration.test_vda5050_fleet import WAIT, Line, running_line, trip

pytestmark = pytest.mark.integration

R01_TRIP = ["P1", "G00", "G01", "G00", "P1", "P2", "IND1"]
JsonDict = dict[str, Any]


def route(config: LineConfig, order_id: str, path: list[str]) -> RobotOrder:
    """A drive along ``path`` with no actions."""
    nodes = []
    for node_id in path:
        n = config.node(node_id)
        nodes.append(RouteNode(node_id, n.x, n.y, config.node_map_id(n)))
    edges = []
    for a, b in itertools.pairwise(path):
        na, nb = config.node(a), config.node(b)
        edges.append(RouteEdge(a, b, math.hypot(nb.x - na.x, nb.y - na.y)))
    return RobotOrder(order_id, tuple(nodes), tuple(edges))


async def until(line: Line, match: Callable[[DeviceEvent], bool]) -> DeviceEvent:
    seen: list[DeviceEvent] = []
    while True:
        try:
            event = await line.next_event()
        except TimeoutError:
            raise AssertionError(f"no matching event; saw {seen}; {_links(line)}") from None
        if match(event):
            return event
        seen.append(event)


def _links(line: Line) -> str:
    """Both sides' view of each robot's link, for a failure message."""
    master = {
        s: (r.connection, r.available, r.state_age) for s, r in line.master.snapshot().items()
    }
    peers = {s: (p.connected, round(p.link_cut.remaining(), 1)) for s, p in line.sim.peers.items()}
    return f"master (connection, available, state age): {master}; robots (connected, cut): {peers}"


def availability(serial: str, available: bool) -> Callable[[DeviceEvent], bool]:
    def match(event: DeviceEvent) -> bool:
        return (
            isinstance(event, RobotAvailability)
            and event.serial == serial
            and event.available is available
        )

    return match


@contextlib.asynccontextmanager
async def watching(
    mqtt_url: str, interface_name: str, serial: str, subtopic: str
) -> AsyncIterator[Callable[[Callable[[JsonDict], bool]], Any]]:
    """Subscribe to one robot topic; yields ``wait(predicate)`` returning the first matching
    message."""
    address = broker_address(mqtt_url)
    async with aiomqtt.Client(address.host, address.port) as client:
        await client.subscribe(f"{interface_name}/v2/linectl-sim/{serial}/{subtopic}", qos=1)

        async def wait(predicate: Callable[[JsonDict], bool]) -> JsonDict:
            async with asyncio.timeout(WAIT):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    if not message.payload:
                        continue
                    doc: JsonDict = json.loads(message.payload)
                    if predicate(doc):
                        return doc
            raise AssertionError("unreachable")

        yield wait


async def retained_connection(mqtt_url: str, interface_name: str, serial: str) -> str:
    address = broker_address(mqtt_url)
    async with aiomqtt.Client(address.host, address.port) as late:
        await late.subscribe(f"{interface_name}/v2/linectl-sim/{serial}/connection", qos=1)
        async with asyncio.timeout(WAIT):
            async for message in late.messages:
                assert message.retain and isinstance(message.payload, bytes)
                state: str = json.loads(message.payload)["connectionState"]
                return state
    raise AssertionError("unreachable")


async def test_dropped_connection_publishes_the_last_will_and_recovers(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R02"})
        line.sim.drop_connection("R02", 3600)
        lost = await until(line, availability("R02", False))
        assert isinstance(lost, RobotAvailability)
        assert lost.reason == "connection CONNECTIONBROKEN"
        # the broker published the will retained: a late subscriber still gets it
        assert await retained_connection(mqtt_url, interface_name, "R02") == "CONNECTIONBROKEN"
        line.sim.restore_connection("R02")
        await until(line, availability("R02", True))
        assert await retained_connection(mqtt_url, interface_name, "R02") == "ONLINE"
        # a timed drop ends by itself
        line.sim.drop_connection("R02", 40)
        await until(line, availability("R02", False))
        await until(line, availability("R02", True))
        assert line.master.snapshot()["R02"].connection == "ONLINE"


async def test_frozen_controller_goes_stale_stands_still_and_recovers(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        await line.master.send_order(
            "R01", trip(reference_line, "R01", "o1", R01_TRIP, "G01", "T1")
        )
        await until(line, lambda e: isinstance(e, RobotActionFinished) and e.action_type == "pick")
        robot = line.sim.robots["R01"]
        # longer than the master's silence limit: 30 line s, but at least 1.5 wall s (120 here)
        line.sim.freeze_state("R01", 240)
        frozen_at = (robot.x, robot.y)
        stale = await until(line, availability("R01", False))
        assert isinstance(stale, RobotAvailability)
        assert stale.reason.startswith("no state for")
        snap = line.master.snapshot()["R01"]
        assert snap.connection == "ONLINE"
        # it stops within one drive step of where it froze, and stays there
        assert not robot.driving
        assert math.dist((robot.x, robot.y), frozen_at) <= robot.model.speed * DRIVE_STEP
        await until(line, availability("R01", True))
        await line.until_finished({"o1"})
        assert line.drops == [("R01", "IND1", "T1")]


async def test_fatal_error_makes_the_robot_unavailable_until_cleared(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R03"})
        line.sim.fatal_error("R03", "laserScannerFault", "scanner dirty")
        down = await until(line, availability("R03", False))
        assert isinstance(down, RobotAvailability)
        assert down.reason == "fatal error laserScannerFault"
        assert line.master.snapshot()["R03"].errors == ("laserScannerFault (FATAL): scanner dirty",)
        line.sim.clear_error("R03")
        await until(line, availability("R03", True))
        assert line.master.snapshot()["R03"].errors == ()


async def test_fatal_error_stops_a_driving_robot(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R04"})
        async with watching(mqtt_url, interface_name, "R04", "state") as state:
            await line.master.send_order(
                "R04", route(reference_line, "d1", ["P4", "G30", "G31", "G32"])
            )
            await state(lambda s: s["driving"])
            line.sim.fatal_error("R04")
            stopped = await state(
                lambda s: not s["driving"] and any(e["errorLevel"] == "FATAL" for e in s["errors"])
            )
            assert stopped["nodeStates"]  # still in the order, standing where it stopped
            line.sim.clear_error("R04")
        await line.until_finished({"d1"})
        assert line.master.snapshot()["R04"].last_node_id == "G32"


async def test_manual_mode_clears_the_order_and_makes_the_robot_unavailable(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        await line.master.send_order(
            "R01", trip(reference_line, "R01", "m1", R01_TRIP, "G01", "T1")
        )
        await until(line, lambda e: isinstance(e, RobotActionFinished) and e.action_type == "pick")
        line.sim.set_operating_mode("R01", "MANUAL")
        events = await line.until_finished({"m1"})
        failed = [e for e in events if isinstance(e, RobotActionFailed)]
        assert [(e.action_type, e.reason) for e in failed] == [
            ("drop", "operating mode changed to MANUAL")
        ]
        down = [e for e in events if isinstance(e, RobotAvailability)]
        if not down:
            down = [await until(line, availability("R01", False))]  # type: ignore[list-item]
        assert down[0].reason == "operating mode MANUAL"
        line.sim.set_operating_mode("R01", "AUTOMATIC")
        await until(line, availability("R01", True))


async def test_battery_level_charging_and_drain_show_in_state(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        async with watching(mqtt_url, interface_name, "R01", "state") as state:
            # charging works only on a charger node
            await line.master.send_instant_actions(
                "R01", [RobotAction("c0", "startCharging", "NONE")]
            )
            refused = await until(line, lambda e: isinstance(e, RobotActionFailed))
            assert isinstance(refused, RobotActionFailed)
            assert refused.reason == "not on a charger (at P1)"

            line.sim.set_battery("R01", 5)
            low = await state(lambda s: s["batteryState"]["batteryCharge"] <= 5)
            assert [e["errorType"] for e in low["errors"]] == ["chargingError", "batteryLow"]
            assert line.master.snapshot()["R01"].available

            await line.master.send_order(
                "R01", route(reference_line, "to-charger", ["P1", "G00", "CHG1"])
            )
            await line.until_finished({"to-charger"})
            await line.master.send_instant_actions(
                "R01", [RobotAction("c1", "startCharging", "NONE")]
            )
            charging = await state(lambda s: s["batteryState"]["charging"])
            assert charging["lastNodeId"] == "CHG1"
            # driving drained it below the level set; charging raises it back
            assert charging["batteryState"]["batteryCharge"] < 5
            await state(lambda s: s["batteryState"]["batteryCharge"] >= 15)
            await line.master.send_instant_actions(
                "R01", [RobotAction("c2", "stopCharging", "NONE")]
            )
            stopped = await state(lambda s: not s["batteryState"]["charging"])
            assert stopped["errors"] == []
        outcomes = {
            e.action_id: type(e).__name__
            for e in [await line.next_event(), await line.next_event()]
            if isinstance(e, RobotActionFinished | RobotActionFailed)
        }
        assert outcomes == {"c1": "RobotActionFinished", "c2": "RobotActionFinished"}


async def test_fail_action_fails_the_next_action_of_that_type(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        line.sim.fail_action("R01", "drop")
        await line.master.send_order(
            "R01", trip(reference_line, "R01", "f1", R01_TRIP, "G01", "T1")
        )
        events = await line.until_finished({"f1"})
        outcomes = [
            (e.action_type, type(e).__name__)
            for e in events
            if isinstance(e, RobotActionFinished | RobotActionFailed)
        ]
        assert outcomes == [("pick", "RobotActionFinished"), ("drop", "RobotActionFailed")]
        assert line.drops == []


async def test_head_on_collision_on_an_edge_is_reported_once(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01", "R03"})
        async with watching(mqtt_url, interface_name, "R03", "state") as state:
            # they meet head-on on G00-G10 or G10-G20, whichever robot starts first
            await line.master.send_order(
                "R01", route(reference_line, "a", ["P1", "G00", "G10", "G20"])
            )
            await line.master.send_order(
                "R03", route(reference_line, "b", ["P3", "G20", "G10", "G00"])
            )
            warned = await state(lambda s: bool(s["errors"]))
        assert [(e["errorType"], e["errorLevel"]) for e in warned["errors"]] == [
            ("collision", "WARNING")
        ]
        await line.until_finished({"a", "b"})
        assert len(line.sim.collisions) == 1
        incident = line.sim.collisions[0]
        assert incident.serials == ("R01", "R03")
        assert incident.place.kind == "edge"


async def test_robot_driving_onto_an_occupied_node_collides(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R02", "R03"})
        async with watching(mqtt_url, interface_name, "R03", "state") as state:
            await line.master.send_order("R02", route(reference_line, "n", ["P2", "P3"]))
            warned = await state(lambda s: bool(s["errors"]))
        assert [(e["errorLevel"], e["errorDescription"]) for e in warned["errors"]] == [
            ("WARNING", "collision with R02 on node P3")
        ]
        await line.until_finished({"n"})
        assert [(c.serials, c.place.kind, c.place.start) for c in line.sim.collisions] == [
            (("R02", "R03"), "node", "P3")
        ]


async def test_separate_trips_do_not_collide(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01", "R02"})
        await line.master.send_order("R01", route(reference_line, "s1", ["P1", "G00", "G01"]))
        await line.master.send_order("R02", route(reference_line, "s2", ["P2", "G10", "G11"]))
        await line.until_finished({"s1", "s2"})
        assert line.sim.collisions == []
        assert all(s.errors == () for s in line.master.snapshot().values())

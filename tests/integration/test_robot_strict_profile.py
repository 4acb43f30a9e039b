"""The strict vehicle profile over the real broker: a robot stopped between nodes by a cancel
refuses an order that starts at its last node and takes one that starts where it stands; a
malformed instant action is refused with a validationError and no action state; the retained
factsheet declares what the robot accepts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiomqtt
import pytest

from devices.base import (
    RobotAction,
    RobotOrder,
    RobotOrderFinished,
    RouteEdge,
    RouteNode,
)
from devices.errors import OrderRefused
from devices.vda5050 import schema
from devices.vda5050.link import broker_address
from devices.vda5050.messages import MessageBuilder
from kernel.clock import Clock
from kernel.config.model import LineConfig
from simulators.robots.profile import StopOnCancel, VehicleProfile
from tests.integration.test_vda5050_fleet import WAIT, Line, running_line, trip

pytestmark = pytest.mark.integration

# slow enough that a cancel sent once R01 is 0.3 m along G00 -> G01 (3 m) reaches it mid-edge
TIME_SCALE = 5.0
POLL = 0.05  # line seconds


async def _poll(clock: Clock, condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` every POLL line seconds until it holds, failing with ``what`` after
    WAIT wall seconds."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await clock.sleep(POLL)
    except TimeoutError:
        pytest.fail(f"not reached within {WAIT} s: {what}")


async def _order_end(line: Line, order_id: str) -> list[object]:
    seen: list[object] = []
    while True:
        event = await line.next_event()
        seen.append(event)
        if isinstance(event, RobotOrderFinished) and event.order_id == order_id:
            return seen


async def test_robot_stopped_between_nodes_takes_orders_only_from_where_it_stands(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    profile = VehicleProfile(stop_on_cancel=StopOnCancel.IMMEDIATELY)
    async with running_line(
        reference_line, mqtt_url, interface_name, profile=profile, time_scale=TIME_SCALE
    ) as line:
        await line.until_available({"R01"})
        robot = line.sim.robots["R01"]
        path = ["P1", "G00", "G01", "G02"]
        await line.master.send_order("R01", trip(reference_line, "R01", "o1", path, "G02", "T1"))
        await _poll(
            robot.clock, lambda: robot.last_node_id == "G00" and robot.y >= 0.3, "R01 past G00"
        )
        await line.master.cancel_order("R01")
        await _order_end(line, "o1")
        snap = line.master.snapshot()["R01"]
        assert (snap.last_node_id, snap.driving) == ("G00", False)
        assert snap.x == 0.0 and snap.y is not None and 0.3 <= snap.y < 3.0 - 0.1

        # master control no longer sends work to a robot off its node: it needs recovery
        last_node = trip(reference_line, "R01", "o2", ["G00", "G01", "G02"], "G01", "T2")
        with pytest.raises(OrderRefused, match="needs manual recovery"):
            await line.master.send_order("R01", last_node)

        # the vehicle itself, sent such an order by another master control, refuses it
        builder = MessageBuilder("2.0.0", "linectl-sim", "R01", line.sim.clock)
        prefix = f"{interface_name}/v2/linectl-sim/R01"
        address = broker_address(mqtt_url)
        async with aiomqtt.Client(address.host, address.port) as client:
            await client.publish(f"{prefix}/order", json.dumps(builder.order(last_node)), qos=0)
            await _poll(
                robot.clock,
                lambda: any(
                    e.startswith("noRouteError (WARNING)")
                    for e in line.master.snapshot()["R01"].errors
                ),
                "R01 refuses an order from G00 with noRouteError",
            )
            assert (robot.last_node_id, robot.x) == ("G00", 0.0)

            # spec 6.6.3.1: a temporary first node where the vehicle stands is taken
            here = RouteNode("o3-start", 0.0, snap.y, "floor-1")
            g01 = RouteNode("G01", 0.0, 3.0, "floor-1")
            order = RobotOrder("o3", (here, g01), (RouteEdge("o3-start", "G01", 3.0 - snap.y),))
            await client.publish(f"{prefix}/order", json.dumps(builder.order(order)), qos=0)
            await _poll(
                robot.clock,
                lambda: (robot.last_node_id, robot.y) == ("G01", 3.0),
                "R01 drives from where it stands to G01",
            )
        await _poll(
            robot.clock,
            lambda: not [e for e in line.master.snapshot()["R01"].errors if "noRouteError" in e],
            "the warning cleared once an order was taken",
        )


async def test_malformed_instant_action_is_refused_and_factsheet_declares_the_rules(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    address = broker_address(mqtt_url)
    prefix = f"{interface_name}/v2/linectl-sim/R02"
    model = reference_line.robot_model("R02")
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R02"})
        builder = MessageBuilder("2.1.0", "linectl-sim", "R02", line.sim.clock)
        message = builder.instant_actions(
            [
                RobotAction("bad-cancel", "cancelOrder", "NONE", (("force", True),)),
                RobotAction("bad-type", "liftForks", "NONE"),
            ]
        )
        assert schema.validate("2.1.0", "instantActions", message) == []
        async with aiomqtt.Client(address.host, address.port) as client:
            await client.subscribe(f"{prefix}/factsheet", qos=1)
            await client.subscribe(f"{prefix}/state", qos=1)
            await client.publish(f"{prefix}/instantActions", json.dumps(message), qos=0)
            factsheet = None
            async with asyncio.timeout(WAIT):
                async for received in client.messages:
                    assert isinstance(received.payload, bytes)
                    body = json.loads(received.payload)
                    if received.topic.value.endswith("/factsheet"):
                        factsheet = body
                        continue
                    if len(body["errors"]) == 2 and factsheet is not None:
                        state = body
                        break
        refs = [
            {r["referenceKey"]: r["referenceValue"] for r in e["errorReferences"]}
            for e in state["errors"]
        ]
        assert [e["errorType"] for e in state["errors"]] == ["validationError"] * 2
        assert [(r["actionId"], r["topic"]) for r in refs] == [
            ("bad-cancel", "instantActions"),
            ("bad-type", "instantActions"),
        ]
        assert refs[0]["actionParameters"] == "force"
        assert not {"bad-cancel", "bad-type"} & {a["actionId"] for a in state["actionStates"]}
        assert line.master.snapshot()["R02"].available

        assert schema.validate("2.1.0", "factsheet", factsheet) == []
        declared = {a["actionType"]: a for a in factsheet["protocolFeatures"]["agvActions"]}
        required = {p["key"] for p in declared["pick"]["actionParameters"] if not p["isOptional"]}
        assert required == set(model.pick.parameters)
        instant = {t for t, a in declared.items() if a["actionScopes"] == ["INSTANT"]}
        assert {"cancelOrder", "startCharging", "stopCharging", "stateRequest"} <= instant

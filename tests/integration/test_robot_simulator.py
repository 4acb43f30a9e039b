"""The robot simulator's VDA 5050 behaviour, driven through the master control over the broker:
order rejection, cancelOrder, injected action failures and invalid orders."""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from devices.base import RobotAction, RobotActionFailed, RobotActionFinished, RobotOrderFinished
from devices.errors import OrderRefused, Refusal
from devices.vda5050.link import broker_address
from kernel.config.model import LineConfig
from tests.integration.test_vda5050_fleet import WAIT, running_line, trip

pytestmark = pytest.mark.integration

R01_TRIP = ["P1", "G00", "G01", "G00", "P1", "P2", "IND1"]


async def test_order_not_starting_where_the_robot_stands_is_rejected(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        order = trip(
            reference_line, "R01", "far-away", ["G01", "G00", "P1", "P2", "IND1"], "G01", "T9"
        )
        # master control does not send it (the simulator would reject it with noRouteError,
        # tests/unit/test_vda5050_spec_orders_acceptance.py)
        with pytest.raises(OrderRefused) as refused:
            await line.master.send_order("R01", order)
        assert refused.value.reason is Refusal.NOT_AT_START
        # a correct order afterwards is taken
        await line.master.send_order(
            "R01", trip(reference_line, "R01", "ok", R01_TRIP, "G01", "T1")
        )
        await line.until_finished({"ok"})
        # the trip passes P2, where R02 stands: only that collision may still be reported
        errors = line.master.snapshot()["R01"].errors
        assert [e for e in errors if not e.startswith("collision (WARNING)")] == []


async def test_cancel_order_stops_and_fails_remaining_actions(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        order = trip(reference_line, "R01", "to-cancel", R01_TRIP, "G01", "T1")
        await line.master.send_order("R01", order)
        cancel_id = None
        events = []
        while True:
            event = await line.next_event()
            events.append(event)
            if isinstance(event, RobotActionFinished) and event.action_type == "pick":
                cancel_id = await line.master.cancel_order("R01")
            if isinstance(event, RobotOrderFinished):
                break
        assert cancel_id is not None
        drop = [e for e in events if isinstance(e, RobotActionFailed)]
        assert [e.action_type for e in drop] == ["drop"]
        assert drop[0].reason == "order cancelled"
        snap = line.master.snapshot()["R01"]
        # the robot stops at the first node it reaches after the cancel: somewhere after the
        # pick and before the drop node, however fast the clock runs
        assert snap.last_node_id in set(R01_TRIP[2:-1]) and not snap.driving
        assert line.drops == []


async def test_injected_action_failure_is_reported(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01"})
        line.sim.fail_next_action("R01")
        await line.master.send_order(
            "R01", trip(reference_line, "R01", "o1", R01_TRIP, "G01", "T1")
        )
        events = await line.until_finished({"o1"})
        failed = [e for e in events if isinstance(e, RobotActionFailed)]
        assert [(e.action_type, e.reason) for e in failed] == [
            ("pick", "injected failure"),
            ("drop", "load 'T1' is not on the vehicle"),
        ]


async def test_invalid_order_is_rejected_with_validation_error(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    address = broker_address(mqtt_url)
    prefix = f"{interface_name}/v2/linectl-sim/R02"
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R02"})
        async with aiomqtt.Client(address.host, address.port) as client:
            await client.subscribe(f"{prefix}/state", qos=1)
            await client.publish(f"{prefix}/order", json.dumps({"orderId": 1}), qos=1)
            async with asyncio.timeout(WAIT):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    state = json.loads(message.payload)
                    if state["errors"]:
                        break
        assert [e["errorType"] for e in state["errors"]] == ["validationError"]
        assert state["orderId"] == ""
        assert line.master.snapshot()["R02"].available


async def test_instant_action_without_order_fails_with_warning(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R02"})
        await line.master.send_instant_actions(
            "R02",
            [
                RobotAction("c1", "cancelOrder", "NONE"),
                RobotAction("f1", "factsheetRequest", "NONE"),
            ],
        )
        outcomes: dict[str, str] = {}
        while len(outcomes) < 2:
            event = await line.next_event()
            if isinstance(event, RobotActionFinished | RobotActionFailed):
                outcomes[event.action_id] = type(event).__name__
        # the robot reports c1 FAILED with noOrderToCancel; master control reads that as done:
        # no order runs, which is what a cancel asks for
        assert outcomes == {"c1": "RobotActionFinished", "f1": "RobotActionFinished"}
        errors = line.master.snapshot()["R02"].errors
        assert any(e.startswith("noOrderToCancel (WARNING)") for e in errors)

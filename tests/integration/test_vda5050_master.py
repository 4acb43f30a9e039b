"""Master control semantics against the robot simulator and against a scripted robot, over the
real broker: order updates (spec 6.6.2), factsheets (spec 6.15) and factsheetRequest.

The scripted robot is a bare MQTT client that publishes exactly what a test needs (no factsheet,
a state that never shows an update), so master control's reaction can be observed on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt
import pytest

from controller.robots.cancels import RobotCancels
from devices.base import (
    DeviceEvent,
    RobotAction,
    RobotActionFailed,
    RobotActionFinished,
    RobotAvailability,
    RobotOrder,
    RobotOrderFinished,
    RouteEdge,
    RouteNode,
)
from devices.errors import CommandRejected, OrderRefused, Refusal
from devices.vda5050.link import broker_address
from devices.vda5050.master.control import VdaMasterControl
from devices.vda5050.messages import (
    ActionState,
    ErrorEntry,
    MessageBuilder,
    NodeState,
    Pose,
    StateBody,
)
from devices.vda5050.topics import topic
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics
from tests.integration.test_vda5050_fleet import WAIT, running_line

pytestmark = pytest.mark.integration
TIME_SCALE = 80.0


def _nodes(
    config: LineConfig, path: list[str], actions: dict[str, RobotAction]
) -> tuple[RouteNode, ...]:
    out = []
    for node_id in path:
        n = config.node(node_id)
        acts = (actions[node_id],) if node_id in actions else ()
        out.append(RouteNode(node_id, n.x, n.y, config.node_map_id(n), acts))
    return tuple(out)


def _edges(config: LineConfig, path: list[str]) -> tuple[RouteEdge, ...]:
    out = []
    for a, b in itertools.pairwise(path):
        na, nb = config.node(a), config.node(b)
        out.append(RouteEdge(a, b, ((nb.x - na.x) ** 2 + (nb.y - na.y) ** 2) ** 0.5))
    return tuple(out)


def _action(config: LineConfig, action_id: str, kind: str, tote: str) -> RobotAction:
    template = config.robots.models["picker-s"].pick if kind == "pick" else None
    template = template or config.robots.models["picker-s"].drop
    params = (*template.parameters.items(), ("loadId", tote))
    return RobotAction(action_id, kind, template.blocking_type, params)


@pytest.mark.parametrize("serial", ["R01", "R02"])  # VDA 5050 2.0 and 2.1
async def test_6_6_2_order_update_extends_a_trip_on_the_simulator(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, serial: str
) -> None:
    home = {"R01": "P1", "R02": "P2"}[serial]
    first_path = [home, "G00", "G01", "G00", home]
    pick = _action(reference_line, "u-pick", "pick", "TOTE-U")
    drop = _action(reference_line, "u-drop", "drop", "TOTE-U")
    first = RobotOrder(
        "trip-u",
        _nodes(reference_line, first_path, {"G01": pick}),
        _edges(reference_line, first_path),
    )
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({serial})
        await line.master.send_order(serial, first)
        # the pick is done, so the state has shown the order: the update may follow, while the
        # robot drives back or after it stopped at the end of the first base
        while not isinstance(event := await line.next_event(), RobotActionFinished):
            pass
        assert event.action_id == "u-pick"
        with pytest.raises(CommandRejected, match="edge from"):
            await line.master.send_order_update(
                serial, "trip-u", _nodes(reference_line, ["IND1"], {}), ()
            )
        extension = [home, "P2", "IND1"] if home == "P1" else [home, "IND1"]
        update_id = await line.master.send_order_update(
            serial,
            "trip-u",
            _nodes(reference_line, extension[1:], {"IND1": drop}),
            _edges(reference_line, extension),
        )
        assert update_id == 1
        seen: list[DeviceEvent] = []
        while not (seen and isinstance(seen[-1], RobotOrderFinished) and "u-drop" in str(seen)):
            seen.append(await line.next_event())
        assert line.drops == [(serial, "IND1", "TOTE-U")]
        assert line.master.snapshot()[serial].last_node_id == "IND1"
        assert line.sim.robots[serial].order_update_id == 1


async def test_6_10_6_battery_and_charging_reach_the_snapshot(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name) as line:
        await line.until_available({"R01", "R02"})
        for serial in ("R01", "R02"):
            snapshot = line.master.snapshot()[serial]
            assert snapshot.charging is False and snapshot.battery is not None
            assert 0 < snapshot.battery <= 100


def _body(message: dict[str, Any]) -> dict[str, Any]:
    """A message without its header's headerId and timestamp."""
    return {k: v for k, v in message.items() if k not in ("headerId", "timestamp")}


class ScriptedRobot:
    """R02 (VDA 5050 2.1) as a bare MQTT client: says what the test tells it to say."""

    def __init__(self, config: LineConfig, client: aiomqtt.Client, interface_name: str) -> None:
        self.client = client
        self.manufacturer = config.robots.models["picker-s"].manufacturer
        self.builder = MessageBuilder("2.1.0", self.manufacturer, "R02", ScaledClock())
        self.interface_name = interface_name

    def topic(self, subtopic: str) -> str:
        return topic(self.interface_name, self.manufacturer, "R02", subtopic)

    async def say(self, subtopic: str, message: dict[str, Any]) -> None:
        await self.client.publish(self.topic(subtopic), json.dumps(message), qos=1)

    async def state(self, **body: Any) -> None:
        pose = Pose(4.0, -2.0, 0.0, "floor-1")  # on P2, where it says it stands
        await self.say("state", self.builder.state(StateBody(pose=pose, **body)))

    async def next(self, subtopic: str) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            async for message in self.client.messages:
                if message.topic.value == self.topic(subtopic):
                    assert isinstance(message.payload, bytes)
                    doc: dict[str, Any] = json.loads(message.payload)
                    return doc
        raise AssertionError("unreachable")

    async def until_available(self, events: asyncio.Queue[DeviceEvent]) -> RobotAvailability:
        """Publish states until master control reports R02's availability changed."""
        async with asyncio.timeout(WAIT):
            while True:
                await self.state(last_node_id="P2")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        event = await events.get()
                        assert isinstance(event, RobotAvailability)
                        return event


@contextlib.asynccontextmanager
async def scripted(
    config: LineConfig, mqtt_url: str, interface_name: str
) -> AsyncIterator[tuple[ScriptedRobot, VdaMasterControl, asyncio.Queue[DeviceEvent]]]:
    """R02 scripted and ONLINE (retained, so master control sees it whenever it subscribes),
    master control running; the robot's factsheet is whatever the test publishes."""
    address = broker_address(mqtt_url)
    master = VdaMasterControl(config, ScaledClock(TIME_SCALE), Metrics(), mqtt_url, interface_name)
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with aiomqtt.Client(address.host, address.port) as client:
        robot = ScriptedRobot(config, client, interface_name)
        await client.subscribe(robot.topic("order"), qos=1)
        await client.subscribe(robot.topic("instantActions"), qos=1)
        online = json.dumps(robot.builder.connection("ONLINE"))
        await client.publish(robot.topic("connection"), online, qos=1, retain=True)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(master.run(events), name="test.master")
            try:
                yield robot, master, events
            finally:
                task.cancel()


async def test_6_15_factsheet_request_to_a_2_1_robot_without_factsheet(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with scripted(reference_line, mqtt_url, interface_name) as (robot, _master, events):
        assert (await robot.until_available(events)).available
        request = await robot.next("instantActions")
        if [a["actionType"] for a in request["actions"]] == ["stateRequest"]:
            request = await robot.next("instantActions")  # asked before it published a state
        assert [a["actionType"] for a in request["actions"]] == ["factsheetRequest"]


async def test_state_request_to_a_robot_online_without_a_state(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    """A master control that starts asks an ONLINE robot for its state at once (a take-over
    needs its order, actions and loads), and once: the state it then gets stops the asking."""
    async with scripted(reference_line, mqtt_url, interface_name) as (robot, _master, events):
        request = await robot.next("instantActions")
        assert [a["actionType"] for a in request["actions"]] == ["stateRequest"]
        assert (await robot.until_available(events)).available
        later = await robot.next("instantActions")  # the 2.1 robot's factsheet request
        assert [a["actionType"] for a in later["actions"]] == ["factsheetRequest"]


async def test_6_15_factsheet_without_drop_takes_the_robot_out_of_use(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    model = reference_line.robots.models["picker-s"]
    async with scripted(reference_line, mqtt_url, interface_name) as (robot, master, events):
        assert (await robot.until_available(events)).available
        factsheet = robot.builder.factsheet(model, "picker-s")
        complete = factsheet["protocolFeatures"]["agvActions"]
        factsheet["protocolFeatures"]["agvActions"] = [
            a for a in complete if a["actionType"] != "drop"
        ]
        await robot.say("factsheet", factsheet)
        async with asyncio.timeout(WAIT):
            event = await events.get()
        assert isinstance(event, RobotAvailability) and not event.available
        assert event.reason == "factsheet: factsheet lists no 'drop' action"
        assert master.snapshot()["R02"].factsheet_problems == ("factsheet lists no 'drop' action",)
        factsheet["protocolFeatures"]["agvActions"] = complete
        await robot.say("factsheet", factsheet)
        async with asyncio.timeout(WAIT):
            event = await events.get()
        assert isinstance(event, RobotAvailability) and event.available
        assert master.snapshot()["R02"].factsheet_problems == ()


async def test_6_6_2_resend_follows_the_newest_order_update_id(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    async with scripted(reference_line, mqtt_url, interface_name) as (robot, master, events):
        path = ["P2", "G10"]
        pick = _action(reference_line, "r-pick", "pick", "TOTE-R")
        order = RobotOrder(
            "o-r", _nodes(reference_line, path, {"P2": pick}), _edges(reference_line, path)
        )
        assert (await robot.until_available(events)).available
        await master.send_order("R02", order)
        sent = await robot.next("order")
        assert (sent["orderId"], sent["orderUpdateId"]) == ("o-r", 0)
        again = await robot.next("order")  # not confirmed: resent as a new message ...
        assert _body(again) == _body(sent)  # ... of the same order
        assert again["headerId"] == sent["headerId"] + 1  # spec 6.4: per message
        update_path = ["G10", "G11"]
        new_nodes = _nodes(reference_line, update_path[1:], {})
        with pytest.raises(CommandRejected, match="not yet confirmed"):
            await master.send_order_update("R02", "o-r", new_nodes, _edges(reference_line, path))
        await robot.state(
            order_id="o-r",
            last_node_id="P2",
            node_states=[NodeState("G10", 2)],
            action_states=[ActionState("r-pick", "pick", "FINISHED")],
            driving=True,
        )
        async with asyncio.timeout(WAIT):  # the state that confirms the order finished the pick
            assert isinstance(await events.get(), RobotActionFinished)
        await master.send_order_update("R02", "o-r", new_nodes, _edges(reference_line, update_path))
        update = await robot.next("order")
        while update["orderUpdateId"] == 0:  # a resend of the first order already in flight
            update = await robot.next("order")
        assert update["orderUpdateId"] == 1
        assert [n["nodeId"] for n in update["nodes"]] == ["G10", "G11"]
        assert update["nodes"][0] == sent["nodes"][-1]
        resent = await robot.next("order")
        assert _body(resent) == _body(update)  # the newest update is what is resent
        assert resent["headerId"] > update["headerId"]


def _no_route(message: dict[str, Any]) -> ErrorEntry:
    """The warning a vehicle standing off an order's first node answers it with (spec 6.6.4,
    references as spec 7.1 suggests)."""
    refs = (
        ("topic", "order"),
        ("headerId", str(message["headerId"])),
        ("orderId", message["orderId"]),
        ("orderUpdateId", str(message["orderUpdateId"])),
    )
    return ErrorEntry("noRouteError", "WARNING", "first node not within deviation range", refs)


async def test_a_robot_rejecting_every_order_gets_a_bounded_number_then_needs_an_operator(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    """A caller that sends a new order as soon as the last one ended (as the dispatcher does
    for a tote return) gets max_rejections orders through, spaced by the backoff, then none."""
    area = reference_line.robots
    order = RobotOrder("o-0", _nodes(reference_line, ["P2"], {}), ())
    async with scripted(reference_line, mqtt_url, interface_name) as (robot, master, events):
        assert (await robot.until_available(events)).available
        received: list[dict[str, Any]] = []
        refusals: list[Refusal] = []
        async with asyncio.timeout(WAIT):
            while master.snapshot()["R02"].attention is None:
                order = dataclasses.replace(order, order_id=f"o-{len(received)}")
                try:
                    await master.send_order("R02", order)
                except OrderRefused as exc:
                    refusals.append(exc.reason)
                    # the robot keeps reporting; poll again on its next state
                    await robot.state(last_node_id="P2", errors=[_no_route(received[-1])])
                    continue
                message = await robot.next("order")
                while message["orderId"] != order.order_id:  # a resend of the last one
                    message = await robot.next("order")
                received.append(message)
                await robot.state(last_node_id="P2", errors=[_no_route(message)])
                # the rejection ends the order; only then does the caller send the next one
                while not (
                    isinstance(event := await events.get(), RobotOrderFinished)
                    and event.order_id == order.order_id
                ):
                    pass
        assert len(received) == area.max_rejections
        assert set(refusals) == {Refusal.BACKING_OFF}
        # each first node is where the robot stands, with the model's deviation
        position = received[0]["nodes"][0]["nodePosition"]
        model = area.models["picker-s"]
        assert position["allowedDeviationXY"] == model.allowed_deviation_xy
        assert position["allowedDeviationTheta"] == model.allowed_deviation_theta
        snapshot = master.snapshot()["R02"]
        assert not snapshot.available and "rejected 5 orders in a row" in str(snapshot.attention)
        with pytest.raises(OrderRefused) as refused:
            await master.send_order("R02", dataclasses.replace(order, order_id="o-late"))
        assert refused.value.reason is Refusal.NEEDS_OPERATOR
        assert master.resume_robot("R02")
        await robot.state(last_node_id="P2")
        assert master.snapshot()["R02"].attention is None


async def test_no_robot_gets_more_new_orders_per_minute_than_the_cap(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    line = reference_line.with_overrides(
        robots=reference_line.robots.model_copy(update={"max_orders_per_minute": 3})
    )
    async with scripted(line, mqtt_url, interface_name) as (robot, master, events):
        assert (await robot.until_available(events)).available
        for i in range(3):
            await master.send_order("R02", RobotOrder(f"c-{i}", _nodes(line, ["P2"], {}), ()))
            message = await robot.next("order")
            await robot.state(order_id=message["orderId"], last_node_id="P2")  # done at once
        with pytest.raises(OrderRefused) as refused:
            await master.send_order("R02", RobotOrder("c-3", _nodes(line, ["P2"], {}), ()))
        assert refused.value.reason is Refusal.RATE_LIMITED
        assert master.snapshot()["R02"].order_hold is not None


async def test_orders_start_where_the_robot_stands_and_go_out_at_qos_0_actions_at_1(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    """Spec 6.2: QoS 0 for order (resent until confirmed); instantActions stay at QoS 1, as
    they are not resent (the robot's subscription is QoS 1, so what it receives carries the
    publisher's QoS)."""
    async with scripted(reference_line, mqtt_url, interface_name) as (robot, master, events):
        assert (await robot.until_available(events)).available
        with pytest.raises(OrderRefused) as refused:  # R02 stands on P2
            await master.send_order(
                "R02", RobotOrder("q-0", _nodes(reference_line, ["P1"], {}), ())
            )
        assert refused.value.reason is Refusal.NOT_AT_START
        await master.send_order("R02", RobotOrder("q-1", _nodes(reference_line, ["P2"], {}), ()))
        await master.send_instant_actions("R02", [RobotAction("p-1", "startPause", "HARD")])
        qos: dict[str, int] = {}
        async with asyncio.timeout(WAIT):
            async for message in robot.client.messages:
                for subtopic in ("order", "instantActions"):
                    if message.topic.value == robot.topic(subtopic):
                        qos[subtopic] = message.qos
                if len(qos) == 2:
                    break
        assert qos == {"order": 0, "instantActions": 1}


async def test_a_cancel_the_robot_refuses_is_retried_then_given_up(
    reference_line: LineConfig, mqtt_url: str, interface_name: str
) -> None:
    """The robot answers each cancelOrder with a validationError naming the message's headerId
    and no action state: master control reports each as failed, the controller's cancels send
    it again up to robots.cancel_attempts, then give up; the robot then needs an operator."""
    attempts = reference_line.robots.cancel_attempts
    clock = ScaledClock(TIME_SCALE)
    gave_up: list[tuple[str, str]] = []

    async def on_gave_up(serial: str, why: str) -> None:
        gave_up.append((serial, why))

    async with scripted(reference_line, mqtt_url, interface_name) as (robot, master, events):
        cancels = RobotCancels(master, clock, attempts, on_gave_up)
        assert (await robot.until_available(events)).available
        # the robot runs an order (one it took before): a cancel has something to stop, so only
        # its answer tells master control how the cancel went
        running = {"order_id": "o-run", "node_states": (NodeState("P3", 2),)}
        async with asyncio.timeout(WAIT):
            while master.snapshot()["R02"].order_id != "o-run":
                await robot.state(last_node_id="P2", **running)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await events.get()
        await cancels.send("R02")
        refused: list[int] = []
        errors: list[ErrorEntry] = []
        async with asyncio.timeout(WAIT):
            while not gave_up:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        message = await robot.next("instantActions")
                        kinds = [a["actionType"] for a in message["actions"]]
                        if kinds == ["cancelOrder"]:  # (a factsheetRequest goes unanswered)
                            refused.append(message["headerId"])
                            header = str(message["headerId"])
                            refs = (("topic", "instantActions"), ("headerId", header))
                            errors = [ErrorEntry("validationError", "WARNING", "invalid", refs)]
                await robot.state(last_node_id="P2", errors=errors, **running)
                while not events.empty():
                    event = events.get_nowait()
                    if isinstance(event, RobotActionFailed):
                        await cancels.failed(event)
                await cancels.retry_due()
        assert len(refused) == attempts
        assert gave_up[0][0] == "R02" and f"failed {attempts} times" in gave_up[0][1]
        assert "validationError: invalid" in gave_up[0][1]
        assert "could not be stopped" in str(master.snapshot()["R02"].attention)
        assert not cancels.waiting("R02")

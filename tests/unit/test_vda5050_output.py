"""Orders and order updates leave master control posted: validated and queued at once, then
published together by the session's send task through the broker client they were checked with.

The broker client is a recording fake; the trackers, builders and schema checks are the real
ones, on the reference line.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomqtt
import pytest

from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.errors import CommandRejected, DeviceUnavailable
from devices.vda5050 import schema
from devices.vda5050.master.commands import RobotCommands
from devices.vda5050.master.output import MasterOutput
from devices.vda5050.master.pending import PendingOrders
from devices.vda5050.master.state import MasterState
from devices.vda5050.messages import MessageBuilder, Pose, StateBody
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics


class RecordingClient:
    """A broker client that records what is published; ``expect`` messages set ``got``."""

    def __init__(self, expect: int = 0, fail: bool = False) -> None:
        self.published: list[tuple[str, dict[str, Any], int]] = []
        self.expect = expect
        self.fail = fail
        self.got = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        if self.fail:
            raise aiomqtt.MqttError("the connection broke")
        self.published.append((topic, json.loads(payload), qos))
        if len(self.published) >= self.expect:
            self.got.set()


class Master:
    """Master control's parts around one robot standing at home, ONLINE, with a state."""

    def __init__(self, line: LineConfig, client: RecordingClient) -> None:
        self.line = line
        self.state = MasterState.for_fleet(line, ManualClock(), Metrics(), "uagv")
        self.state.client = client  # type: ignore[assignment]
        self.output = MasterOutput(self.state)
        self.commands = RobotCommands(self.state, self.output, PendingOrders(self.state))
        self.serials = [r.serial for r in line.robots.fleet]
        for serial in self.serials:
            self.at_home(serial)

    def at_home(self, serial: str) -> None:
        tracker = self.state.trackers[serial]
        model = self.line.robots.models[tracker.robot.model]
        robot = MessageBuilder(tracker.version, model.manufacturer, serial, ManualClock())
        home = self.line.node(tracker.robot.home)
        tracker.link_up = True
        tracker.on_connection(robot.connection("ONLINE"))
        pose = Pose(home.x, home.y, 0.0, self.line.node_map_id(home))
        tracker.on_state(robot.state(StateBody(pose=pose, last_node_id=home.id)))

    def trip(self, serial: str, blocking: str = "HARD") -> RobotOrder:
        """An order from the robot's home to the node after it, with a pick there;
        ``blocking``: its blocking type, as the controller made it (valid or not)."""
        home = self.state.trackers[serial].robot.home
        to = next(e.end for e in self.line.robots.edges if e.start == home)
        nodes = []
        for i, node_id in enumerate((home, to)):
            n = self.line.node(node_id)
            pick = RobotAction(f"{serial}-pick", "pick", blocking, ())  # type: ignore[arg-type]
            actions = (pick,) if i else ()
            nodes.append(RouteNode(node_id, n.x, n.y, self.line.node_map_id(n), actions))
        edges = (RouteEdge(home, to, 1.0, released=True),)
        return RobotOrder(f"{serial}-t1", tuple(nodes), edges)


async def sending(output: MasterOutput, client: RecordingClient) -> None:
    """Run the send task until ``client`` got what it expects."""
    task = asyncio.create_task(output.send(client))  # type: ignore[arg-type]
    try:
        await client.got.wait()
    finally:
        task.cancel()


async def test_orders_of_several_robots_go_out_together_in_the_order_sent(
    reference_line: LineConfig,
) -> None:
    client = RecordingClient(expect=3)
    master = Master(reference_line, client)
    serials = master.serials[:3]
    for serial in serials:
        await master.commands.send_order(serial, master.trip(serial))
    assert client.published == []  # posted: nothing awaited the broker client
    await sending(master.output, client)
    assert [m["orderId"] for _, m, _ in client.published] == [f"{s}-t1" for s in serials]
    for serial, (topic, message, qos) in zip(serials, client.published, strict=True):
        assert topic.endswith(f"/{serial}/order") and qos == 0
        assert schema.validate(master.state.trackers[serial].version, "order", message) == []


async def test_an_order_that_does_not_validate_is_refused_and_never_sent(
    reference_line: LineConfig,
) -> None:
    client = RecordingClient(expect=1)
    master = Master(reference_line, client)
    bad, good = master.serials[:2]
    tracker = master.state.trackers[bad]
    with pytest.raises(CommandRejected, match="does not validate"):
        await master.commands.send_order(bad, master.trip(bad, blocking="SOMETIMES"))
    assert not tracker.pending_update(f"{bad}-t1")  # not followed: nothing to resend
    await master.commands.send_order(good, master.trip(good))
    await sending(master.output, client)
    assert [m["orderId"] for _, m, _ in client.published] == [f"{good}-t1"]


async def test_orders_checked_with_an_earlier_connection_are_not_sent_on_the_next(
    reference_line: LineConfig,
) -> None:
    old, new = RecordingClient(), RecordingClient(expect=1)
    master = Master(reference_line, old)
    first, second = master.serials[:2]
    await master.commands.send_order(first, master.trip(first))
    master.state.client = new  # type: ignore[assignment]
    await master.commands.send_order(second, master.trip(second))
    await sending(master.output, new)
    assert [m["orderId"] for _, m, _ in new.published] == [f"{second}-t1"]
    assert old.published == []


async def test_a_broker_error_ends_the_send_task(reference_line: LineConfig) -> None:
    client = RecordingClient(fail=True)
    master = Master(reference_line, client)
    serial = master.serials[0]
    await master.commands.send_order(serial, master.trip(serial))
    with pytest.raises(aiomqtt.MqttError):
        await master.output.send(client)  # type: ignore[arg-type]


async def test_without_a_broker_an_order_is_refused_at_once(reference_line: LineConfig) -> None:
    master = Master(reference_line, RecordingClient())
    master.state.client = None
    serial = master.serials[0]
    with pytest.raises(DeviceUnavailable, match="not connected"):
        await master.commands.send_order(serial, master.trip(serial))
    assert not master.state.trackers[serial].pending_update(f"{serial}-t1")


def test_instant_actions_are_published_and_awaited_not_posted(
    reference_line: LineConfig,
) -> None:
    master = Master(reference_line, RecordingClient())
    serial = master.serials[0]
    message = master.state.builders[serial].instant_actions([])
    with pytest.raises(ValueError, match="not posted"):
        master.output.post(serial, "instantActions", message)


async def test_a_cancel_does_not_overtake_the_order_posted_before_it(
    reference_line: LineConfig,
) -> None:
    """6.6.3: the robot keeps a cancelled order's ids, so an update arriving after the cancel
    would start the order again: what was posted goes to the client first."""
    client = RecordingClient(expect=2)
    master = Master(reference_line, client)
    serial = master.serials[0]
    await master.commands.send_order(serial, master.trip(serial))
    cancel = asyncio.create_task(master.commands.cancel_order(serial))
    await sending(master.output, client)
    await cancel
    assert [topic.rsplit("/", 1)[1] for topic, _, _ in client.published] == [
        "order",
        "instantActions",
    ]


async def test_an_instant_action_waiting_for_the_queue_is_not_left_waiting_by_a_lost_session(
    reference_line: LineConfig,
) -> None:
    """A cancel waits for the order posted before it; the session ends before that order went
    out: the cancel fails as for a broker that cannot be reached, rather than waiting for the
    next session."""
    client = RecordingClient(fail=True)
    master = Master(reference_line, client)
    serial = master.serials[0]
    await master.commands.send_order(serial, master.trip(serial))
    message = master.state.builders[serial].instant_actions([])
    cancel = asyncio.create_task(master.output.publish(serial, "instantActions", message))
    await asyncio.sleep(0)  # the cancel waits for the queue
    with pytest.raises(aiomqtt.MqttError):
        await master.output.send(client)  # type: ignore[arg-type]
    with pytest.raises(DeviceUnavailable, match="failed"):
        await asyncio.wait_for(cancel, timeout=5.0)

"""The light-weight swarm of VDA 5050 vehicles (simulators.robots.swarm), without a broker: every
message it sends validates against the vendored schema of the vehicle's version, orders and
updates are driven node by node in line time with their actions, and collisions and stuck
vehicles are seen.

Reference line: P2 (4, -2) -> G10 (4, 0) -> G11 (4, 3) -> G12 (4, 6); picker-s drives 1.5 m/s,
picks in 3 s and drops in 2 s. R01 (2.0.0) stands on P1, R02 (2.1.0) on P2.
"""

from __future__ import annotations

from typing import Any

import orjson

from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.vda5050 import schema
from devices.vda5050.messages import MessageBuilder, node_dict
from devices.vda5050.topics import split, topic
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from simulators.robots.swarm import Swarm

JsonDict = dict[str, Any]
IFACE = "swarmtest"
PICK = (("stationType", "shelf"), ("loadType", "tote"), ("lhd", "lhd1"), ("loadId", "T1"))
DROP = (("stationType", "conveyor"), ("loadType", "tote"), ("lhd", "lhd1"), ("loadId", "T1"))


class Sent:
    """What the swarm published, each message checked against its version's schema."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, JsonDict, int, bool]] = []

    def __call__(self, full_topic: str, message: JsonDict, qos: int, retain: bool) -> None:
        parts = split(full_topic)
        assert parts is not None
        assert schema.validate(message["version"], parts.subtopic, message) == [], message
        self.messages.append((full_topic, message, qos, retain))

    def of(self, serial: str, subtopic: str) -> list[JsonDict]:
        return [m for t, m, _, _ in self.messages if t.endswith(f"/{serial}/{subtopic}")]

    def last_state(self, serial: str) -> JsonDict:
        return self.of(serial, "state")[-1]


def _node(cfg: LineConfig, node_id: str, *actions: RobotAction, released: bool = True) -> RouteNode:
    n = cfg.node(node_id)
    return RouteNode(node_id, n.x, n.y, "floor-1", tuple(actions), released)


def _edge(start: str, end: str, length: float, released: bool = True) -> RouteEdge:
    return RouteEdge(start, end, length, None, released)


def _swarm(cfg: LineConfig, clock: ManualClock, **kw: Any) -> tuple[Swarm, Sent]:
    sent = Sent()
    swarm = Swarm(cfg, cfg.robots.fleet[:2], clock, IFACE, sent, **kw)
    swarm.hello()
    swarm.step()
    return swarm, sent


def _deliver(swarm: Swarm, serial: str, subtopic: str, message: JsonDict) -> None:
    manufacturer = swarm.vehicles[serial].builder.manufacturer
    swarm.receive(topic(IFACE, manufacturer, serial, subtopic), orjson.dumps(message))


async def _run(swarm: Swarm, clock: ManualClock, seconds: float, step: float = 0.25) -> None:
    for _ in range(round(seconds / step)):
        await clock.advance(step)
        swarm.step()


def _map_id(cfg: LineConfig) -> str:
    return cfg.node_map_id(cfg.node("P2"))


async def test_online_factsheet_and_states_are_valid_and_periodic(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    swarm, sent = _swarm(reference_line, manual_clock, state_interval=1.0)
    for serial, version in (("R01", "2.0.0"), ("R02", "2.1.0")):
        (online,) = sent.of(serial, "connection")
        assert online["connectionState"] == "ONLINE" and online["version"] == version
        assert len(sent.of(serial, "factsheet")) == 1
        assert (
            sent.last_state(serial)["lastNodeId"]
            == reference_line.robots.fleet[int(serial[-1]) - 1].home
        )
    before = len(sent.of("R02", "state"))
    await _run(swarm, manual_clock, 5.0)
    assert 4 <= len(sent.of("R02", "state")) - before <= 6  # once a line second, standing
    swarm.goodbye()
    assert sent.of("R01", "connection")[-1]["connectionState"] == "OFFLINE"


async def test_an_order_and_its_update_are_driven_with_their_actions(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    cfg = reference_line
    drops: list[tuple[str, str, str | None]] = []
    swarm, sent = _swarm(cfg, manual_clock, on_drop=lambda *a: drops.append(a))
    master = MessageBuilder(
        "2.1.0", swarm.vehicles["R02"].builder.manufacturer, "R02", manual_clock
    )
    order = RobotOrder(
        "O1",
        (
            _node(cfg, "P2"),
            _node(cfg, "G10"),
            _node(cfg, "G11", RobotAction("a-pick", "pick", "HARD", PICK)),
            _node(cfg, "G12", RobotAction("a-drop", "drop", "HARD", DROP), released=False),
        ),
        (_edge("P2", "G10", 2.0), _edge("G10", "G11", 3.0), _edge("G11", "G12", 3.0, False)),
    )
    first = master.order(order)
    _deliver(swarm, "R02", "order", first)
    swarm.step()
    state = sent.last_state("R02")
    assert state["orderId"] == "O1" and state["lastNodeId"] == "P2" and state["driving"]
    assert [n["nodeId"] for n in state["nodeStates"]] == ["G10", "G11", "G12"]
    assert [n["released"] for n in state["nodeStates"]] == [True, True, False]
    await _run(swarm, manual_clock, 2.0 / 1.5 + 0.25)
    assert sent.last_state("R02")["lastNodeId"] == "G10"
    await _run(swarm, manual_clock, 2.0 + 0.5)  # G11 reached, the pick runs 3 s
    state = sent.last_state("R02")
    assert state["lastNodeId"] == "G11" and not state["driving"]
    assert {a["actionId"]: a["actionStatus"] for a in state["actionStates"]} == {
        "a-pick": "RUNNING",
        "a-drop": "WAITING",
    }
    await _run(swarm, manual_clock, 3.0)
    state = sent.last_state("R02")
    assert state["loads"] == [{"loadId": "T1", "loadType": "tote", "loadPosition": "lhd1"}]
    assert state["actionStates"][0]["actionStatus"] == "FINISHED"
    assert [n["nodeId"] for n in state["nodeStates"]] == ["G12"]  # the horizon waits
    # the update releases G12 (spec 6.6.2: stitched at G11, sequenceIds continue)
    stitch = node_dict(order.nodes[2], 4)
    update = master.order_update(
        "O1",
        1,
        stitch,
        [_node(cfg, "G12", RobotAction("a-drop", "drop", "HARD", DROP))],
        [_edge("G11", "G12", 3.0)],
    )
    _deliver(swarm, "R02", "order", update)
    await _run(swarm, manual_clock, 2.0 + 2.0 + 0.5)
    state = sent.last_state("R02")
    assert state["lastNodeId"] == "G12" and state["lastNodeSequenceId"] == 6
    assert state["nodeStates"] == [] and state["loads"] == []
    assert all(a["actionStatus"] == "FINISHED" for a in state["actionStates"])
    assert drops == [("R02", "G12", "T1")]
    assert swarm.collisions == [] and swarm.stuck(after=1.0) == []


async def test_a_rejected_order_a_cancel_and_a_wrong_message(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    cfg = reference_line
    swarm, sent = _swarm(cfg, manual_clock)
    master = MessageBuilder(
        "2.1.0", swarm.vehicles["R02"].builder.manufacturer, "R02", manual_clock
    )
    away = RobotOrder("O9", (_node(cfg, "G11"), _node(cfg, "G12")), (_edge("G11", "G12", 3.0),))
    _deliver(swarm, "R02", "order", master.order(away))  # it does not stand on G11
    swarm.step()
    assert sent.last_state("R02")["orderId"] == ""
    assert [e["errorType"] for e in sent.last_state("R02")["errors"]] == ["noRouteError"]
    _deliver(swarm, "R02", "order", {"orderId": 3})
    swarm.step()
    assert "validationError" in {e["errorType"] for e in sent.last_state("R02")["errors"]}
    trip = RobotOrder(
        "O2",
        (_node(cfg, "P2"), _node(cfg, "G10"), _node(cfg, "G11", released=False)),
        (_edge("P2", "G10", 2.0), _edge("G10", "G11", 3.0, False)),
    )
    _deliver(swarm, "R02", "order", master.order(trip))
    cancel = master.instant_actions([RobotAction("c1", "cancelOrder", "HARD")])
    _deliver(swarm, "R02", "instantActions", cancel)
    swarm.step()
    assert {a["actionId"]: a["actionStatus"] for a in sent.last_state("R02")["actionStates"]}[
        "c1"
    ] == "RUNNING"  # it stops at the next node
    await _run(swarm, manual_clock, 2.0)
    state = sent.last_state("R02")
    assert state["lastNodeId"] == "G10" and state["nodeStates"] == []
    assert state["actionStates"] == [
        {"actionId": "c1", "actionType": "cancelOrder", "actionStatus": "FINISHED"}
    ]


async def test_collisions_and_stuck_vehicles_are_seen(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    cfg = reference_line
    swarm, _sent = _swarm(cfg, manual_clock)
    master = MessageBuilder(
        "2.0.0", swarm.vehicles["R01"].builder.manufacturer, "R01", manual_clock
    )
    # R01 drives from P1 onto P2, where R02 stands; then waits for a horizon never released
    order = RobotOrder(
        "O3",
        (_node(cfg, "P1"), _node(cfg, "P2"), _node(cfg, "G10", released=False)),
        (_edge("P1", "P2", 4.0), _edge("P2", "G10", 2.0, False)),
    )
    _deliver(swarm, "R01", "order", master.order(order))
    await _run(swarm, manual_clock, 4.0 / 1.5 + 0.25)
    (collision,) = swarm.collisions
    assert collision.serials == ("R01", "R02") and collision.place.describe() == "node P2"
    assert swarm.stuck(after=30.0) == []
    await _run(swarm, manual_clock, 30.0, step=1.0)
    assert swarm.stuck(after=30.0) == ["R01"]
    assert swarm.longest_standstill() >= 30.0

"""Every message the builders produce validates against its version's official schema."""

from __future__ import annotations

import json

import pytest

from devices.base import RobotAction, RobotOrder, RouteEdge, RouteNode
from devices.vda5050 import schema
from devices.vda5050.messages import (
    ActionState,
    EdgeState,
    ErrorEntry,
    Load,
    MessageBuilder,
    NodeState,
    Pose,
    StateBody,
    iso_timestamp,
)
from kernel.clock import ManualClock
from kernel.config.model import LineConfig

VERSIONS = ["2.0.0", "2.1.0"]


def _order() -> RobotOrder:
    pick = RobotAction(
        "a-pick",
        "pick",
        "HARD",
        (("stationType", "shelf"), ("loadType", "tote"), ("loadId", "T1"), ("height", 0.4)),
    )
    drop = RobotAction("a-drop", "drop", "SOFT", (("loadId", "T1"), ("flag", True)))
    return RobotOrder(
        "o-1",
        (
            RouteNode("P1", 0.0, -2.0, "floor-1"),
            RouteNode("G00", 0.0, 0.0, "floor-1", (pick,)),
            RouteNode("IND1", 6.0, -5.0, "floor-1", (drop,)),
        ),
        (RouteEdge("P1", "G00", 2.0), RouteEdge("G00", "IND1", 7.8, max_speed=1.0)),
    )


def _builder(version: str) -> MessageBuilder:
    return MessageBuilder(version, "linectl-sim", "R01", ManualClock())


@pytest.mark.parametrize("version", VERSIONS)
def test_order_validates_and_numbers_sequence_ids(version: str) -> None:
    msg = _builder(version).order(_order())
    assert schema.validate(version, "order", msg) == []
    assert [n["sequenceId"] for n in msg["nodes"]] == [0, 2, 4]
    assert [e["sequenceId"] for e in msg["edges"]] == [1, 3]
    assert all(n["released"] for n in msg["nodes"])
    assert msg["nodes"][1]["actions"][0]["actionParameters"][2] == {"key": "loadId", "value": "T1"}
    assert msg["nodes"][2]["nodePosition"] == {"x": 6.0, "y": -5.0, "mapId": "floor-1"}
    assert msg["edges"][1]["maxSpeed"] == 1.0
    json.dumps(msg)


@pytest.mark.parametrize("version", VERSIONS)
def test_instant_actions_and_connection_validate(version: str) -> None:
    b = _builder(version)
    msg = b.instant_actions([RobotAction("c1", "cancelOrder", "NONE")])
    assert schema.validate(version, "instantActions", msg) == []
    for state in ("ONLINE", "OFFLINE", "CONNECTIONBROKEN"):
        assert schema.validate(version, "connection", b.connection(state)) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("version", VERSIONS)
def test_state_validates_idle_and_busy(version: str) -> None:
    b = _builder(version)
    assert schema.validate(version, "state", b.state(StateBody())) == []
    busy = StateBody(
        order_id="o-1",
        order_update_id=0,
        last_node_id="P1",
        last_node_sequence_id=0,
        node_states=[NodeState("G00", 2, True, 0.0, 0.0, "floor-1")],
        edge_states=[EdgeState("P1-G00-1", 1)],
        action_states=[
            ActionState("a-pick", "pick", "RUNNING"),
            ActionState("x", "drop", "FAILED", "no load"),
        ],
        driving=True,
        pose=Pose(0.0, -1.0, 1.57, "floor-1"),
        velocity=(0.0, 1.5, 0.0),
        loads=[Load("T1", "tote", "lhd1")],
        battery_charge=87.5,
        errors=[ErrorEntry("orderError", "WARNING", "bad", (("orderId", "o-1"),))],
        map_ids=("floor-1",),
    )
    assert schema.validate(version, "state", b.state(busy)) == []


@pytest.mark.parametrize("version", VERSIONS)
def test_visualization_and_factsheet_validate(version: str, reference_line: LineConfig) -> None:
    b = _builder(version)
    assert schema.validate(version, "visualization", b.visualization(None)) == []
    viz = b.visualization(Pose(1.0, 2.0, 0.0, "floor-1"), (0.1, 0.0, 0.0))
    assert schema.validate(version, "visualization", viz) == []
    model = reference_line.robots.models["picker-s"]
    assert schema.validate(version, "factsheet", b.factsheet(model, "picker-s")) == []


def test_header_ids_count_per_topic() -> None:
    b = _builder("2.1.0")
    assert [b.state(StateBody())["headerId"] for _ in range(3)] == [0, 1, 2]
    assert b.connection("ONLINE")["headerId"] == 0


def test_timestamp_is_iso_utc() -> None:
    assert iso_timestamp(ManualClock()) == "2026-01-01T00:00:00.000Z"

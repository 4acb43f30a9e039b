"""The strict vehicle profile: each rule a real vehicle enforces and the lenient profile does
not, checked on the pure functions (:func:`check_order`, :func:`check_instant_actions`) and on the
simulated robot R02 without a broker.

Reference line, R02's neighbourhood: P2 (4, -2) -> G10 (4, 0) -> G11 (4, 3) -> G12 (4, 6), and
G10 -> G20 (8, 0); picker-s drives 1.5 m/s.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from devices.base import RobotAction
from devices.vda5050 import schema
from devices.vda5050.messages import MessageBuilder
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from simulators.robots.acceptance import Verdict, check_order
from simulators.robots.action_rules import check_instant_actions
from simulators.robots.capabilities import capabilities
from simulators.robots.profile import LENIENT, StopOnCancel, VehicleProfile
from tests.unit.vda5050_spec_support import (
    LONG,
    SERIAL,
    VERSION,
    JsonDict,
    _link,
    _pick,
    _refs,
    _until,
    _valid,
    _view,
    running,
)


def _with_params(order: JsonDict, *params: tuple[str, object]) -> JsonDict:
    """``order`` with its first action's parameters replaced."""
    action = next(a for n in order["nodes"] for a in n["actions"])
    action["actionParameters"] = [{"key": k, "value": v} for k, v in params]
    return _valid("order", order)


# --- first node: where the vehicle stands (noRouteError) ---------------------------------------


def test_first_node_id_matching_is_not_enough_when_the_vehicle_stands_off_it(
    reference_line: LineConfig,
) -> None:
    """A vehicle 2.8 m past its last node (a cancel stopped it on the edge) cannot start an
    order at that node without a deviation range that holds it."""
    link = _link(reference_line)
    off = _view(reference_line, order_id="", last_node_id="G10", x=4.0, y=2.8)
    order = link.order("o2", ["G10", "G20"])
    kind, level, refs = _refs(check_order(order, off))
    assert (kind, level, refs) == (
        "noRouteError",
        "WARNING",
        {"orderId": "o2", "nodeId": "G10", "orderUpdateId": "0"},
    )
    assert check_order(order, dataclasses.replace(off, profile=LENIENT)).kind == "new"
    order["nodes"][0]["nodePosition"]["allowedDeviationXY"] = 3.0
    assert check_order(_valid("order", order), off).kind == "new"


def test_no_deviation_means_the_vendor_tolerance(reference_line: LineConfig) -> None:
    """6.6.6, allowedDeviationXY: "If = 0.0: no deviation is allowed (no deviation means within
    the normal tolerance of the AGV manufacturer)"; the tolerance is the profile's."""
    link = _link(reference_line)
    order = link.order("o2", ["G10", "G20"])
    order["nodes"][0]["nodePosition"]["allowedDeviationXY"] = 0.0
    order = _valid("order", order)
    near = _view(reference_line, order_id="", last_node_id="G10", x=4.05, y=0.0)
    assert check_order(order, near).kind == "new"
    off = dataclasses.replace(near, x=4.2)
    assert _refs(check_order(order, off))[0] == "noRouteError"
    loose = dataclasses.replace(off, profile=VehicleProfile(tolerance_xy=0.3))
    assert check_order(order, loose).kind == "new"


def test_first_node_orientation_must_be_within_its_theta_deviation(
    reference_line: LineConfig,
) -> None:
    link = _link(reference_line)
    at_g10 = _view(reference_line, order_id="", last_node_id="G10", x=4.0, y=0.0, theta=0.0)
    order = link.order("o2", ["G10", "G20"])
    order["nodes"][0]["nodePosition"]["theta"] = math.pi / 2
    assert _refs(check_order(_valid("order", order), at_g10))[0] == "noRouteError"
    order["nodes"][0]["nodePosition"]["allowedDeviationTheta"] = math.pi
    assert check_order(_valid("order", order), at_g10).kind == "new"
    turned = dataclasses.replace(at_g10, theta=math.pi / 2 + 0.05)  # within 5 degrees
    del order["nodes"][0]["nodePosition"]["allowedDeviationTheta"]
    assert check_order(_valid("order", order), turned).kind == "new"


def test_first_node_without_position_is_placed_from_the_vehicle_map(
    reference_line: LineConfig,
) -> None:
    link = _link(reference_line)
    positions = {"G10": (4.0, 0.0)}
    at_g10 = _view(reference_line, order_id="", last_node_id="G10", x=4.0, y=0.0)
    at_g10 = dataclasses.replace(at_g10, node_positions=positions)
    order = link.order("o2", ["G10", "G20"])
    del order["nodes"][0]["nodePosition"]
    order = _valid("order", order)
    assert check_order(order, at_g10).kind == "new"
    assert _refs(check_order(order, dataclasses.replace(at_g10, y=2.8)))[0] == "noRouteError"
    unmapped = dataclasses.replace(at_g10, node_positions={})
    assert "not on the vehicle's map" in _description(check_order(order, unmapped))


async def test_node_off_the_vehicle_map_without_position_is_rejected_in_both_profiles(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """A node the vehicle can neither find on its map nor place by its nodePosition: no route
    leads there (the vehicle does not set off and stop dead)."""
    async with running(reference_line, manual_clock) as link:
        for profile in (VehicleProfile(), LENIENT):
            link.robot.profile = profile
            order = link.order(f"o-{profile.name}", ["P2", "G10", "G11"])
            order["nodes"][2]["nodeId"] = "nowhere"
            del order["nodes"][2]["nodePosition"]
            order["edges"][1]["endNodeId"] = "nowhere"
            link.robot.handle_order(_valid("order", order))
            assert link.errors() == [
                (
                    "noRouteError",
                    "WARNING",
                    [
                        ("orderId", f"o-{profile.name}"),
                        ("nodeId", "nowhere"),
                        ("orderUpdateId", "0"),
                    ],
                )
            ]
            assert link.robot.order_id == "" and not link.robot.executing()


def _description(verdict: Verdict) -> str:
    assert verdict.error is not None
    return verdict.error.description


# --- action ids (validationError) ---------------------------------------------------------------


def test_action_id_used_twice_in_an_order_is_rejected(reference_line: LineConfig) -> None:
    link = _link(reference_line)
    idle = _view(reference_line, order_id="")
    order = link.order("o2", ["P2", "G10"], {"P2": [_pick("a1")], "G10": [_pick("a1", "T2")]})
    assert _refs(check_order(order, idle)) == (
        "validationError",
        "WARNING",
        {"orderId": "o2", "actionId": "a1", "orderUpdateId": "0"},
    )
    assert check_order(order, dataclasses.replace(idle, profile=LENIENT)).kind == "new"


def test_action_id_still_reported_by_the_vehicle_is_rejected(reference_line: LineConfig) -> None:
    """A new order reusing an action id of the previous order (still in actionStates)."""
    link = _link(reference_line)
    idle = _view(reference_line, known_action_ids=frozenset({"o1-pick", "c1"}))
    again = link.order("o2", ["P2", "G10"], {"G10": [_pick("o1-pick")]})
    assert _refs(check_order(again, idle))[:2] == ("validationError", "WARNING")
    fresh = link.order("o3", ["P2", "G10"], {"G10": [_pick("o3-pick")]})
    assert check_order(fresh, idle).kind == "new"


def test_update_may_resend_horizon_actions_but_not_base_ones(reference_line: LineConfig) -> None:
    link = _link(reference_line)
    link.order("o1", ["P2", "G10", "G11"], {"G10": [_pick("o1-pick")]})
    driving = _view(
        reference_line,
        executing=True,
        decision_point=("G11", 4),
        known_action_ids=frozenset({"o1-pick", "o1-later"}),
        horizon_action_ids=frozenset({"o1-later"}),
    )
    replan = link.update("o1", ["G12"], {"G12": [_pick("o1-later")]}, update_id=1)
    assert check_order(replan, driving).kind == "update"
    repeat = link.update("o1", ["G12"], {"G12": [_pick("o1-pick")]}, update_id=1)
    assert _refs(check_order(repeat, driving))[:2] == ("validationError", "WARNING")


# --- action types and parameters -------------------------------------------------------------


def test_action_type_the_vehicle_cannot_perform_is_an_order_error(
    reference_line: LineConfig,
) -> None:
    """6.6.4.2: "Vehicle receives an order with actions it cannot perform ... reports the
    warning 'orderError' with the wrong fields as error references" (in both profiles)."""
    link = _link(reference_line)
    order = link.order("o2", ["P2", "G10"], {"G10": [RobotAction("a1", "lift", "HARD")]})
    for profile in (VehicleProfile(), LENIENT):
        view = _view(reference_line, order_id="", profile=profile)
        assert _refs(check_order(order, view)) == (
            "orderError",
            "WARNING",
            {"orderId": "o2", "actionId": "a1", "orderUpdateId": "0"},
        )


@pytest.mark.parametrize(
    ("params", "faulty", "words"),
    [
        pytest.param(
            [("stationType", "shelf"), ("loadType", "tote"), ("lhd", "lhd1"), ("speed", 3)],
            "speed",
            "has no parameter",
            id="unknown",
        ),
        pytest.param([("loadType", "tote"), ("lhd", "lhd1")], "stationType", "needs", id="missing"),
        pytest.param(
            [("stationType", "shelf"), ("loadType", "tote"), ("lhd", "lhd1"), ("height", "low")],
            "height",
            "must be FLOAT",
            id="mistyped",
        ),
        pytest.param(
            [("stationType", "shelf"), ("loadType", "tote"), ("lhd", "a"), ("lhd", "b")],
            "lhd",
            "twice",
            id="repeated",
        ),
    ],
)
def test_action_parameters_must_be_those_the_factsheet_declares(
    reference_line: LineConfig, params: list[tuple[str, object]], faulty: str, words: str
) -> None:
    """7.1: the error references hold the "list of parameters if error was caused by erroneous
    action parameters"."""
    link = _link(reference_line)
    order = _with_params(link.order("o2", ["P2", "G10"], {"G10": [_pick("a1")]}), *params)
    verdict = check_order(order, _view(reference_line, order_id=""))
    assert _refs(verdict) == (
        "validationError",
        "WARNING",
        {"orderId": "o2", "actionId": "a1", "actionParameters": faulty, "orderUpdateId": "0"},
    )
    assert words in _description(verdict)
    lenient = _view(reference_line, order_id="", profile=LENIENT)
    assert check_order(order, lenient).kind == "new"


def test_optional_spec_parameters_are_accepted(reference_line: LineConfig) -> None:
    link = _link(reference_line)
    order = _with_params(
        link.order("o2", ["P2", "G10"], {"G10": [_pick("a1")]}),
        ("stationType", "shelf"),
        ("loadType", "tote"),
        ("lhd", "lhd1"),
        ("stationName", "A-01-02"),
        ("height", 1),
    )
    assert check_order(order, _view(reference_line, order_id="")).kind == "new"


# --- orderUpdateId ----------------------------------------------------------------------------


def test_same_update_id_with_other_content_is_an_order_update_error(
    reference_line: LineConfig,
) -> None:
    """6.6.4.3 ignores a resend ("the same orderId and orderUpdateId twice"); a message with
    those ids but other nodes is no resend."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    content = {"nodes": first["nodes"], "edges": first["edges"], "zoneSetId": None}
    view = _view(reference_line, executing=True, decision_point=("G11", 4), order_content=content)
    resend = {**first, "headerId": first["headerId"] + 1, "timestamp": "2030-01-01T00:00:00.00Z"}
    assert check_order(resend, view) == Verdict("duplicate")
    other = link.order("o1", ["P2", "G10"])
    assert _refs(check_order(other, view)) == (
        "orderUpdateError",
        "WARNING",
        {"orderId": "o1", "orderUpdateId": "0"},
    )
    assert check_order(other, dataclasses.replace(view, profile=LENIENT)) == Verdict("duplicate")


# --- instant actions --------------------------------------------------------------------------


def _instant(*actions: RobotAction) -> JsonDict:
    builder = MessageBuilder(VERSION, "linectl-sim", SERIAL, ManualClock())
    return _valid("instantActions", builder.instant_actions(actions))


def test_instant_actions_with_a_wrong_shape_are_refused(reference_line: LineConfig) -> None:
    caps = capabilities(reference_line.robot_model(SERIAL))
    message = _instant(
        RobotAction("p1", "startPause", "HARD"),
        RobotAction("x1", "selfDestruct", "NONE"),
        RobotAction("c1", "cancelOrder", "NONE", (("now", True),)),
        RobotAction("d1", "stopPause", "NONE"),
        RobotAction("d1", "stopPause", "NONE"),
        RobotAction("k1", "stateRequest", "NONE"),
        RobotAction("pk", "pick", "HARD", (("loadId", "T1"),)),
    )
    check = check_instant_actions(message, caps, known={"k1"})
    assert [a["actionId"] for a in check.accepted] == ["p1"]
    refs = [dict(e.references) for e in check.rejected]
    assert [(e.error_type, e.level) for e in check.rejected] == [("validationError", "WARNING")] * 6
    assert [r["actionId"] for r in refs] == ["x1", "c1", "d1", "d1", "k1", "pk"]
    assert all(r["topic"] == "instantActions" for r in refs)
    assert all(r["headerId"] == str(message["headerId"]) for r in refs)
    assert refs[1]["actionParameters"] == "now"


async def test_refused_instant_action_gets_no_action_state(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as link:
        message = _instant(RobotAction("x1", "selfDestruct", "NONE"))
        link.robot.handle_instant_actions(message)
        state = link.state()
        assert state["actionStates"] == []
        assert [(e[0], dict(e[2])["actionId"]) for e in link.errors()] == [
            ("validationError", "x1")
        ]
        # it is reported until a new order is accepted
        link.robot.handle_order(link.order("o1", ["P2", "G10"]))
        assert link.errors() == []
        link.robot.profile = LENIENT
        link.robot.handle_instant_actions(_instant(RobotAction("x2", "selfDestruct", "NONE")))
        assert link.status("x2") == "FAILED"


async def test_refused_instant_actions_are_reported_up_to_a_bound(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10"], {"G10": [RobotAction("a", "x")]}))
        for i in range(20):
            link.robot.handle_instant_actions(_instant(RobotAction(f"x{i}", "selfDestruct")))
        errors = link.errors()
        assert errors[0][0] == "orderError"  # the order's rejection stays
        assert [dict(e[2])["actionId"] for e in errors[1:]] == [f"x{i}" for i in range(12, 20)]


# --- cancelOrder: stopping between nodes --------------------------------------------------------


async def test_cancel_with_stop_immediately_leaves_the_vehicle_between_nodes(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.8.1, cancelOrder: "AGV stops as soon as possible. This could be immediately or on the
    next node"; 6.6.3.1: such a vehicle "shall accept both methods" of starting the next order,
    and an order starting at the last node without a deviation range is not one of them."""
    async with running(reference_line, manual_clock) as link:
        link.robot.profile = VehicleProfile(stop_on_cancel=StopOnCancel.IMMEDIATELY)
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11", "G12"]))
        await _until(manual_clock, lambda: link.robot.last_node_id == "G10")
        await manual_clock.advance(1.0)  # 1.5 m along G10 -> G11
        link.cancel("c1")
        await manual_clock.advance(LONG)
        state = link.state()
        assert (state["lastNodeId"], state["driving"], state["nodeStates"]) == ("G10", False, [])
        assert link.status("c1") == "FINISHED"
        y = state["agvPosition"]["y"]
        assert 1.0 <= y <= 2.5  # between G10 (y 0) and G11 (y 3), not on either

        link.robot.handle_order(link.order("o2", ["G10", "G20"]))
        assert [e[0] for e in link.errors()] == ["noRouteError"]
        assert link.robot.order_id == "o1"

        wide = link.order("o3", ["G10", "G20"])
        wide["nodes"][0]["nodePosition"]["allowedDeviationXY"] = y + 0.1
        link.robot.handle_order(_valid("order", wide))
        assert (link.robot.order_id, link.errors()) == ("o3", [])
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.x, link.robot.y) == ("G20", 8.0, 0.0)


async def test_order_from_a_temporary_node_where_the_vehicle_stopped_is_taken(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    """6.6.3.1: "Send an order, where the first node is a temporary node that is positioned
    where the AGV currently stands. The AGV shall then realize that this node is trivially
    reachable and accept the order." """
    async with running(reference_line, manual_clock) as link:
        link.robot.profile = VehicleProfile(stop_on_cancel=StopOnCancel.IMMEDIATELY)
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11"]))
        await _until(manual_clock, lambda: link.robot.last_node_id == "G10")
        await manual_clock.advance(1.0)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        here = (link.robot.x, link.robot.y)
        order = link.order("o2", ["G10", "G11"])
        order["nodes"][0].update(
            nodeId="o2-start",
            nodePosition={**order["nodes"][0]["nodePosition"], "x": here[0], "y": here[1]},
        )
        order["edges"][0].update(startNodeId="o2-start", length=3.0 - here[1])
        link.robot.handle_order(_valid("order", order))
        assert link.errors() == []
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.y) == ("G11", 3.0)


async def test_cancel_with_stop_at_next_node_reaches_it(
    reference_line: LineConfig, manual_clock: ManualClock
) -> None:
    async with running(reference_line, manual_clock) as link:
        link.robot.handle_order(link.order("o1", ["P2", "G10", "G11", "G12"]))
        await _until(manual_clock, lambda: link.robot.last_node_id == "G10")
        await manual_clock.advance(1.0)
        link.cancel("c1")
        await manual_clock.advance(LONG)
        assert (link.robot.last_node_id, link.robot.y) == ("G11", 3.0)
        link.robot.handle_order(link.order("o2", ["G11", "G12"]))
        assert link.errors() == [] and link.robot.order_id == "o2"


# --- what the vehicle declares, and how a profile is chosen ---------------------------------


@pytest.mark.parametrize("version", ["2.0.0", "2.1.0"])
def test_factsheet_declares_what_the_vehicle_accepts(
    reference_line: LineConfig, version: str
) -> None:
    model = reference_line.robot_model(SERIAL)
    builder = MessageBuilder(version, model.manufacturer, SERIAL, ManualClock())
    factsheet = builder.factsheet(model, "picker-s")
    factsheet["protocolFeatures"]["agvActions"] = capabilities(model).factsheet_actions()
    assert schema.validate(version, "factsheet", factsheet) == []
    declared = {a["actionType"]: a for a in factsheet["protocolFeatures"]["agvActions"]}
    pick = {p["key"]: p["isOptional"] for p in declared["pick"]["actionParameters"]}
    assert {k for k, optional in pick.items() if not optional} == set(model.pick.parameters)
    assert {"loadId", "stationName", "height"} <= set(pick)
    assert declared["cancelOrder"]["actionScopes"] == ["INSTANT"]
    assert "actionParameters" not in declared["cancelOrder"]


def test_profile_from_its_name() -> None:
    profile = VehicleProfile.named("strict", stop_on_cancel="immediately", tolerance_xy=0.2)
    assert (profile.strict, profile.stop_on_cancel, profile.tolerance_xy) == (
        True,
        StopOnCancel.IMMEDIATELY,
        0.2,
    )
    assert not VehicleProfile.named("lenient").strict
    with pytest.raises(ValueError, match="unknown vehicle profile 'picky'; one of strict"):
        VehicleProfile.named("picky")
    with pytest.raises(ValueError, match="stop_on_cancel 'never'"):
        VehicleProfile.named("strict", stop_on_cancel="never")
    with pytest.raises(ValueError, match="tolerance_xy"):
        VehicleProfile(tolerance_xy=-1.0)

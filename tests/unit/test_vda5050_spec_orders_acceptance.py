"""VDA 5050 2.1, sections 6.6.1, 6.6.2 and 6.6.4.3: whether a new order or an order update is
accepted, checked on the pure function :func:`check_order` against R02's view of itself.

Each test is named after the section it checks and quotes the rule in its docstring.
"""

from __future__ import annotations

from kernel.config.model import LineConfig
from simulators.robots.acceptance import Verdict, check_order
from tests.unit.vda5050_spec_support import _link, _refs, _valid, _view

# --- 6.6.1 / 6.6.2: acceptance of new orders (check_order) -------------------------------------


def test_6_6_1_first_node_must_be_trivially_reachable(reference_line: LineConfig) -> None:
    """6.6.1: "The first node of an order shall be trivially reachable for the AGV. This means
    either that the AGV is already standing on the node, or that the AGV is in the node's
    deviation range." """
    link = _link(reference_line)
    view = _view(reference_line, order_id="")
    assert check_order(link.order("o2", ["P2", "G10"]), view).kind == "new"
    far = link.order("o3", ["G10", "G11"])
    assert _refs(check_order(far, view)) == (
        "noRouteError",
        "WARNING",
        {"orderId": "o3", "nodeId": "G10", "orderUpdateId": "0"},
    )


def test_6_6_2_new_order_is_rejected_while_the_vehicle_is_executing(
    reference_line: LineConfig,
) -> None:
    """6.6.2, figure 8 step 3: "is vehicle still executing an order or waiting for an update?
    Are nodeStates not empty or are actionStates containing states which are neither 'FAILED'
    nor 'FINISHED'?" """
    link = _link(reference_line)
    new = link.order("o2", ["P2", "G10"])
    busy = _view(reference_line, executing=True, decision_point=("G11", 4))
    assert _refs(check_order(new, busy)) == (
        "orderError",
        "WARNING",
        {"orderId": "o2", "orderUpdateId": "0"},
    )
    assert check_order(new, _view(reference_line)).kind == "new"


def test_6_6_3_1_new_order_may_start_at_a_temporary_node_or_a_wide_deviation_range(
    reference_line: LineConfig,
) -> None:
    """6.6.3.1: "In case of an AGV that can stop in between nodes ... The AGV shall accept both
    methods": a temporary first node where it stands, or the last traversed node with a
    deviation range large enough to hold the AGV."""
    link = _link(reference_line)
    between = _view(reference_line, order_id="", x=4.0, y=-1.0)  # halfway from P2 to G10
    temporary = link.order("o2", ["P2", "G10"])
    temporary["nodes"][0].update(
        nodeId="here", nodePosition={**temporary["nodes"][0]["nodePosition"], "y": -1.0}
    )
    temporary["edges"][0]["startNodeId"] = "here"
    assert check_order(_valid("order", temporary), between).kind == "new"
    narrow = link.order("o3", ["G10", "G11"])  # G10 is 1 m away
    assert _refs(check_order(narrow, between))[0] == "noRouteError"
    wide = link.order("o4", ["G10", "G11"])
    wide["nodes"][0]["nodePosition"]["allowedDeviationXY"] = 1.5
    assert check_order(_valid("order", wide), between).kind == "new"


def test_6_6_1_released_node_after_the_horizon_is_rejected(reference_line: LineConfig) -> None:
    """6.6.1: "After an unreleased edge, no released nodes or edges can follow in the
    sequence." Such an order is malformed (6.6.4.1): "validationError"."""
    link = _link(reference_line)
    order = link.order("o2", ["P2", "G10", "G11"])
    order["nodes"][1]["released"] = False
    for edge in order["edges"]:
        edge["released"] = False
    verdict = check_order(_valid("order", order), _view(reference_line, order_id=""))
    assert _refs(verdict) == (
        "validationError",
        "WARNING",
        {"orderId": "o2", "nodeId": "G11", "orderUpdateId": "0"},
    )


# --- 6.6.2: order updates (check_order) --------------------------------------------------------


def test_6_6_2_update_must_start_at_the_last_base_node(reference_line: LineConfig) -> None:
    """6.6.2, figure 8 step 7: "the order update is only accepted if the first node of the new
    base is equal to the last node of the previous base" (nodeId and sequenceId)."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    driving = _view(reference_line, executing=True, decision_point=("G11", 4))
    good = link.update("o1", ["G12"])
    assert good["nodes"][0] == first["nodes"][-1]
    assert check_order(good, driving).kind == "update"
    from_here = link.update("o1", ["G10"], stitch=first["nodes"][0], update_id=1)
    assert _refs(check_order(from_here, driving)) == (
        "orderUpdateError",
        "WARNING",
        {"orderId": "o1", "nodeId": "P2", "orderUpdateId": "1"},
    )
    later_pass = {**first["nodes"][-1], "sequenceId": 8}  # G11 again, as in a loop
    looped = link.update("o1", ["G12"], stitch=later_pass, update_id=1)
    assert _refs(check_order(looped, driving))[:2] == ("orderUpdateError", "WARNING")


def test_6_6_2_update_of_a_completed_order_continues_from_the_last_traversed_node(
    reference_line: LineConfig,
) -> None:
    """6.6.2, figure 8 step 8: "the first node of the new base needs to match the vehicle's
    lastNodeId as well as lastNodeSequenceId"."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    done = _view(reference_line, last_node_id="G11", last_node_sequence_id=4)
    assert check_order(link.update("o1", ["G12"]), done).kind == "update"
    other_pass = {**first["nodes"][-1], "sequenceId": 0}
    stale = link.update("o1", ["G12"], stitch=other_pass, update_id=1)
    assert _refs(check_order(stale, done))[:2] == ("orderUpdateError", "WARNING")


def test_6_6_4_3_lower_order_update_id_is_rejected(reference_line: LineConfig) -> None:
    """6.6.4.3: "The vehicle reports the warning 'orderUpdateError'"; 7.1: the error references
    hold "orderId and orderUpdateId if error was caused by an order update"."""
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    view = _view(reference_line, order_update_id=2, executing=True, decision_point=("G11", 4))
    old = link.update("o1", ["G12"], stitch=first["nodes"][-1], update_id=1)
    assert _refs(check_order(old, view)) == (
        "orderUpdateError",
        "WARNING",
        {"orderId": "o1", "orderUpdateId": "1"},
    )


def test_6_6_4_3_same_update_id_is_ignored(reference_line: LineConfig) -> None:
    """6.6.4.3: "If the AGV receives an order with the same orderId and orderUpdateId twice,
    the second order will be ignored." """
    link = _link(reference_line)
    first = link.order("o1", ["P2", "G10", "G11"])
    view = _view(reference_line, order_update_id=1, executing=True, decision_point=("G12", 6))
    # the resent update 1 stitches on G11, which is no longer the decision point: still ignored
    again = link.update("o1", ["G12"], stitch=first["nodes"][-1], update_id=1)
    assert check_order(again, view) == Verdict("duplicate")
